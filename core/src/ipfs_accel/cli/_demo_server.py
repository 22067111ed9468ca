"""The demo's fake APIs: each plugin's own canned answers, and seeded faults.

One responder answers for every demo server (see ``_demo_pools``). Each endpoint gets its
own base URL, ``<server>/ep/<endpoint-id>``, so the responder knows which endpoint a
request came through (and which key it must carry) and so which backend's
:class:`~ipfs_accel.testing.Case` answers it. The core knows no API's wire format: the
success reply and the error reply (overloaded) are the ones the plugin's
``conformance_case`` hook declares, replayed as they are.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from collections import Counter
from collections.abc import Mapping

from ..testing import Action, Case, Drop, Hang, RecordedRequest, Reply, Stream

__all__ = ["DemoResponder", "endpoint_key"]

_KEY = re.compile(r"demo-key-[\w.]+(?:-[\w.]+)*?-\d+(?!\d)")


def endpoint_key(endpoint_id: str) -> str:
    """The fake key of one demo endpoint (``demo-key-openai-1``); never printed."""
    return f"demo-key-{endpoint_id}"


def _later(answer: Reply | Stream, delay: float) -> Action:
    """``answer``, given ``delay`` seconds late (a server thinking)."""
    if isinstance(answer, Reply):
        return dataclasses.replace(answer, delay=delay)
    return Hang(delay, then=answer)


class DemoResponder:
    """Answers every request: a seeded fault some of the time, else the case's success reply.

    Rates: ~5% the case's overloaded reply (503, or the API's own status such as 529), ~5%
    that reply as a 500, ~3% dropped connections (429s come from the servers' per-key rate
    limits, before a request reaches this). Counts what it injected and checks every
    request carries only its own endpoint's key. Endpoint IDs are ``<backend>-<n>``;
    ``cases`` is by backend.
    """

    def __init__(self, cases: Mapping[str, Case], *, seed: int,
                 delay: tuple[float, float] = (0.02, 0.15)) -> None:
        self._cases = dict(cases)
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not crypto
        self._lock = threading.Lock()
        self.delay = delay
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.key_violations: list[str] = []  # endpoint IDs that saw a foreign key

    def __call__(self, request: RecordedRequest) -> Action:
        with self._lock:
            roll = self._rng.random()
            delay = self._rng.uniform(*self.delay)
            self.requests += 1
        parts = request.path.split("/", 3)  # "", "ep", "<endpoint-id>", "rest..."
        case = self._cases.get(parts[2].rsplit("-", 1)[0]) if len(parts) == 4 else None
        if parts[1:2] != ["ep"] or case is None:
            return Reply(404, json={"error": {"message": "demo server: unknown endpoint"}})
        endpoint_id = parts[2]
        self._check_key(request, endpoint_id)
        fault = self._fault(case, roll, delay)
        return fault if fault is not None else _later(case.success, delay)

    def _check_key(self, request: RecordedRequest, endpoint_id: str) -> None:
        seen = " ".join([*request.headers.values(), *request.query.values()])
        own = endpoint_key(endpoint_id)
        if any(key != own for key in _KEY.findall(seen)):
            with self._lock:
                self.key_violations.append(endpoint_id)

    def _fault(self, case: Case, roll: float, delay: float) -> Action | None:
        if roll < 0.05:
            reply = case.overloaded
            return self._injected(f"{reply.status} overloaded",
                                  dataclasses.replace(reply, delay=delay / 2))
        if roll < 0.10:
            # The API's own error body (its overloaded one) under a plain server error.
            return self._injected("500 server error",
                                  dataclasses.replace(case.overloaded, status=500, delay=delay / 2))
        if roll < 0.13:
            return self._injected("dropped connection", Drop())
        return None

    def _injected(self, what: str, action: Action) -> Action:
        with self._lock:
            self.injected[what] += 1
        return action

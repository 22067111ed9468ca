"""What a :class:`FaultServer` can do with a request, and what it records of one.

A test (or a responder) answers each request with an :data:`Action`: :class:`Reply` (a
status, headers and a body, perhaps after a delay), :class:`Drop` (close, no answer),
:class:`Hang` (silence, then close or answer), :class:`Hold` (wait for the test's go),
:class:`Stream` / :class:`TruncatedStream` (a chunked body, one line per chunk).
A :data:`Responder` answers every request the scripts do not; :func:`with_faults` makes
one that injects faults at random. The server itself is in ``_server``.
"""

from __future__ import annotations

import json as _json
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "Action",
    "Drop",
    "Hang",
    "Hold",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Stream",
    "TruncatedStream",
    "with_faults",
]


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """One request the server received: what was asked, with which headers and body.

    ``headers`` has lower-case names (repeated headers joined with ``", "``);
    ``received_at`` is ``time.monotonic()`` when the request head had been read;
    ``connection`` numbers the TCP connection it came on (keep-alive reuses them).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    received_at: float
    connection: int

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None``."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body decoded as JSON (raises ``ValueError`` when it is not JSON)."""
        return _json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """Answer with ``status``, ``headers`` and a body: ``json`` (encoded) or raw ``body``.

    ``delay`` seconds pass before the answer is written (the request counts as in progress).
    """

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering (the client sees a disconnect)."""


@dataclass(frozen=True)
class Hang:
    """Say nothing for ``seconds`` (past the client's timeout), then close, or answer ``then``."""

    seconds: float
    then: Reply | Stream | None = None


@dataclass(frozen=True)
class Hold:
    """Keep the request in progress until the test lets it go, then answer ``then``.

    It goes when the server has received ``arrived`` requests in all (since start or
    :meth:`FaultServer.reset`) and ``release`` (if given) is set: a barrier for "all N
    calls are in flight at once" and a gate the test opens, without guessing at timings.
    After ``timeout`` seconds, or when the server closes, the connection is cut instead,
    so a test that forgets to release fails rather than hangs. ``then=None`` cuts too.
    """

    then: Reply | Stream | None = None
    arrived: int = 0
    release: threading.Event | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class Stream:
    """A chunked 200 streaming ``lines``: each line (plus ``"\\n"``) is one chunk.

    For server-sent events end each event with an empty line: ``["data: {...}", ""]``.
    ``interval`` seconds pass between lines.
    """

    lines: Sequence[str]
    content_type: str = "text/event-stream"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    interval: float = 0.0


@dataclass(frozen=True)
class TruncatedStream(Stream):
    """Like :class:`Stream`, then the connection is cut before the terminating chunk."""


Action: TypeAlias = Reply | Drop | Hang | Hold | Stream
Responder: TypeAlias = Callable[[RecordedRequest], Action]


def with_faults(
    responder: Responder,
    *,
    rate: float = 0.1,
    faults: Sequence[Action] = (
        Reply(429, json={"error": {"message": "injected rate limit"}},
              headers={"retry-after": "0"}),
        Reply(503, json={"error": {"message": "injected overload"}}),
        Drop(),
    ),
    seed: int | None = None,
) -> Responder:
    """``responder`` with one of ``faults`` (picked at random) instead, ``rate`` of the time."""
    rng = random.Random(seed)  # noqa: S311 - fault injection, not crypto
    lock = threading.Lock()

    def faulty(request: RecordedRequest) -> Action:
        with lock:
            hit = rng.random() < rate
            fault = rng.choice(list(faults)) if hit and faults else None
        return fault if fault is not None else responder(request)

    return faulty

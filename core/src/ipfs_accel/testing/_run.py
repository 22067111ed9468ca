"""What every conformance check stands on: its context, a server per step, its verdicts.

A check receives a :class:`CheckRun` (the case, fresh backends, throwaway keys to scrub
from what it reports), scripts a :class:`FaultServer` through :func:`serving`, and states
each expectation with :func:`expect`; a :class:`CheckFailed` carries the reason shown, and
:func:`skip` ends a check that has nothing to check for this case.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from .._backend import Backend
from .._errors import CallError, QueueFullError
from .._registry import Registry
from ._actions import Action, Reply
from ._case import Case
from ._server import FaultServer

__all__ = ["FAST", "CheckFailed", "CheckRun", "CheckSkipped", "conformance_id", "expect",
           "serving", "skip", "with_retry_after"]

# Fast, jitter-free retries: real waits, but short and exactly predictable.
FAST: dict[str, Any] = {
    "initial_retry_delay": 0.01, "max_retry_delay": 0.02, "retry_jitter": 0.0, "timeout": 5.0,
}


class CheckFailed(Exception):
    """A check's expectation was not met; the message is the reason shown."""


class CheckSkipped(Exception):
    """A check has nothing to check for this case (the backend lacks the operation, or the
    case declares nothing for it); the message says which, and what to declare."""


class CheckRun:
    """One check's context: the case, fresh backends, test keys to scrub from reasons."""

    def __init__(self, case: Case, registry: Registry) -> None:
        self.case = case
        self.registry = registry
        self.keys: list[str] = []
        self.backends: list[Backend] = []

    def key(self) -> str:
        """A fresh throwaway API key, remembered so reasons can be scrubbed of it."""
        key = "sk-conformance-" + secrets.token_hex(8)
        self.keys.append(key)
        return key

    def backend(self) -> Backend:
        """A fresh backend from the case's registry, closed when the check ends."""
        backend = self.registry.fresh(self.case.backend)
        self.backends.append(backend)
        return backend

    def endpoint(
        self, backend: Backend, server: FaultServer, *, key: str | None = None, **settings: Any
    ) -> str:
        """An endpoint on ``server`` with fast retries, the case's settings and ``settings``."""
        values = {**FAST, **self.case.settings, **settings}
        values["base_url"] = server.base_url
        values["api_key"] = key or self.key()
        return backend.create_endpoint(**values)

    def call(self, backend: Backend, endpoint_id: str, request_id: str | None = None) -> Any:
        """The case's valid call, which must succeed (a queue-full refusal passes through)."""
        try:
            return self.case.call(backend, endpoint_id, request_id or conformance_id())
        except CallError as exc:
            if isinstance(exc, QueueFullError):
                raise
            raise CheckFailed(
                f"a call that should succeed raised {type(exc).__name__} after "
                f"{exc.attempts or '?'} attempt(s): {exc}"
            ) from exc

    def fail_call(
        self, backend: Backend, endpoint_id: str, request_id: str | None = None
    ) -> CallError:
        """The case's call, which must fail: the error it raised."""
        try:
            result = self.case.call(backend, endpoint_id, request_id or conformance_id())
        except CallError as exc:
            return exc
        raise CheckFailed(f"the call should have failed, it returned {type(result).__name__}")

    def scrub(self, text: str) -> str:
        """``text`` with every key this run made replaced by asterisks."""
        for key in self.keys:
            text = text.replace(key, "********")
        return text

    def close(self) -> None:
        """Close every backend the check opened."""
        for backend in self.backends:
            backend.close()


def conformance_id() -> str:
    """A fresh request ID for one conformance call."""
    return "conformance-" + secrets.token_hex(6)


@contextmanager
def serving(*actions: Action) -> Iterator[FaultServer]:
    """A running :class:`FaultServer` scripted with ``actions``."""
    with FaultServer() as server:
        server.script(actions)
        yield server


def expect(ok: bool, reason: str) -> None:
    """Fail the check with ``reason`` unless ``ok``."""
    if not ok:
        raise CheckFailed(reason)


def skip(reason: str) -> NoReturn:
    """End the check as skipped, saying ``reason``: a skip is shown as such, never as a pass."""
    raise CheckSkipped(reason)


def with_retry_after(reply: Reply, seconds: str) -> Reply:
    """``reply`` with a ``retry-after: seconds`` header added."""
    return dataclasses.replace(reply, headers={**reply.headers, "retry-after": seconds})

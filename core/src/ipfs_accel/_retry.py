"""The retry loop: stamina drives the attempts, :class:`Attempts` decides each wait.

The first attempt runs before stamina's loop is built, since most calls succeed at once and
the loop costs tens of microseconds; a retryable first failure is replayed as stamina's first
attempt, so stamina sees, waits on and reports every attempt (its instrumentation included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import stamina

from ._backoff import plan_wait
from ._endpoint import Endpoint
from ._errors import CallError
from ._settings import EndpointConfig

if TYPE_CHECKING:
    from ._observe import Observation

__all__ = ["Attempts", "retry_async", "retry_sync"]

_monotonic = time.monotonic
_log = logging.getLogger("ipfs_accel")

# stamina reports each retry through the "stamina" logger at WARNING; with no logging
# configured, Python's last-resort handler would print those lines on stderr. A library is
# silent until the application configures logging: a NullHandler stops only that fallback,
# and the records still reach the application's handlers once it has any.
_stamina_log = logging.getLogger("stamina")
if not _stamina_log.handlers:
    _stamina_log.addHandler(logging.NullHandler())


class Attempts:
    """Per-call retry state; its :meth:`hook` is stamina's ``on=`` backoff hook."""

    __slots__ = ("count", "deadline_at", "endpoint", "obs", "settings", "wait_started", "why")

    def __init__(self, endpoint: Endpoint, config: EndpointConfig, deadline_at: float | None,
                 obs: Observation | None = None):
        self.endpoint = endpoint
        self.settings = config.settings
        self.deadline_at = deadline_at
        self.count = 0
        self.wait_started: float | None = None
        self.obs = obs  # told each wait, with why
        self.why = "backoff"

    def hook(self, exc: Exception) -> bool | float:
        """Retry ``exc``? Returns the wait in seconds, or False to give up now."""
        if not isinstance(exc, CallError) or not exc.retryable:
            return False
        s = self.settings
        if self.count > s.max_retries:  # that was the last attempt: nothing to wait for
            return False
        now = _monotonic()
        remaining = None if self.deadline_at is None else self.deadline_at - now
        wait = plan_wait(
            self.count,
            initial=s.initial_retry_delay,
            factor=s.backoff_factor,
            max_delay=s.max_retry_delay,
            jitter=s.retry_jitter,
            retry_after=exc.retry_after if s.honor_retry_after else None,
            remaining=remaining,
            max_retry_after=s.max_retry_after,
        )
        if wait is None:
            return False
        self.wait_started = now
        self.why = ("retry-after" if exc.retry_after is not None and s.honor_retry_after
                    and wait >= exc.retry_after else "backoff")
        if self.obs is not None:  # the stats' observation counts the retry
            self.obs.retrying(wait, self.why)
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                "retrying %s call %s on endpoint %s in %.3gs (attempt %d of %d failed: %s)",
                exc.backend, exc.request_id, exc.endpoint_id, wait, self.count,
                s.max_retries + 1, type(exc).__name__,
                extra={"backend": exc.backend, "endpoint_id": exc.endpoint_id,
                       "request_id": exc.request_id, "attempt": self.count, "wait": wait},
            )
        return wait

    def waited(self) -> None:
        """The wait since the last :meth:`hook` is over (the next attempt starts, or the
        call ended during it): count the time that really passed."""
        started = self.wait_started
        if started is not None:
            self.wait_started = None
            if self.obs is not None:  # the stats' observation counts the time waited
                self.obs.wait(_monotonic() - started, self.why)



_T = TypeVar("_T")


def _first_failure_retryable(exc: CallError, state: Attempts) -> bool:
    return exc.retryable and state.settings.max_retries > 0


def retry_sync(state: Attempts, attempt: Callable[[], _T]) -> _T:
    """Run ``attempt`` under stamina's retry loop; ``state.hook`` decides each wait.

    The first attempt runs before the loop is built, since most calls succeed at once and
    stamina's loop costs tens of microseconds; a retryable first failure is replayed as
    stamina's first attempt, so stamina sees, waits on and reports every attempt.
    """
    state.count = 1
    try:
        return attempt()
    except CallError as exc:
        if not _first_failure_retryable(exc, state):
            exc.attempts = 1
            raise
        pending: CallError | None = exc
    try:
        for retry in stamina.retry_context(
            on=state.hook, attempts=state.settings.max_retries + 1, timeout=None
        ):
            with retry:
                if pending is not None:
                    failed, pending = pending, None
                    raise failed
                state.waited()
                state.count += 1
                return attempt()
    except CallError as exc:
        exc.attempts = state.count
        raise
    finally:
        state.waited()  # a call interrupted while it waited still counts what it waited
    raise AssertionError("unreachable")  # pragma: no cover - stamina returns or raises


async def retry_async(state: Attempts, attempt: Callable[[], Awaitable[_T]]) -> _T:
    """:func:`retry_sync` for coroutines."""
    state.count = 1
    try:
        return await attempt()
    except CallError as exc:
        first = exc
    return await _retry_after(state, attempt, first)


async def _retry_after(state: Attempts, attempt: Callable[[], Awaitable[_T]],
                       exc: CallError) -> _T:
    """The rest of :func:`retry_async` once the first attempt (its ``state.count`` 1)
    failed with ``exc``. Awaited outside the ``except`` block that caught ``exc``: the next
    attempts' errors would chain it as their context (each attempt's failure is its own)."""
    if not _first_failure_retryable(exc, state):
        exc.attempts = 1
        raise exc
    pending: CallError | None = exc
    try:
        async for retry in stamina.retry_context(
            on=state.hook, attempts=state.settings.max_retries + 1, timeout=None
        ):
            with retry:
                if pending is not None:
                    failed, pending = pending, None
                    raise failed
                state.waited()
                state.count += 1
                return await attempt()
    except CallError as failure:
        failure.attempts = state.count
        raise
    finally:
        state.waited()  # a call interrupted while it waited still counts what it waited
    raise AssertionError("unreachable")  # pragma: no cover - stamina returns or raises

"""Each attempt through its endpoint's shared state (``_shared``), after its own gate.

Before: once the endpoint's gate lets an attempt go, Redis is asked (one round trip) and the
attempt waits as long as it says (a shared pause, the shared budgets, the server's pace while
its requests budget is spent, a full cluster-wide concurrency), within the call's deadline
and ``max_retry_after`` as for the local pause. The endpoint's gate takes in the shared
health the answer carries (unhealthy, its key refused), so a pool skips the endpoint as if it
had seen the failures itself; a pool's attempt it finds so is not sent.
After: the lease is given back, the booked tokens corrected with the real usage, and a pause
the server asked for, what its headers said and a change of health shared; on the event loop
that runs as a task of its own, so ending an attempt never waits on Redis (a cancelled call
still gives its lease back).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import secrets
import threading
import time
from typing import TYPE_CHECKING

from ._errors import CallError, ErrorKind, RateLimitError, TimeoutError, TransportError
from ._limits import Reservation

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._endpoint import Endpoint
    from ._exchange import Exchanger
    from ._settings import EndpointConfig
    from ._shared_endpoint import Admission
    from ._types import Call

__all__ = ["admit_async", "admit_sync", "refuse_closed", "release"]

_monotonic = time.monotonic
_PAUSING = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED})
_tasks: set[asyncio.Task[None]] = set()  # settles in flight, kept until they end


def _refuse(x: Exchanger, config: EndpointConfig, call: Call, *, adm: Admission,
            deadline_at: float | None) -> float:
    """Raise when the shared wait ends past the deadline or is a pause longer than
    ``max_retry_after``; else return the wait. A full concurrency's wait is not known:
    the attempt waits in the queue until its deadline, then fails."""
    now = _monotonic()
    err: CallError | None = None
    if adm.why == "busy":
        if deadline_at is None or now < deadline_at:
            return adm.wait if deadline_at is None else min(adm.wait, deadline_at - now)
        err = TimeoutError(
            f"the endpoint's shared limits held it: its cluster-wide max_concurrent_requests "
            f"({config.settings.max_concurrent_requests}) stayed full until the call's "
            f"deadline ({adm.reason or 0} waiting ahead of it in the shared queue)",
            backend=x.backend, endpoint_id=config.endpoint_id, request_id=call.request_id)
    elif deadline_at is not None and now + adm.wait >= deadline_at:
        err = TimeoutError(
            f"the endpoint's shared limits hold it ({adm.why}) for {adm.wait:.3g}s more, past "
            f"the call's deadline ({max(deadline_at - now, 0.0):.3g}s left)",
            backend=x.backend, endpoint_id=config.endpoint_id, request_id=call.request_id)
    elif adm.why in ("pause", "spent") and adm.wait > config.settings.max_retry_after:
        what = ("paused by a shared limit" if adm.why == "pause"
                else "paced by the server's spent requests budget (shared)")
        err = RateLimitError(
            f"the endpoint is {what} for {adm.wait:.3g}s ({adm.reason or 'its headers'}), "
            f"longer than max_retry_after ({config.settings.max_retry_after}s)",
            backend=x.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            retry_after=adm.wait)
    if err is not None:
        err.retryable = False
        raise err  # the caller gives the lease and the booking back
    return adm.wait


def _start(res: Reservation | None, tokens: float) -> tuple[Reservation, bool]:
    if res is not None:
        return res, True
    return Reservation(_monotonic(), tokens, None), False


def _heard(x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
           adm: Admission, *, pooled: bool) -> bool:
    """Take in the shared health ``adm`` carries; refuse a pool's attempt (a retryable
    error the pool moves on from) to an endpoint now closed. True if its budgets are
    booked."""
    if adm.health:
        endpoint.shared_health(adm.health)
        if pooled:
            refuse_closed(x, endpoint, config, call, found=", as another worker found")
    return adm.why in ("booked", "spent")


def refuse_closed(x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call, *,
                  found: str = "") -> None:
    """A pool's attempt to an endpoint that turned unhealthy or was disabled while it waited
    (in the queue, or as the shared state just said: ``found`` tells so) is not sent there: a
    retryable error the pool moves on from (not a failure of the endpoint, which sent
    nothing)."""
    why = endpoint.closed_reason()
    if why is not None:
        endpoint.unsent()
        err = TransportError(
            f"not sent: the endpoint is {why}{found}", backend=x.backend,
            endpoint_id=config.endpoint_id, request_id=call.request_id, attempts=1,
        )
        err.retryable = True
        raise err


def admit_sync(x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call, *,
               res: Reservation | None, tokens: float, deadline_at: float | None,
               pooled: bool = False) -> Reservation | None:
    """Wait (blocking) until the shared state lets the attempt go; its lease on ``res``
    (``pooled``: a pool's attempt, not sent to an endpoint the shared health closes)."""
    shared = endpoint.shared
    if shared is None:
        return res
    res, local = _start(res, tokens)
    booked = False
    lease = secrets.token_hex(8)  # the attempt's, across its questions
    turn: threading.Event | None = None  # set when a settle says it is this attempt's turn
    try:
        while True:
            if turn is not None:
                turn.clear()
            adm = shared.admit(res.tokens, booked, lease)
            # queued, the attempt's id stays on it: giving up takes it out of the queue
            res.lease = lease if adm.why == "busy" else adm.lease
            booked = _heard(x, endpoint, config, call, adm, pooled=pooled) or booked
            if adm.wait <= 0:
                return res
            if adm.why != "busy":
                time.sleep(_refuse(x, config, call, adm=adm, deadline_at=deadline_at))
                continue
            if turn is None:  # a turn heard before this is kept for it
                turn = threading.Event()
                shared.shared.wait_turn(lease, turn.set)
            adm.wait = shared.busy_wait(adm, told=True)
            turn.wait(_refuse(x, config, call, adm=adm, deadline_at=deadline_at))
    except BaseException:
        _give_up(endpoint, res, local)
        raise
    finally:
        if turn is not None:
            shared.shared.stop_waiting(lease)


async def admit_async(x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call, *,
                      res: Reservation | None, tokens: float, deadline_at: float | None,
                      pooled: bool = False) -> Reservation | None:
    """:func:`admit_sync` on the running loop, with Redis's asyncio client."""
    shared = endpoint.shared
    if shared is None:
        return res
    res, local = _start(res, tokens)
    booked = False
    lease = secrets.token_hex(8)  # the attempt's, across its questions
    turn: asyncio.Event | None = None
    try:
        while True:
            if turn is not None:
                turn.clear()
            adm = await shared.aadmit(res.tokens, booked, lease)
            # queued, the attempt's id stays on it: giving up takes it out of the queue
            res.lease = lease if adm.why == "busy" else adm.lease
            _cancelled_meanwhile()
            booked = _heard(x, endpoint, config, call, adm, pooled=pooled) or booked
            if adm.wait <= 0:
                return res
            if adm.why != "busy":
                await asyncio.sleep(_refuse(x, config, call, adm=adm, deadline_at=deadline_at))
                continue
            if turn is None:  # a turn heard before this is kept for it
                turn = asyncio.Event()
                shared.shared.wait_turn(lease, _waker(turn))
            adm.wait = shared.busy_wait(adm, told=True)
            wait = _refuse(x, config, call, adm=adm, deadline_at=deadline_at)
            with contextlib.suppress(builtins.TimeoutError):
                async with asyncio.timeout(wait):
                    await turn.wait()
    except BaseException:
        _give_up(endpoint, res, local)
        raise
    finally:
        if turn is not None:
            shared.shared.stop_waiting(lease)


def _waker(event: asyncio.Event) -> Callable[[], None]:
    """Set ``event`` on its loop, from the thread that hears the turns."""
    loop = asyncio.get_running_loop()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)
    return wake


def _cancelled_meanwhile() -> None:
    """Redis's asyncio client can answer an await whose task was cancelled meanwhile: the
    cancellation wins (the lease goes back on the way out), so none is lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _give_up(endpoint: Endpoint, res: Reservation, local: bool) -> None:
    """An attempt that will not go after all: its lease and its local booking back."""
    if res.lease is not None:
        release(endpoint, res, None, None, res.tokens)
    if local:
        endpoint.cancel(res)


def _pause(exc: BaseException | None, endpoint: Endpoint) -> tuple[float | None, str]:
    if not isinstance(exc, CallError) or exc.kind not in _PAUSING or exc.retry_after is None:
        return None, ""
    if not endpoint.config.settings.honor_retry_after:
        return None, ""
    return exc.retry_after, f"{exc.status or ''} {exc.kind.value}".strip()


def release(endpoint: Endpoint, res: Reservation | None, exc: BaseException | None,
            used: float | None, booked: float, *, health: tuple[str, float] = ("", 0.0),
            ) -> asyncio.Task[None] | None:
    """The attempt is over (it booked ``booked`` tokens, used ``used``; ``None``: not
    known; ``health``: what it changed, see :meth:`SharedEndpoint.settle`): settle it with
    the shared state. On an event loop that is a task of its own, returned so that a call
    ending normally awaits it (one cancelled does not wait)."""
    shared = endpoint.shared
    if shared is None:
        return None
    pause, reason = _pause(exc, endpoint)
    lease = res.lease if res is not None else None
    if lease is None and pause is None and health[0] in ("", "well") and not shared.has_news():
        return None  # nothing held and nothing to share (tokens alone: no lease, no booking)
    if res is not None:
        res.lease = None
    keys = None
    if lease is not None:  # at once: a settle that never runs must not keep it alive
        keys = shared.stop_renewing(lease)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        shared.settle(lease, booked, used, pause=pause, reason=reason, health=health, keys=keys)
        return None
    task = asyncio.ensure_future(shared.asettle(lease, booked, used, pause=pause,
                                                reason=reason, health=health, keys=keys))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task

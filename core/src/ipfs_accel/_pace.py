"""Each attempt through its endpoint's gate: booked and held before, accounted after.

Before an attempt: book it with the endpoint's budgets (``rpm``, ``tpm``, a pause) and wait
until the booking says, unless that is past the call's deadline (fail now, not later) or a
pause longer than ``max_retry_after`` (fail now with the wait on the error). After it: what
the response's headers say of the budgets, whether the endpoint answered or failed (health,
pauses from 429 and overloads), and the tokens really used. The engine and the stream runner
call these; the gate's rules are in ``_limits``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import msgspec

from ._errors import CallError, RateLimitError, TimeoutError
from ._observe import held_for, server_of
from ._pace_shared import admit_async, admit_sync, release

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._endpoint import Endpoint
    from ._exchange import Exchanger
    from ._limits import Reservation
    from ._observe import Observation
    from ._ratelimits import RateLimits
    from ._settings import EndpointConfig
    from ._shared_endpoint import SharedEndpoint
    from ._types import Call

__all__ = ["ended", "estimate_tokens", "hold_async", "hold_sync", "learn"]

_monotonic = time.monotonic
_sleep = time.sleep
_asleep = asyncio.sleep
_encode = msgspec.json.encode
_MAX_TOKENS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "max_new_tokens",
               "num_predict")


def estimate_tokens(call: Call) -> float:
    """The tokens a call may use, booked against ``tpm`` before it is sent: its input's
    size / 4 (about four bytes a token) plus the output it allows (``max_tokens`` and its
    kin; 0 when unbounded, and the real usage settles it after)."""
    size = 0
    for part in (call.messages, call.prompt, call.inputs):
        if part is not None:
            try:
                size += len(_encode(part))
            except (TypeError, msgspec.EncodeError):
                size += len(str(part))
    out = 0
    for name in _MAX_TOKENS:
        value = call.params.get(name)
        if isinstance(value, int) and value > 0:
            out = value
            break
    return size / 4 + out


def _book(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
    deadline_at: float | None,
) -> tuple[Reservation | None, float]:
    """Book the attempt; return the booking and how long to wait for it."""
    gate = endpoint.gate
    if not gate.active:
        return None, 0.0
    tokens = estimate_tokens(call) if gate.tokens is not None else 0.0
    res = endpoint.reserve(tokens)
    now = _monotonic()
    wait = res.at - now
    if wait <= 0:
        return res, 0.0
    what = {"pause": "paused", "spent": "paced by the server's spent budget"}.get(
        res.held or "", "paced by its rpm/tpm")
    if deadline_at is not None and res.at >= deadline_at:
        endpoint.cancel(res)
        err = TimeoutError(
            f"the endpoint is {what} for {wait:.3g}s more, past the call's deadline "
            f"({max(deadline_at - now, 0.0):.3g}s left)",
            backend=x.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
        )
        err.retryable = False
        raise err
    # The pause, not the pacing that may follow it, is what max_retry_after bounds.
    if res.held == "pause" and gate.paused_until - now > config.settings.max_retry_after:
        endpoint.cancel(res)
        refused = RateLimitError(
            f"the endpoint is paused for {wait:.3g}s ({gate.pause_reason}), longer than "
            f"max_retry_after ({config.settings.max_retry_after}s)",
            backend=x.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            retry_after=wait,
        )
        refused.retryable = False
        raise refused
    if res.held == "spent" and wait > config.settings.max_retry_after:
        endpoint.cancel(res)
        refused = RateLimitError(
            f"the server's requests budget is spent for {wait:.3g}s more, longer than "
            f"max_retry_after ({config.settings.max_retry_after}s)",
            backend=x.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            retry_after=wait,
        )
        refused.retryable = False
        raise refused
    return res, wait


def _waited(endpoint: Endpoint, res: Reservation) -> float | None:
    """``res`` waited until its start: the seconds still to wait (0: go), or ``None`` when
    a pause set or extended meanwhile holds it: it must not go into the pause, so it books
    again, behind it (and paced after it, rather than all the waiting attempts at once at
    its end)."""
    at = endpoint.recheck(res)
    if at is None:
        res.wait = 0.0  # sat out in full: the time stays counted, the new booking adds its own
        endpoint.cancel(res)
        return None
    return max(at - _monotonic(), 0.0)


def hold_sync(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
    deadline_at: float | None, *, pooled: bool = False, obs: Observation | None = None,
) -> tuple[Reservation | None, dict[str, str] | None]:
    """Book the attempt and block until it may go (its gate, then any shared limits;
    ``pooled``: a pool's attempt, see :func:`admit_sync`); the booking, and the headers the
    call's observation sends with the attempt (the attempt and its wait told to it)."""
    trace = None
    if obs is not None:
        trace = obs.attempt(endpoint.endpoint_id, server_of(config))
    held = _monotonic() if obs is not None else 0.0
    res = _hold_sync(x, endpoint, config, call, deadline_at)
    if endpoint.shared is not None:
        res = admit_sync(x, endpoint, config, call, res=res, tokens=_tokens(config, call),
                         deadline_at=deadline_at, pooled=pooled)
    if obs is not None:
        held_for(obs, res, _monotonic() - held)
    return res, trace


async def hold_async(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
    deadline_at: float | None, *, pooled: bool = False, obs: Observation | None = None,
) -> tuple[Reservation | None, dict[str, str] | None]:
    """:func:`hold_sync` on the running loop."""
    trace = None
    if obs is not None:
        trace = obs.attempt(endpoint.endpoint_id, server_of(config))
    held = _monotonic() if obs is not None else 0.0
    res, wait = _book(x, endpoint, config, call, deadline_at)
    if wait > 0:  # paced: most attempts go at once, without a coroutine for the wait
        res = await _hold_async(x, endpoint, config, call, deadline_at, res=res, wait=wait)
    if endpoint.shared is not None:
        res = await admit_async(x, endpoint, config, call, res=res,
                                tokens=_tokens(config, call), deadline_at=deadline_at,
                                pooled=pooled)
    if obs is not None:
        held_for(obs, res, _monotonic() - held)
    return res, trace


def _tokens(config: EndpointConfig, call: Call) -> float:
    return estimate_tokens(call) if config.settings.tpm else 0.0


def _hold_sync(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
    deadline_at: float | None,
) -> Reservation | None:
    while True:
        res, wait = _book(x, endpoint, config, call, deadline_at)
        while wait > 0:
            assert res is not None
            try:
                _sleep(wait)
            except BaseException:
                endpoint.cancel(res)
                raise
            more = _waited(endpoint, res)
            if more is None:
                break
            wait = more
        else:
            return res


async def _hold_async(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
    deadline_at: float | None, *, res: Reservation | None, wait: float,
) -> Reservation | None:
    """Wait out the booking ``res`` (``wait`` seconds), booking again as long as told."""
    while True:
        while wait > 0:
            assert res is not None
            try:
                await _asleep(wait)
            except BaseException:
                endpoint.cancel(res)
                raise
            more = _waited(endpoint, res)
            if more is None:
                break
            wait = more
        else:
            return res
        res, wait = _book(x, endpoint, config, call, deadline_at)


def learn(x: Exchanger, endpoint: Endpoint, headers: Mapping[str, str] | None) -> None:
    """What the headers of an answer just received say of the endpoint's budgets, if the
    plugin reads them."""
    hooks = x.hooks
    if headers and hooks.reads_rate_limits:
        limits = hooks.parse_rate_limits(headers)
        if limits is not None:
            endpoint.learn(limits)
            if endpoint.shared is not None:
                _share(endpoint.shared, limits)


def _share(shared: SharedEndpoint, limits: RateLimits) -> None:
    """What the headers say, as the gate reads them (``Gate.learn``), for the next
    settle to share: a token budget spent pauses until its reset; the requests budget
    spent paces attempts one reset apart until some is reported left."""
    pause = spent = None
    remaining, reset = limits.tokens_remaining, limits.tokens_reset
    if remaining is not None and remaining <= 0 and reset is not None and reset > 0:
        pause = reset
    remaining, reset = limits.requests_remaining, limits.requests_reset
    if remaining is not None:
        if remaining > 0:
            spent = -1.0
        elif reset is not None and reset > 0:
            spent = reset
    if pause is not None or spent is not None:
        shared.heard(pause, "the server's tokens budget is spent", spent)


def ended(
    endpoint: Endpoint, res: Reservation | None, exc: BaseException | None,
    used: float | None = None,
) -> asyncio.Task[None] | None:
    """An attempt's outcome on its endpoint: ``exc`` ``None`` (answered, ``used`` tokens;
    0 or ``None``: the server reported none, and the estimate stands), a
    :class:`CallError` (failed: health, pauses), anything else (cancelled: no outcome; a
    pool releases a probe it took). With shared limits on an event loop, the settling task
    is returned for the caller to await when the call ends normally."""
    gate = endpoint.gate
    was = gate.unhealthy_until, gate.disabled
    if exc is None:
        endpoint.answered()
        if not used:
            used = None
    elif isinstance(exc, CallError):
        endpoint.failed(exc)
    booked = res.tokens if res is not None else 0.0
    if res is not None:
        endpoint.settle(res, res.tokens if used is None else used)
    if endpoint.shared is None:
        return None
    health = ("", 0.0)
    if exc is None:
        health = ("well", 0.0)
    elif gate.disabled and not was[1]:  # shared for as long as the longest cooldown
        health = ("off", endpoint.config.settings.max_cooldown)
    elif gate.unhealthy_until > was[0]:
        health = ("sick", gate.unhealthy_until - _monotonic())
    return release(endpoint, res, exc, used, booked, health=health)

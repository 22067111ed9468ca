"""The unary call engine: admission to the queue, the retry loop, the exchange(s), stats.

Every call goes: admit (or reject at once when the queue is full) -> wait for a slot ->
attempts under stamina's retry loop, each one the plugin's exchange(s) over HTTP, bounded by
the attempt's timeout and the call's deadline -> the plugin's parser -> usage and request
IDs on the result -> stats. Whatever happens, an admitted call ends exactly once, with a
result or an error, and gives its slot back. Streams run the same way in ``_stream``;
what both share (requests, errors, limits) is in ``_exchange``.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import cast

import httpx2

from ._bounds import Bound
from ._endpoint import Endpoint
from ._errors import CallError, ResponseError
from ._exchange import Exchanger, R, Result, builtins_TimeoutError, loop_time
from ._expiry import arm
from ._http import HTTP
from ._observe import Observation, Observer, observe_call
from ._pace import ended, hold_async, hold_sync, learn
from ._plugin import PluginHooks
from ._retry import Attempts, retry_async, retry_sync
from ._secrets import redact_cause
from ._settings import EndpointConfig
from ._stream import (
    _aonce,
    _once,
    begin,
    queue_async,
    queue_sync,
    stream_async,
    stream_sync,
)
from ._types import Call, Exchange, InvokeResult, StreamChunk, Usage
from ._watchdog import watch

__all__ = ["Engine"]

_monotonic = time.monotonic


class Engine:
    """Runs calls of one backend through its endpoints."""

    __slots__ = ("x",)

    def __init__(self, hooks: PluginHooks, http: HTTP, observers: Sequence[Observer] = ()):
        self.x = Exchanger(hooks, http, observers)

    def call(
        self, endpoint: Endpoint, call: Call, expect: type[R], *, once: bool = False,
        deadline_at: float | None = None, observation: Observation | None = None,
    ) -> R:
        """Run a unary call on the calling thread; its result must be an ``expect``.

        ``once``: one attempt, no retries (a pool retries, on other endpoints);
        ``deadline_at`` (on ``time.monotonic``): a deadline of the caller's, if earlier
        than the endpoint's own; ``observation``: the pool call's, of which this is an
        attempt.
        """
        x = self.x
        config, start, deadline_at, waiter, obs = begin(
            x, endpoint, call, deadline_at,
            observe_call(x, endpoint, endpoint.config, call, stream=False, given=observation),
            own=observation is None)
        holding = waiter is None
        try:
            if waiter is not None:
                queue_sync(x, endpoint, config, call, waiter, deadline_at=deadline_at,
                           obs=obs, start=start)
                holding = True
            result = self._attempts_sync(endpoint, config, call, deadline_at, expect,
                                         once=once, obs=obs)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit...: counted cancelled
            obs.end(None, exc)
            raise
        else:
            obs.end(result, None)
            return result
        finally:
            endpoint.release(holding=holding, waiter=waiter)

    def _attempts_sync(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, deadline_at: float | None,
        expect: type[R], *, once: bool, obs: Observation | None,
    ) -> R:
        x = self.x
        chain = Chain(x.hooks.send(call, config))

        def attempt() -> Result:
            res, trace = hold_sync(x, endpoint, config, call, deadline_at, pooled=once, obs=obs)
            try:
                out = self._chain_sync(endpoint, config, call, chain, deadline_at, trace=trace)
            except CallError as exc:
                ended(endpoint, res, exc, 0)
                if obs is not None:
                    obs.attempt_end(exc, exc.status)
                raise
            except BaseException as exc:
                ended(endpoint, res, exc)
                if obs is not None:
                    obs.attempt_end(exc)
                raise
            ended(endpoint, res, None, out.usage.total_tokens)
            if obs is not None:
                obs.attempt_end(None)
            return out

        state = Attempts(endpoint, config, deadline_at, obs)
        result = (_once(attempt, x=x, endpoint=endpoint, config=config, call=call) if once
                  else retry_sync(state, attempt))
        return expected(x.backend, config, call, result, expect)

    def _chain_sync(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, chain: Chain,
        deadline_at: float | None, *, trace: dict[str, str] | None = None,
    ) -> Result:
        x = self.x
        client = x.http.sync
        exchange, usage = chain.exchange, chain.usage
        while True:
            end = x.attempt_end(config, deadline_at)
            request = x.request(client, config, call, exchange, end, trace=trace)
            resp = self._send_sync(client, config, call, request, end)
            learn(x, endpoint, resp.headers)
            if resp.status_code >= 300:
                raise x.status_error(config, call, resp)
            out = x.finish(config, call, exchange, resp, usage)
            if isinstance(out, tuple):
                exchange, usage = chain.moved(*out)
                continue
            return out

    def _send_sync(
        self, client: httpx2.Client, config: EndpointConfig, call: Call,
        request: httpx2.Request, end: Bound,
    ) -> httpx2.Response:
        """Send ``request`` and read its whole response by ``end.at``, however it trickles."""
        x = self.x
        resp = x.open_sync(client, config, call, request, end)
        guard = watch(resp, end.at)
        try:
            resp.read()
        except httpx2.HTTPError as exc:
            if guard.fired or isinstance(exc, httpx2.TimeoutException):
                raise x.limit_error(config, call, end.what, cause=exc) from None
            raise x.transport_error(config, call, exc) from exc
        finally:
            guard.cancel()
            resp.close()
        return resp

    async def acall(
        self, endpoint: Endpoint, call: Call, expect: type[R], *, once: bool = False,
        deadline_at: float | None = None, observation: Observation | None = None,
    ) -> R:
        """Run a unary call on the running event loop (no thread hops); its result must be
        an ``expect``. ``once``, ``deadline_at`` and ``observation`` as for :meth:`call`."""
        x = self.x
        config, start, deadline_at, waiter, obs = begin(
            x, endpoint, call, deadline_at,
            observe_call(x, endpoint, endpoint.config, call, stream=False, given=observation),
            own=observation is None)
        holding = waiter is None
        try:
            if deadline_at is None:
                if waiter is not None:
                    await queue_async(endpoint, waiter, obs=obs, start=start)
                    holding = True
                result = await self._attempts_async(endpoint, config, call, None, expect,
                                                    once=once, obs=obs)
            else:
                try:
                    async with asyncio.timeout_at(loop_time(deadline_at)):
                        if waiter is not None:
                            await queue_async(endpoint, waiter, obs=obs, start=start)
                            holding = True
                        result = await self._attempts_async(
                            endpoint, config, call, deadline_at, expect, once=once, obs=obs)
                except builtins_TimeoutError as exc:
                    if isinstance(exc, CallError):
                        raise
                    where = "running" if holding else "waiting in the queue"
                    redact_cause(config, exc)  # it stays reachable as __context__
                    raise x.deadline_error(config, call, where) from None
        except BaseException as exc:  # CancelledError, KeyboardInterrupt...: counted cancelled
            obs.end(None, exc)
            raise
        else:
            obs.end(result, None)
            return result
        finally:
            endpoint.release(holding=holding, waiter=waiter)

    async def _attempts_async(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, deadline_at: float | None,
        expect: type[R], *, once: bool, obs: Observation | None,
    ) -> R:
        x = self.x
        chain = Chain(x.hooks.send(call, config))

        async def attempt() -> Result:
            res, trace = await hold_async(x, endpoint, config, call, deadline_at, pooled=once,
                                          obs=obs)
            try:
                out = await self._chain_async(endpoint, config, call, chain, deadline_at,
                                             trace=trace)
            except CallError as exc:
                if obs is not None:
                    obs.attempt_end(exc, exc.status)
                settling = ended(endpoint, res, exc, 0)
                if settling is not None:  # shared limits: the lease is back before the retry
                    await asyncio.shield(settling)  # cancelled, it still settles
                raise
            except BaseException as exc:
                ended(endpoint, res, exc)
                if obs is not None:
                    obs.attempt_end(exc)
                raise
            if obs is not None:
                obs.attempt_end(None)
            settling = ended(endpoint, res, None, out.usage.total_tokens)
            if settling is not None:
                await asyncio.shield(settling)  # cancelled, it still settles
            return out

        state = Attempts(endpoint, config, deadline_at, obs)
        result = await (
            _aonce(attempt, x=x, endpoint=endpoint, config=config, call=call) if once
            else retry_async(state, attempt))
        return expected(x.backend, config, call, result, expect)

    async def _chain_async(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, chain: Chain,
        deadline_at: float | None, *, trace: dict[str, str] | None = None,
    ) -> Result:
        x = self.x
        client = x.http.on_loop()
        if client is None:
            client = await x.http.for_loop(asyncio.get_running_loop())
        exchange, usage = chain.exchange, chain.usage
        while True:
            request = x.request(client, config, call, exchange, trace=trace)
            # what _send_async does, inline: one coroutine less on every call's way
            end = x.attempt_end(config, deadline_at)
            expiry = None if end.what == "deadline" else arm(end.at, config.settings.timeout)
            try:
                resp = await client.send(request)
            except httpx2.TimeoutException as exc:
                raise x.limit_error(config, call, end.what, cause=exc) from None
            except httpx2.HTTPError as exc:
                raise x.transport_error(config, call, exc) from exc
            except asyncio.CancelledError as exc:
                if expiry is not None and expiry.leave():  # the attempt's time ran out
                    raise x.limit_error(config, call, "attempt", cause=exc) from None
                raise
            finally:
                if expiry is not None:
                    expiry.leave()
            learn(x, endpoint, resp.headers)
            if resp.status_code >= 300:
                raise x.status_error(config, call, resp)
            out = x.finish(config, call, exchange, resp, usage)
            if isinstance(out, tuple):
                exchange, usage = chain.moved(*out)
                continue
            return out

    # -- streams -----------------------------------------------------------------------

    def stream(
        self, endpoint: Endpoint, call: Call, *, once: bool = False,
        deadline_at: float | None = None, observation: Observation | None = None,
    ) -> Generator[StreamChunk, None, None]:
        """Run a streamed call on the calling thread, yielding chunks as they arrive
        (``once``, ``deadline_at`` and ``observation`` as for :meth:`call`)."""
        return stream_sync(self.x, endpoint, call, once=once, deadline_at=deadline_at,
                           observation=observation)

    def astream(
        self, endpoint: Endpoint, call: Call, *, once: bool = False,
        deadline_at: float | None = None, observation: Observation | None = None,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Run a streamed call on the running event loop, yielding chunks as they arrive."""
        return stream_async(self.x, endpoint, call, once=once, deadline_at=deadline_at,
                            observation=observation)


def expected(backend: str, config: EndpointConfig, call: Call, result: Result,
             expect: type[R]) -> R:
    """``result`` if it is what the operation returns; a ResponseError if not.

    One deprecation, as the plugin API promises before a change: ``invoke`` operations
    whose parser answers with a ``ChatResult`` or ``EmbedResult`` still work, with a
    ``DeprecationWarning``; they must return ``InvokeResult``.
    """
    if isinstance(result, expect):
        return result
    if expect is InvokeResult:
        warnings.warn(
            f"backend {backend!r} returned {type(result).__name__} for the invoke "
            f"operation {call.operation!r}: return InvokeResult(data=...) instead; other "
            "result types will be refused in a later release",
            DeprecationWarning, stacklevel=2,
        )
        return cast("R", result)
    err = ResponseError(
        f"backend {backend!r} returned {type(result).__name__} for "
        f"{call.operation!r}, expected {expect.__name__}",
        backend=backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
    )
    err.retryable = False
    raise err


class Chain:
    """Where a call's attempts start: its first exchange, or the last follow-up marked
    ``resume`` that an attempt reached (with the usage gathered before it)."""

    __slots__ = ("exchange", "usage")

    def __init__(self, first: Exchange) -> None:
        self.exchange = first
        self.usage: Usage | None = None

    def moved(self, exchange: Exchange, usage: Usage | None) -> tuple[Exchange, Usage | None]:
        """The chain goes on to ``exchange``; a retry starts there if it says ``resume``."""
        if exchange.resume:
            self.exchange, self.usage = exchange, usage
        return exchange, usage

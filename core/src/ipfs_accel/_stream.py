"""Running a streamed call: admission, retries up to the first chunk, the rest, the count.

The deadline covers the queue wait and opening the stream (the attempt, retried like a
unary call); after the first chunk the reader (``_readers``) bounds each silence by the
idle limit and everything by the deadline. Whatever ends the stream (its last event, an
error, the consumer closing it, a cancellation) ends the call exactly once and frees its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from typing import TypeVar

from ._endpoint import Endpoint
from ._errors import CallError
from ._exchange import Exchanger, builtins_TimeoutError, loop_time
from ._limits import Reservation
from ._observe import Observation, end_of, observe_call
from ._pace import ended, hold_async, hold_sync, learn
from ._pace_shared import refuse_closed, release
from ._queue import Waiter
from ._readers import AsyncStream, SyncStream
from ._retry import Attempts, retry_async, retry_sync
from ._secrets import redact_cause
from ._settings import EndpointConfig
from ._stats import Counted
from ._types import Call, Exchange, StreamChunk, Usage

__all__ = ["stream_async", "stream_sync"]

_monotonic = time.monotonic
_T = TypeVar("_T")


def stream_sync(
    x: Exchanger, endpoint: Endpoint, call: Call, *, once: bool = False,
    deadline_at: float | None = None, observation: Observation | None = None,
) -> Generator[StreamChunk, None, None]:
    """Run a streamed call on the calling thread, yielding chunks as they arrive.

    Opening the stream (up to its first chunk) is the attempt, retried like a unary
    call (``once``: not retried, a pool does that); after that ``stream_idle_timeout``
    bounds each silence and the deadline (``deadline_at``, if earlier than the
    endpoint's) the whole stream; ``observation``: the pool call's, of which this is an
    attempt.
    """
    config, start, deadline_at, waiter, obs = begin(
        x, endpoint, call, deadline_at,
        observe_call(x, endpoint, endpoint.config, call, stream=True, given=observation),
        own=observation is None)
    holding = waiter is None
    ok = False
    reader: SyncStream | None = None
    booked: Reservation | None = None
    error: BaseException | None = None
    try:
        if waiter is not None:
            queue_sync(x, endpoint, config, call, waiter, deadline_at=deadline_at, obs=obs,
                       start=start)
            holding = True
        exchange = x.hooks.send(call, config)

        def attempt() -> StreamChunk | None:
            nonlocal reader, booked
            if reader is not None:
                reader.close()
                reader = None
            reader, booked, first = _open(x, endpoint, config, call, exchange,
                                          deadline_at=deadline_at, pooled=once, obs=obs)
            return first

        state = Attempts(endpoint, config, deadline_at, obs)
        first = (_once(attempt, x=x, endpoint=endpoint, config=config, call=call) if once
                 else retry_sync(state, attempt))
        assert reader is not None
        told = obs.wants_chunks
        if first is not None:
            reader.yielded = True
            obs.first_chunk()
            if told:
                obs.chunk(first)
            yield first
        if told:
            for chunk in _rest(reader, state):
                obs.chunk(chunk)
                yield chunk
        else:
            yield from _rest(reader, state)
        ok = True
    except BaseException as exc:
        # GeneratorExit: the consumer closed the stream before its end (counted cancelled)
        error = exc
        raise
    finally:
        try:
            if reader is not None:
                reader.close()
        finally:
            _settle(endpoint, booked, reader.usage if reader is not None else None)
            _ended(obs, reader, ok, error)
            endpoint.release(holding=holding, waiter=waiter)


async def stream_async(  # noqa: PLR0915 - one generator: its stages share its state
    x: Exchanger, endpoint: Endpoint, call: Call, *, once: bool = False,
    deadline_at: float | None = None, observation: Observation | None = None,
) -> AsyncGenerator[StreamChunk, None]:
    """Run a streamed call on the running event loop, yielding chunks as they arrive."""
    config, start, deadline_at, waiter, obs = begin(
        x, endpoint, call, deadline_at,
        observe_call(x, endpoint, endpoint.config, call, stream=True, given=observation),
        own=observation is None)
    holding = waiter is None
    ok = False
    reader: AsyncStream | None = None
    booked: Reservation | None = None
    settling: asyncio.Task[None] | None = None
    error: BaseException | None = None
    try:
        try:
            # The deadline scope covers the queue wait and opening the stream (up to its
            # first chunk); after that the reader bounds each read by the idle limit and
            # the deadline, since a scope cannot span the consumer's code between chunks.
            async with asyncio.timeout_at(
                None if deadline_at is None else loop_time(deadline_at)
            ):
                if waiter is not None:
                    await queue_async(endpoint, waiter, obs=obs, start=start)
                    holding = True
                exchange = x.hooks.send(call, config)

                async def attempt() -> StreamChunk | None:
                    nonlocal reader, booked
                    if reader is not None:
                        await reader.aclose()
                        reader = None
                    reader, booked, first = await _aopen(
                        x, endpoint, config, call, exchange, deadline_at=deadline_at,
                        pooled=once, obs=obs)
                    return first

                state = Attempts(endpoint, config, deadline_at, obs)
                first = await (
                    _aonce(attempt, x=x, endpoint=endpoint, config=config, call=call) if once
                    else retry_async(state, attempt))
        except builtins_TimeoutError as exc:
            if isinstance(exc, CallError):
                raise
            where = "running" if holding else "waiting in the queue"
            redact_cause(config, exc)  # it stays reachable as __context__
            raise x.deadline_error(config, call, where) from None
        assert reader is not None
        told = obs.wants_chunks
        if first is not None:
            reader.yielded = True
            obs.first_chunk()
            if told:
                obs.chunk(first)
            yield first
        async with contextlib.aclosing(_arest(reader, state)) as rest:
            async for chunk in rest:
                if told:
                    obs.chunk(chunk)
                yield chunk
        ok = True
    except BaseException as exc:
        # CancelledError, or GeneratorExit: the consumer closed the stream before its end
        error = exc
        raise
    finally:
        try:
            if reader is not None:
                await reader.aclose()
        finally:
            settling = _settle(endpoint, booked, reader.usage if reader is not None else None)
            _ended(obs, reader, ok, error)
            endpoint.release(holding=holding, waiter=waiter)
    if settling is not None:  # ended normally: its shared lease is back before it returns
        await asyncio.shield(settling)  # cancelled, it still settles


def _open(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call, exchange: Exchange,
    *, deadline_at: float | None, pooled: bool, obs: Observation | None,
) -> tuple[SyncStream, Reservation | None, StreamChunk | None]:
    """One attempt at opening the stream: booked with the endpoint's gate, opened up to
    its first chunk, the outcome told to the endpoint; a failed reader is closed."""
    booked, trace = hold_sync(x, endpoint, config, call, deadline_at, pooled=pooled, obs=obs)
    reader = SyncStream(x, config, call, exchange, deadline_at)
    reader.trace = trace
    try:
        first = reader.open()
    except BaseException as exc:
        _failed(x, endpoint, reader, booked, exc, obs=obs)
        reader.close()
        raise
    learn(x, endpoint, reader.headers)
    ended(endpoint, None, None)
    if obs is not None:
        obs.attempt_end(None)
    return reader, booked, first


async def _aopen(
    x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call, exchange: Exchange,
    *, deadline_at: float | None, pooled: bool, obs: Observation | None,
) -> tuple[AsyncStream, Reservation | None, StreamChunk | None]:
    """:func:`_open` on the event loop."""
    booked, trace = await hold_async(x, endpoint, config, call, deadline_at, pooled=pooled,
                                     obs=obs)
    reader = AsyncStream(x, config, call, exchange, deadline_at)
    reader.trace = trace
    try:
        first = await reader.open()
    except BaseException as exc:
        _failed(x, endpoint, reader, booked, exc, obs=obs)
        await reader.aclose()
        raise
    learn(x, endpoint, reader.headers)
    ended(endpoint, None, None)
    if obs is not None:
        obs.attempt_end(None)
    return reader, booked, first


def begin(x: Exchanger, endpoint: Endpoint, call: Call, deadline_at: float | None,
          obs: Observation | None, *, own: bool,
          ) -> tuple[EndpointConfig, float, float | None, Waiter | None, Counted]:
    """:meth:`Exchanger.begin`, and the stats' observation of the call admitted, passing
    each event on to ``obs`` (the observers'; ``own``: the call's own, which it ends too,
    not a pool's); a call refused there (its queue full) ends ``obs`` if its own."""
    try:
        config, start, deadline_at, waiter = x.begin(endpoint, call, deadline_at)
    except BaseException as exc:
        if own:
            end_of(obs, None, exc)
        raise
    return config, start, deadline_at, waiter, endpoint.counted(start, waiter, obs, ends=own)


def _ended(obs: Counted, reader: SyncStream | AsyncStream | None, ok: bool,
           error: BaseException | None) -> None:
    """The stream ended, read to its end (``ok``) or with ``error``: what its reader knew
    (usage, finish), then its end, told to the stats' observation and on."""
    if reader is not None:
        obs.streamed(reader)
    obs.end(reader if ok else None, error)


def queue_sync(x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call,
               waiter: Waiter, *, deadline_at: float | None, obs: Observation | None,
               start: float) -> None:
    """Wait in the endpoint's queue for a slot (blocking), told to the observation."""
    if obs is not None:
        obs.queued()
    x.wait_sync(endpoint, config, call, waiter, deadline_at)
    if obs is not None:
        obs.dequeued(_monotonic() - start)


async def queue_async(endpoint: Endpoint, waiter: Waiter, *, obs: Observation | None,
                      start: float) -> None:
    """Wait in the endpoint's queue for a slot on the running loop, told to the
    observation."""
    if obs is not None:
        obs.queued()
    await endpoint.await_slot(waiter)
    if obs is not None:
        obs.dequeued(_monotonic() - start)


def _failed(
    x: Exchanger, endpoint: Endpoint, reader: SyncStream | AsyncStream,
    booked: Reservation | None, exc: BaseException, *, obs: Observation | None,
) -> None:
    """Opening a stream failed: what the answer's headers said, and the outcome."""
    learn(x, endpoint, reader.headers)
    ended(endpoint, booked, exc, 0 if isinstance(exc, CallError) else None)
    if obs is not None:
        obs.attempt_end(exc, exc.status if isinstance(exc, CallError) else None)


def _settle(endpoint: Endpoint, booked: Reservation | None,
            usage: Usage | None) -> asyncio.Task[None] | None:
    """A stream's tokens, known at its end, settle what its open attempt booked; its
    shared lease is given back."""
    tokens = booked.tokens if booked is not None else 0.0
    used = usage.total_tokens if usage is not None and usage.total_tokens else None
    if booked is not None and used is not None:
        endpoint.settle(booked, used)  # none reported: the estimate stands
    if endpoint.shared is not None and booked is not None:
        return release(endpoint, booked, None, used, tokens)
    return None


def _once(
    attempt: Callable[[], _T], *, x: Exchanger, endpoint: Endpoint, config: EndpointConfig,
    call: Call,
) -> _T:
    """One attempt, counted as the call's only one (a pool's), unless the endpoint closed
    while the call waited for it."""
    refuse_closed(x, endpoint, config, call)
    try:
        return attempt()
    except CallError as exc:
        exc.attempts = 1
        raise


async def _aonce(
    attempt: Callable[[], Awaitable[_T]], *, x: Exchanger, endpoint: Endpoint,
    config: EndpointConfig, call: Call,
) -> _T:
    """:func:`_once` for coroutines."""
    refuse_closed(x, endpoint, config, call)
    try:
        return await attempt()
    except CallError as exc:
        exc.attempts = 1
        raise


def _rest(reader: SyncStream, state: Attempts) -> Iterator[StreamChunk]:
    """The chunks after the first; a failure among them ends the call's last attempt."""
    try:
        yield from reader.rest()
    except CallError as exc:
        exc.attempts = state.count
        raise


async def _arest(reader: AsyncStream, state: Attempts) -> AsyncGenerator[StreamChunk, None]:
    """:func:`_rest` on the event loop."""
    try:
        async for chunk in reader.rest():
            yield chunk
    except CallError as exc:
        exc.attempts = state.count
        raise

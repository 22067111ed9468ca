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
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

from ._endpoint import Endpoint
from ._errors import CallError
from ._exchange import Exchanger, builtins_TimeoutError, loop_time
from ._readers import AsyncStream, SyncStream
from ._retry import Attempts, retry_async, retry_sync
from ._secrets import redact_cause
from ._types import Call, StreamChunk

__all__ = ["stream_async", "stream_sync"]

_monotonic = time.monotonic


def stream_sync(x: Exchanger, endpoint: Endpoint, call: Call) -> Iterator[StreamChunk]:
    """Run a streamed call on the calling thread, yielding chunks as they arrive.

    Opening the stream (up to its first chunk) is the attempt, retried like a unary
    call; after that ``stream_idle_timeout`` bounds each silence and the deadline the
    whole stream.
    """
    config, start, deadline_at, waiter = x.begin(endpoint, call)
    holding = waiter is None
    ok = cancelled = False
    reader: SyncStream | None = None
    try:
        if waiter is not None:
            x.wait_sync(endpoint, config, call, waiter, deadline_at)
            holding = True
        exchange = x.hooks.send(call, config)

        def attempt() -> StreamChunk | None:
            nonlocal reader
            if reader is not None:
                reader.close()
            reader = SyncStream(x, config, call, exchange, deadline_at)
            return reader.open()

        state = Attempts(endpoint, config, deadline_at)
        first = retry_sync(state, attempt)
        assert reader is not None
        if first is not None:
            reader.yielded = True
            yield first
        yield from _rest(reader, state)
        ok = True
    except BaseException as exc:
        # GeneratorExit: the consumer closed the stream before its end
        cancelled = not isinstance(exc, Exception)
        raise
    finally:
        try:
            if reader is not None:
                reader.close()
        finally:
            usage = reader.usage if reader is not None else None
            endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start, usage=usage,
                            cancelled=cancelled, waiter=waiter)

async def stream_async(x: Exchanger, endpoint: Endpoint, call: Call) -> AsyncIterator[StreamChunk]:
    """Run a streamed call on the running event loop, yielding chunks as they arrive."""
    config, start, deadline_at, waiter = x.begin(endpoint, call)
    holding = waiter is None
    ok = cancelled = False
    reader: AsyncStream | None = None
    try:
        try:
            # The deadline scope covers the queue wait and opening the stream (up to its
            # first chunk); after that the reader bounds each read by the idle limit and
            # the deadline, since a scope cannot span the consumer's code between chunks.
            async with asyncio.timeout_at(
                None if deadline_at is None else loop_time(deadline_at)
            ):
                if waiter is not None:
                    await endpoint.await_slot(waiter)
                    holding = True
                exchange = x.hooks.send(call, config)

                async def attempt() -> StreamChunk | None:
                    nonlocal reader
                    if reader is not None:
                        await reader.aclose()
                    reader = AsyncStream(x, config, call, exchange, deadline_at)
                    return await reader.open()

                state = Attempts(endpoint, config, deadline_at)
                first = await retry_async(state, attempt)
        except builtins_TimeoutError as exc:
            if isinstance(exc, CallError):
                raise
            where = "running" if holding else "waiting in the queue"
            redact_cause(config, exc)  # it stays reachable as __context__
            raise x.deadline_error(config, call, where) from None
        assert reader is not None
        if first is not None:
            reader.yielded = True
            yield first
        async with contextlib.aclosing(_arest(reader, state)) as rest:
            async for chunk in rest:
                yield chunk
        ok = True
    except BaseException as exc:
        # CancelledError, or GeneratorExit: the consumer closed the stream before its end
        cancelled = not isinstance(exc, Exception)
        raise
    finally:
        try:
            if reader is not None:
                await reader.aclose()
        finally:
            usage = reader.usage if reader is not None else None
            endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start,
                            usage=usage, cancelled=cancelled, waiter=waiter)


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

"""Reading a streamed answer: the sync and async readers behind ``stream``/``astream``.

A reader opens the request, reads up to the first chunk worth yielding (inside the retry
loop, so a failure before any text is retried), then yields the rest. The plugin's
``parse_event`` turns events into chunks; an error event is classified and raised, never
shown as text; a stream that ends before its terminal event is interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx2

from ._errors import CallError, StreamInterruptedError
from ._settings import EndpointConfig
from ._types import Call, Exchange, Failure, StreamChunk, StreamFailure, Usage
from ._wire import Event, aiter_events, iter_events

if TYPE_CHECKING:
    from ._call import Engine

__all__ = ["AsyncStream", "SyncStream"]


class _StreamBase:
    """What the sync and async stream readers share: turning events into chunks."""

    __slots__ = ("call", "config", "done", "engine", "exchange", "finish_reason", "headers",
                 "response", "server_request_id", "usage", "yielded")

    def __init__(self, engine: Engine, config: EndpointConfig, call: Call, exchange: Exchange):
        self.engine = engine
        self.config = config
        self.call = call
        self.exchange = exchange
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.yielded = False
        self.server_request_id: str | None = None
        self.headers: httpx2.Headers = httpx2.Headers()

    def event(self, event: Event) -> StreamChunk | None:
        engine = self.engine
        parse = self.exchange.parse_event
        assert parse is not None
        try:
            out = parse(event)
        except CallError:
            raise
        except Exception as exc:
            err = StreamInterruptedError(
                self.config.scrub(f"could not read a stream event: {type(exc).__name__}: {exc}"),
                backend=engine.backend, endpoint_id=self.config.endpoint_id,
                request_id=self.call.request_id, server_request_id=self.server_request_id,
            )
            err.retryable = False
            raise err from exc
        if isinstance(out, StreamFailure):
            failed = engine.error(
                self.config, self.call,
                Failure(operation=self.call.operation, status=out.status or 200,
                        headers=self.headers, data=out.data, in_stream=True),
                server_request_id=self.server_request_id,
            )
            if self.yielded:
                failed.retryable = False
            raise failed
        reported = engine.hooks.parse_usage(self.call.operation, event.json)
        if reported is not None:
            self.usage = reported if self.usage is None else self.usage.merged(reported)
        if out is None:
            return None
        out.request_id = self.call.request_id
        if self.server_request_id is None and out.server_request_id:
            # an ID only the body carries (Gemini's responseId) stands in for a header's
            self.server_request_id = out.server_request_id
        out.server_request_id = self.server_request_id
        if out.finish_reason is not None:
            self.finish_reason = out.finish_reason
        if out.done:
            self.done = True
            return self.final(out)
        if not out.delta and out.finish_reason is None:
            return None
        return out

    def final(self, last: StreamChunk) -> StreamChunk:
        last.usage = self.usage or last.usage or Usage()
        self.usage = last.usage
        if last.finish_reason is None:
            last.finish_reason = self.finish_reason
        return last

    def interrupted(self, cause: BaseException | None) -> CallError:
        err = StreamInterruptedError(
            "the stream ended before its final event"
            + (f" ({type(cause).__name__}: {cause})" if cause is not None else ""),
            backend=self.engine.backend, endpoint_id=self.config.endpoint_id,
            request_id=self.call.request_id, server_request_id=self.server_request_id,
        )
        err.retryable = not self.yielded
        return err


class SyncStream(_StreamBase):
    __slots__ = ("_cm", "_events")

    def open(self, deadline_at: float | None = None) -> StreamChunk | None:
        """Send the request and read up to the first chunk worth yielding."""
        engine = self.engine
        client = engine.http.sync
        request = engine._request(client, self.config, self.call, self.exchange, deadline_at)
        try:
            resp = client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            raise engine._transport_error(self.config, self.call, exc) from exc
        self.response = resp
        self.headers = resp.headers
        self.server_request_id = engine._server_request_id(resp.headers)
        if resp.status_code >= 400:
            try:
                resp.read()
            except httpx2.HTTPError as exc:
                raise engine._transport_error(self.config, self.call, exc) from exc
            finally:
                resp.close()
            raise engine._status_error(self.config, self.call, resp)
        kind = self.exchange.stream or "sse"
        self._events = iter_events(resp.iter_lines(), kind)
        return self._next()

    def _next(self) -> StreamChunk | None:
        while not self.done:
            try:
                event = next(self._events)
            except StopIteration:
                raise self.interrupted(None) from None
            except httpx2.HTTPError as exc:
                raise self.interrupted(exc) from exc
            chunk = self.event(event)
            if chunk is not None:
                return chunk
        return None

    def rest(self) -> Iterator[StreamChunk]:
        while not self.done:
            chunk = self._next()
            if chunk is None:
                break
            self.yielded = True
            yield chunk

    def close(self) -> None:
        response = getattr(self, "response", None)
        if response is not None:
            response.close()


class AsyncStream(_StreamBase):
    __slots__ = ("_events",)

    async def open(self) -> StreamChunk | None:
        engine = self.engine
        client = engine.http.for_loop(asyncio.get_running_loop())
        request = engine._request(client, self.config, self.call, self.exchange)
        try:
            resp = await client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            raise engine._transport_error(self.config, self.call, exc) from exc
        self.response = resp
        self.headers = resp.headers
        self.server_request_id = engine._server_request_id(resp.headers)
        if resp.status_code >= 400:
            try:
                await resp.aread()
            except httpx2.HTTPError as exc:
                raise engine._transport_error(self.config, self.call, exc) from exc
            finally:
                await resp.aclose()
            raise engine._status_error(self.config, self.call, resp)
        kind = self.exchange.stream or "sse"
        self._events = aiter_events(resp.aiter_lines(), kind)
        return await self._next()

    async def _next(self) -> StreamChunk | None:
        while not self.done:
            try:
                event = await self._events.__anext__()
            except StopAsyncIteration:
                raise self.interrupted(None) from None
            except httpx2.HTTPError as exc:
                raise self.interrupted(exc) from exc
            chunk = self.event(event)
            if chunk is not None:
                return chunk
        return None

    async def rest(self) -> AsyncIterator[StreamChunk]:
        while not self.done:
            chunk = await self._next()
            if chunk is None:
                break
            self.yielded = True
            yield chunk

    async def aclose(self) -> None:
        response = getattr(self, "response", None)
        if response is not None:
            await response.aclose()

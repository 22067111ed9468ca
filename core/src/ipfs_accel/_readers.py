"""Reading a streamed answer: the sync and async readers that ``_stream`` runs.

A reader opens the request, reads up to the first chunk worth yielding (inside the retry
loop, so a failure before any text is retried), then yields the rest. The plugin's
``parse_event`` turns events into chunks; an error event is classified and raised, never
shown as text; a stream that ends before its terminal event is interrupted.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import time
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx2
import msgspec

from ._bounds import Bound
from ._errors import CallError, StreamInterruptedError
from ._exchange import Exchanger, loop_time
from ._secrets import redact_cause
from ._settings import EndpointConfig
from ._toolcall import ToolCallParts, fill_ids
from ._types import Call, Exchange, Failure, StreamChunk, StreamFailure, Usage, fit_finish_reason
from ._validate import check_chunk, check_usage
from ._watchdog import watch
from ._wire import Event, aiter_events, event_decoder, iter_events

__all__ = ["AsyncStream", "SyncStream"]


class _StreamBase:
    """What the sync and async stream readers share: turning events into chunks."""

    __slots__ = ("bound", "call", "config", "deadline_at", "done", "exchange",
                 "finish_reason", "headers", "idle", "native_finish_reason", "parts", "response",
                 "server_request_id", "trace", "usage",
                 "x", "yielded")

    def __init__(
        self, x: Exchanger, config: EndpointConfig, call: Call, exchange: Exchange,
        deadline_at: float | None,
    ):
        self.x = x
        self.config = config
        self.call = call
        self.exchange = exchange
        self.deadline_at = deadline_at
        self.trace: dict[str, str] | None = None  # headers an observer sends with it
        # every socket read is bounded by ``timeout`` too, so a silence never outlasts it
        self.idle = min(config.settings.stream_idle_timeout, config.settings.timeout)
        self.bound = Bound(math.inf, "attempt")  # the limit of the wait in progress
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.done = False
        self.yielded = False
        self.server_request_id: str | None = None
        self.headers: Mapping[str, str] = _NO_HEADERS
        self.parts: ToolCallParts | None = None  # tool-call fragments, until the turn ends

    def event(self, event: Event) -> StreamChunk | None:
        x = self.x
        parse = self.exchange.parse_event
        assert parse is not None
        try:
            out = parse(event)
        except CallError:
            raise
        except Exception as exc:
            err = StreamInterruptedError(
                self.config.scrub(f"could not read a stream event: {type(exc).__name__}: {exc}"),
                backend=x.backend, endpoint_id=self.config.endpoint_id,
                request_id=self.call.request_id, server_request_id=self.server_request_id,
            )
            err.retryable = False
            raise err from exc
        if isinstance(out, StreamFailure):
            failed = x.error(
                self.config, self.call,
                Failure(operation=self.call.operation, status=out.status or 200,
                        headers=self.headers, data=out.data, in_stream=True),
                server_request_id=self.server_request_id,
            )
            if self.yielded:
                failed.retryable = False
            raise failed
        reported = x.hooks.parse_usage(self.call.operation, event.json)
        check_usage(reported, self.call, x.backend, self.config.endpoint_id,
                    self.server_request_id)
        if reported is not None:
            self.usage = reported if self.usage is None else self.usage.merged(reported)
        if out is None:
            return None
        check_chunk(out, self.call, x.backend, self.config.endpoint_id, self.server_request_id)
        if out.tool_call_deltas or out.tool_calls or (
            self.parts is not None and (out.finish_reason is not None or out.done)
        ):
            self.tools(out)
        fit_finish_reason(out)
        out.request_id = self.call.request_id
        if self.server_request_id is None and out.server_request_id:
            # an ID only the body carries (Gemini's responseId) stands in for a header's
            self.server_request_id = self.config.scrub(out.server_request_id)
        out.server_request_id = self.server_request_id
        if out.finish_reason is not None:
            self.finish_reason = out.finish_reason
            self.native_finish_reason = out.native_finish_reason
        if out.done:
            self.done = True
            return self.final(out)
        if (not out.delta and out.finish_reason is None and out.tool_call_deltas is None
                and out.tool_calls is None):
            return None
        return out

    def tools(self, out: StreamChunk) -> None:
        """Tool calls: fragments kept until the turn ends, then put whole on the chunk that
        ends it; whole calls a plugin sent get their IDs."""
        parts = self.parts
        if parts is None:
            parts = self.parts = ToolCallParts()
        if out.tool_calls:
            fill_ids(out.tool_calls, self.call.request_id, parts.count)
            parts.count += len(out.tool_calls)
        if out.tool_call_deltas:
            parts.add(out.tool_call_deltas)
        if out.finish_reason is not None or out.done:
            calls = parts.take(self.call.request_id)
            if calls:
                out.tool_calls = [*(out.tool_calls or ()), *calls]
            if out.finish_reason == "stop" and parts.count:  # the turn asked for tools
                out.native_finish_reason = out.native_finish_reason or "stop"
                out.finish_reason = "tool_calls"
            elif (out.done and out.finish_reason is None and self.finish_reason is None
                  and parts.count):  # a stream that ends with its calls, saying nothing more
                out.finish_reason = "tool_calls"

    def final(self, last: StreamChunk) -> StreamChunk:
        last.usage = self.usage or last.usage or Usage()
        self.usage = last.usage
        if last.finish_reason is None:
            last.finish_reason = self.finish_reason
            last.native_finish_reason = self.native_finish_reason
        return last

    def idle_bound(self, now: float) -> Bound:
        """The limit of a wait for the next data event that starts at ``now``."""
        at = now + self.idle
        deadline_at = self.deadline_at
        if deadline_at is not None and deadline_at <= at:
            return Bound(deadline_at, "deadline")
        return Bound(at, "idle")

    def timed_out(self, cause: BaseException | None = None) -> CallError:
        """The error for the limit of the wait in progress (:attr:`bound`), run out; raise
        it ``from None`` (``cause``, what was caught then, is redacted as a cause would be)."""
        err = self.x.limit_error(self.config, self.call, self.bound.what, self.idle,
                                      cause=cause)
        if self.yielded:
            err.retryable = False  # text already reached the caller: never start over
        return err

    def unfit(self, exc: msgspec.ValidationError) -> CallError:
        """A stream event that does not fit the exchange's ``event_type``."""
        err = self.x.unfit(self.config, self.call, "stream event", exc)
        err.server_request_id = self.server_request_id
        return err

    def interrupted(self, cause: BaseException | None) -> CallError:
        if cause is not None:
            redact_cause(self.config, cause)  # it becomes the error's __cause__
        err = StreamInterruptedError(
            "the stream ended before its final event"
            + (f" ({type(cause).__name__}: {cause})" if cause is not None else ""),
            backend=self.x.backend, endpoint_id=self.config.endpoint_id,
            request_id=self.call.request_id, server_request_id=self.server_request_id,
        )
        err.retryable = not self.yielded
        return err


class SyncStream(_StreamBase):
    """Reads a stream on the calling thread; the watchdog bounds every wait in wall time."""

    __slots__ = ("_events", "_guard")

    def open(self) -> StreamChunk | None:
        """Send the request and read up to the first chunk worth yielding, all within the
        attempt's timeout (or the call's deadline, if that comes first)."""
        x, config, call = self.x, self.config, self.call
        client = x.http.sync
        self.bound = end = x.attempt_end(config, self.deadline_at)
        request = x.request(client, config, call, self.exchange, end, trace=self.trace)
        self.response = resp = x.open_sync(client, config, call, request, end)
        self.headers = resp.headers
        self.server_request_id = x.server_request_id(config, resp.headers)
        self._guard = guard = watch(resp, end.at)
        if resp.status_code >= 300:
            try:
                resp.read()
            except httpx2.HTTPError as exc:
                if guard.fired or isinstance(exc, httpx2.TimeoutException):
                    raise self.timed_out(exc) from None
                raise x.transport_error(config, call, exc) from exc
            finally:
                guard.cancel()
                resp.close()
            raise x.status_error(config, call, resp)
        kind = self.exchange.stream or "sse"
        self._events = iter_events(resp.iter_lines(), kind, event_decoder(self.exchange.event_type))
        return self._next()

    def _next(self) -> StreamChunk | None:
        guard = self._guard
        flowing = self.yielded
        if flowing:
            self.bound = self.idle_bound(_monotonic())
            guard.extend(self.bound.at)
        while not self.done:
            try:
                event = next(self._events)
            except StopIteration:
                if guard.fired:
                    raise self.timed_out() from None
                raise self.interrupted(None) from None
            except msgspec.ValidationError as exc:
                raise self.unfit(exc) from None
            except httpx2.HTTPError as exc:
                if guard.fired or isinstance(exc, httpx2.TimeoutException):
                    raise self.timed_out(exc) from None
                raise self.interrupted(exc) from exc
            if flowing and event.event != _PING:  # progress: the silence starts again
                now = _monotonic()
                if now >= self.bound.at:
                    raise self.timed_out()
                self.bound = self.idle_bound(now)
                guard.extend(self.bound.at)
            chunk = self.event(event)
            if chunk is not None:
                guard.extend(math.inf)  # the consumer's time with the chunk is not silence
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
        guard = getattr(self, "_guard", None)
        if guard is not None:
            guard.cancel()
        response = getattr(self, "response", None)
        if response is not None:
            response.close()


class AsyncStream(_StreamBase):
    """Reads a stream on the running loop; cancel scopes bound every wait."""

    __slots__ = ("_events",)

    async def open(self) -> StreamChunk | None:
        """Send the request and read up to the first chunk worth yielding, within the
        attempt's timeout; when the call's deadline comes first, the caller's scope ends it."""
        self.bound = end = self.x.attempt_end(self.config, self.deadline_at)
        if end.what == "deadline":
            return await self._open()
        try:
            async with asyncio.timeout_at(loop_time(end.at)):
                return await self._open()
        except builtins.TimeoutError as exc:
            if isinstance(exc, CallError):
                raise
            raise self.timed_out(exc) from None

    async def _open(self) -> StreamChunk | None:
        x, config, call = self.x, self.config, self.call
        client = await x.http.for_loop(asyncio.get_running_loop())
        request = x.request(client, config, call, self.exchange, trace=self.trace)
        try:
            resp = await client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise x.limit_error(config, call, self.bound.what, cause=exc) from None
        except httpx2.HTTPError as exc:
            raise x.transport_error(config, call, exc) from exc
        self.response = resp
        self.headers = resp.headers
        self.server_request_id = x.server_request_id(config, resp.headers)
        if resp.status_code >= 300:
            try:
                await resp.aread()
            except httpx2.TimeoutException as exc:
                raise self.timed_out(exc) from None
            except httpx2.HTTPError as exc:
                raise x.transport_error(config, call, exc) from exc
            finally:
                await resp.aclose()
            raise x.status_error(config, call, resp)
        kind = self.exchange.stream or "sse"
        self._events = aiter_events(resp.aiter_lines(), kind,
                                    event_decoder(self.exchange.event_type))
        return await self._read(None)

    async def _next(self) -> StreamChunk | None:
        """The next chunk, each silence bounded by the idle limit and all by the deadline.

        One cancel scope per chunk, moved on at each data event, and none while the
        consumer holds a chunk: a scope must not reach into the consumer's code.
        """
        self.bound = self.idle_bound(_monotonic())
        try:
            async with asyncio.timeout_at(loop_time(self.bound.at)) as scope:
                return await self._read(scope)
        except builtins.TimeoutError as exc:
            if isinstance(exc, CallError):
                raise
            raise self.timed_out(exc) from None

    async def _read(self, scope: asyncio.Timeout | None) -> StreamChunk | None:
        while not self.done:
            try:
                event = await self._events.__anext__()
            except StopAsyncIteration:
                raise self.interrupted(None) from None
            except msgspec.ValidationError as exc:
                raise self.unfit(exc) from None
            except httpx2.TimeoutException as exc:
                raise self.timed_out(exc) from None
            except httpx2.HTTPError as exc:
                raise self.interrupted(exc) from exc
            if scope is not None and event.event != _PING:  # progress: silence starts again
                self.bound = self.idle_bound(_monotonic())
                scope.reschedule(loop_time(self.bound.at))
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


_NO_HEADERS: Mapping[str, str] = httpx2.Headers()  # before the answer's (case-insensitive)
_PING = "ping"  # Anthropic's keep-alive event: a sign of life, not progress
_monotonic = time.monotonic

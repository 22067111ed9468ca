"""The call engine: admission to the queue, the retry loop, one exchange, stats.

Every call goes: admit (or reject at once when the queue is full) -> wait for a slot ->
attempts under stamina's retry loop, each one the plugin's exchange(s) over HTTP -> the
plugin's parser -> usage and request IDs on the result -> stats. Whatever happens, an
admitted call ends exactly once, with a result or an error, and gives its slot back.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, TypeAlias

import httpx2
import msgspec

from ._bounds import Bound
from ._endpoint import Endpoint, EndpointConfig
from ._errors import (
    ERROR_CLASSES,
    CallError,
    ErrorKind,
    QueueFullError,
    ResponseError,
    TimeoutError,
)
from ._http import HTTP
from ._plugin import PluginHooks
from ._queue import QueueFull
from ._retry import Attempts, retry_async, retry_sync
from ._settings import redact_cause
from ._stream import AsyncStream, SyncStream
from ._types import (
    Call,
    ChatResult,
    Classification,
    EmbedResult,
    Exchange,
    Failure,
    InvokeResult,
    Response,
    StreamChunk,
    Usage,
)
from ._validate import check_result, check_usage
from ._watchdog import watch
from ._wire import decode_json, decode_typed, is_json

__all__ = ["Engine"]

Result: TypeAlias = ChatResult | EmbedResult | InvokeResult
_encode = msgspec.json.encode
_monotonic = time.monotonic
_JSON = "application/json"


class Engine:
    """Runs calls of one backend through its endpoints."""

    __slots__ = ("backend", "hooks", "http", "info", "rid_header", "timeouts")

    def __init__(self, hooks: PluginHooks, http: HTTP) -> None:
        self.hooks = hooks
        self.info = hooks.info
        self.backend = hooks.info.name
        self.rid_header = hooks.info.request_id_header.lower()
        self.http = http
        self.timeouts: dict[float, httpx2.Timeout] = {}

    # -- building blocks shared by the sync and async paths ---------------------------

    def _request(
        self, client: httpx2.Client | httpx2.AsyncClient, config: EndpointConfig, call: Call,
        exchange: Exchange, end: Bound | None = None,
    ) -> httpx2.Request:
        path = exchange.path
        url = path if path.startswith(("http://", "https://")) else config.base_url + path
        # Header names are case-insensitive: fold them so a user's "Accept" replaces ours.
        headers = {"accept": _JSON, self.rid_header: call.request_id}
        for extra in (config.settings.headers, exchange.headers):
            for name, value in extra.items():
                headers[name.lower()] = value
        content = None
        if exchange.json is not None:
            content = _encode(exchange.json)
            headers["content-type"] = _JSON
        timeout = self.timeouts.get(config.settings.timeout)
        if timeout is None:
            timeout = self.timeouts[config.settings.timeout] = httpx2.Timeout(
                config.settings.timeout
            )
        if end is not None:
            # Threads have no cancel scope: no socket operation may outlast the attempt (the
            # watchdog cuts off a response that trickles past it).
            remaining = end.at - _monotonic()
            if remaining <= 0:
                raise self.limit_error(config, call, end.what)
            if remaining < config.settings.timeout:
                timeout = httpx2.Timeout(remaining)
        return client.build_request(
            exchange.method, url, content=content, params=exchange.params, headers=headers,
            timeout=timeout,
        )

    def _server_request_id(self, config: EndpointConfig, headers: httpx2.Headers) -> str | None:
        for name in self.info.server_request_id_headers:
            value = headers.get(name)
            if value:
                return config.scrub(value)  # a server may echo the key in it
        return None

    def error(
        self,
        config: EndpointConfig,
        call: Call,
        failure: Failure,
        *,
        server_request_id: str | None = None,
    ) -> CallError:
        """The exception for a failed exchange, as the plugin classifies it."""
        c = self.hooks.classify_error(failure)
        return self._build_error(config, call, c, failure, server_request_id)

    def _build_error(
        self,
        config: EndpointConfig,
        call: Call,
        c: Classification,
        failure: Failure,
        server_request_id: str | None,
    ) -> CallError:
        kind = c.kind if isinstance(c.kind, ErrorKind) else ErrorKind.SERVER
        body = failure.data
        if body is not None and config.api_key is not None:
            try:
                if config.quotes_key(_encode(body).decode("utf-8", "replace")):
                    body = None
            except (TypeError, msgspec.EncodeError):
                body = None
        exc = ERROR_CLASSES[kind](
            config.scrub(c.message or kind.value),
            backend=self.backend,
            endpoint_id=config.endpoint_id,
            request_id=call.request_id,
            server_request_id=server_request_id,
            status=failure.status,
            code=c.code,
            retry_after=c.retry_after,
            body=body,
        )
        exc.retryable = c.retryable
        return exc

    def _transport_error(
        self, config: EndpointConfig, call: Call, exc: Exception
    ) -> CallError:
        redact_cause(config, exc)  # it becomes our __cause__: no key in its request or frames
        err = self.error(config, call, Failure(operation=call.operation, exception=exc))
        err.__cause__ = exc
        return err

    def _status_error(
        self, config: EndpointConfig, call: Call, resp: httpx2.Response
    ) -> CallError:
        if resp.status_code < 400:
            return self._redirect_error(config, call, resp)
        content = resp.content
        failure = Failure(
            operation=call.operation,
            status=resp.status_code,
            headers=resp.headers,
            content=content,
            data=decode_json(content),
        )
        return self.error(
            config, call, failure, server_request_id=self._server_request_id(config, resp.headers)
        )

    def _redirect_error(
        self, config: EndpointConfig, call: Call, resp: httpx2.Response
    ) -> CallError:
        """A 3xx: never followed (the key must not travel to another address), never retried."""
        location = resp.headers.get("location")
        where = f"to {location}" if location else "without a Location"
        err = ResponseError(
            config.scrub(
                f"the server redirected ({resp.status_code}) {where}; redirects are not "
                "followed, so that no key travels to another address: set base_url to "
                "where the API now is"
            ),
            backend=self.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            server_request_id=self._server_request_id(config, resp.headers), status=resp.status_code,
        )
        err.retryable = False
        return err

    def unfit(
        self, config: EndpointConfig, call: Call, what: str, exc: msgspec.DecodeError,
        *, was_json: bool = True, status: int | None = None,
        headers: httpx2.Headers | None = None,
    ) -> ResponseError:
        """A body (or stream event) that does not fit the type the plugin declared for it:
        msgspec's message names the field (``$.choices[0].finish_reason``). Never retried:
        the same server sends the same shape again."""
        reason = "it does not fit the API" if was_json else "it is not JSON"
        err = ResponseError(
            config.scrub(f"{self.backend} sent a {what} that could not be read, {reason}: {exc}"),
            backend=self.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            server_request_id=None if headers is None else self._server_request_id(config, headers),
            status=status,
        )
        err.retryable = False
        return err

    def limit_error(
        self, config: EndpointConfig, call: Call, what: str, idle: float | None = None,
        cause: BaseException | None = None,
    ) -> TimeoutError:
        """The error for a time limit that ran out: ``what`` is ``"deadline"`` (the call's;
        never retried), ``"attempt"`` (the endpoint's ``timeout``; retried like any
        timeout) or ``"idle"`` (``idle`` seconds between two stream events).

        ``cause`` is what was caught when the limit struck (raise the result ``from None``):
        it stays reachable as ``__context__``, so it is redacted like any chained cause.
        """
        if cause is not None:
            redact_cause(config, cause)
        s = config.settings
        if what == "deadline":
            return self._deadline_error(config, call, "running")
        if what == "idle":
            message = f"the stream stalled: no data event for {idle}s (stream_idle_timeout)"
        else:
            message = f"the attempt took longer than its timeout of {s.timeout}s"
        err = TimeoutError(
            message, backend=self.backend, endpoint_id=config.endpoint_id,
            request_id=call.request_id,
        )
        err.retryable = True
        return err

    def attempt_end(self, config: EndpointConfig, deadline_at: float | None) -> Bound:
        """When an attempt starting now must end: its timeout, or the call's deadline if
        that comes first."""
        at = _monotonic() + config.settings.timeout
        if deadline_at is not None and deadline_at <= at:
            return Bound(deadline_at, "deadline")
        return Bound(at, "attempt")

    def _finish(
        self,
        config: EndpointConfig,
        call: Call,
        exchange: Exchange,
        resp: httpx2.Response,
        usage: Usage | None,
    ) -> Result | tuple[Exchange, Usage | None]:
        """Parse a 2xx response into a result, or into the chain's next exchange and the
        usage reported so far."""
        content = resp.content
        if exchange.response_type is None:
            data = decode_json(content)
        else:
            try:
                data = decode_typed(content, exchange.response_type)
            except msgspec.DecodeError as exc:  # ValidationError too: it names the field
                raise self.unfit(config, call, f"{call.operation} response", exc,
                                 was_json=is_json(content), status=resp.status_code,
                                 headers=resp.headers) from None
        response = Response(
            status=resp.status_code, headers=resp.headers, content=content, data=data,
        )
        parse = exchange.parse
        if parse is None:
            raise ResponseError(
                f"backend {self.backend!r} gave no parser for {call.operation!r}",
                backend=self.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            )
        try:
            result = parse(response)
        except CallError:
            raise
        except Exception as exc:  # a body the plugin cannot read is the server's fault
            err = ResponseError(
                config.scrub(f"could not read the {call.operation} response: "
                             f"{type(exc).__name__}: {exc}"),
                backend=self.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
                server_request_id=self._server_request_id(config, resp.headers),
                status=resp.status_code,
            )
            err.retryable = False
            raise err from exc
        reported = self.hooks.parse_usage(call.operation, response.data)
        check_usage(reported, call, self.backend, config.endpoint_id)
        if isinstance(result, Exchange):
            if reported is not None:
                usage = reported if usage is None else usage.plus(reported)
            return result, usage
        if reported is not None:
            result.usage = reported if usage is None else usage.plus(reported)
        elif usage is not None:
            result.usage = usage.plus(result.usage)
        result.request_id = call.request_id
        if result.server_request_id is None:
            result.server_request_id = self._server_request_id(config, resp.headers)
        check_result(result, call, self.backend, config.endpoint_id, result.server_request_id)
        return result

    # -- unary calls -----------------------------------------------------------------

    def call(self, endpoint: Endpoint, call: Call) -> Result:
        """Run a unary call on the calling thread."""
        config = endpoint.config
        start = _monotonic()
        deadline_at = None if config.settings.deadline is None else start + config.settings.deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = cancelled = False
        usage = None
        try:
            if waiter is not None:
                self._wait_sync(endpoint, config, call, waiter, deadline_at)
                holding = True
            result = self._attempts_sync(endpoint, config, call, deadline_at)
        except BaseException as exc:
            cancelled = not isinstance(exc, Exception)  # KeyboardInterrupt, SystemExit...
            raise
        else:
            ok = True
            usage = result.usage
            return result
        finally:
            endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start, usage=usage,
                            cancelled=cancelled)

    def _wait_sync(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, waiter: Any,
        deadline_at: float | None,
    ) -> None:
        """Block until ``waiter`` holds a slot, or raise at the call's deadline."""
        try:
            endpoint.limiter.wait(
                waiter, None if deadline_at is None else deadline_at - _monotonic()
            )
        except builtins_TimeoutError:  # the queue's own, which names no call
            raise self._deadline_error(config, call, "waiting in the queue") from None

    def _attempts_sync(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, deadline_at: float | None
    ) -> Result:
        first = self.hooks.send(call, config)
        state = Attempts(endpoint, config, deadline_at)
        return retry_sync(state, lambda: self._chain_sync(config, call, first, deadline_at))

    def _chain_sync(
        self, config: EndpointConfig, call: Call, exchange: Exchange, deadline_at: float | None
    ) -> Result:
        client = self.http.sync
        usage: Usage | None = None
        while True:
            end = self.attempt_end(config, deadline_at)
            request = self._request(client, config, call, exchange, end)
            resp = self._send_sync(client, config, call, request, end)
            if resp.status_code >= 300:
                raise self._status_error(config, call, resp)
            out = self._finish(config, call, exchange, resp, usage)
            if isinstance(out, tuple):
                exchange, usage = out
                continue
            return out

    def _send_sync(
        self, client: httpx2.Client, config: EndpointConfig, call: Call,
        request: httpx2.Request, end: Bound,
    ) -> httpx2.Response:
        """Send ``request`` and read its whole response by ``end.at``, however it trickles."""
        resp = self.open_sync(client, config, call, request, end)
        guard = watch(resp, end.at)
        try:
            resp.read()
        except httpx2.HTTPError as exc:
            if guard.fired or isinstance(exc, httpx2.TimeoutException):
                raise self.limit_error(config, call, end.what, cause=exc) from None
            raise self._transport_error(config, call, exc) from exc
        finally:
            guard.cancel()
            resp.close()
        return resp

    def open_sync(
        self, client: httpx2.Client, config: EndpointConfig, call: Call,
        request: httpx2.Request, end: Bound,
    ) -> httpx2.Response:
        """Send ``request`` and return once its headers are in (the body still to read)."""
        try:
            return client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise self.limit_error(config, call, end.what, cause=exc) from None
        except httpx2.HTTPError as exc:
            raise self._transport_error(config, call, exc) from exc

    async def acall(self, endpoint: Endpoint, call: Call) -> Result:
        """Run a unary call on the running event loop (no thread hops)."""
        config = endpoint.config
        start = _monotonic()
        deadline = config.settings.deadline
        deadline_at = None if deadline is None else start + deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = cancelled = False
        usage = None
        try:
            if deadline_at is None:
                if waiter is not None:
                    await endpoint.limiter.await_slot(waiter)
                    holding = True
                result = await self._attempts_async(endpoint, config, call, None)
            else:
                try:
                    async with asyncio.timeout_at(_loop_deadline(deadline_at)):
                        if waiter is not None:
                            await endpoint.limiter.await_slot(waiter)
                            holding = True
                        result = await self._attempts_async(endpoint, config, call, deadline_at)
                except builtins_TimeoutError as exc:
                    if isinstance(exc, CallError):
                        raise
                    where = "running" if holding else "waiting in the queue"
                    redact_cause(config, exc)  # it stays reachable as __context__
                    raise self._deadline_error(config, call, where) from None
        except BaseException as exc:
            cancelled = not isinstance(exc, Exception)  # CancelledError, KeyboardInterrupt...
            raise
        else:
            ok = True
            usage = result.usage
            return result
        finally:
            if waiter is None or not waiter.dead:  # a dead waiter was counted when found
                endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start,
                                usage=usage, cancelled=cancelled)

    async def _attempts_async(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, deadline_at: float | None
    ) -> Result:
        first = self.hooks.send(call, config)
        state = Attempts(endpoint, config, deadline_at)
        return await retry_async(state, lambda: self._chain_async(config, call, first, deadline_at))

    async def _chain_async(
        self, config: EndpointConfig, call: Call, exchange: Exchange, deadline_at: float | None
    ) -> Result:
        client = await self.http.for_loop(asyncio.get_running_loop())
        usage: Usage | None = None
        while True:
            request = self._request(client, config, call, exchange)
            resp = await self._send_async(client, config, call, request, deadline_at)
            if resp.status_code >= 300:
                raise self._status_error(config, call, resp)
            out = self._finish(config, call, exchange, resp, usage)
            if isinstance(out, tuple):
                exchange, usage = out
                continue
            return out

    async def _send_async(
        self, client: httpx2.AsyncClient, config: EndpointConfig, call: Call,
        request: httpx2.Request, deadline_at: float | None,
    ) -> httpx2.Response:
        """Send ``request`` and read its whole response within the attempt's timeout.

        When the call's deadline comes first, the caller's deadline scope ends it instead.
        """
        end = self.attempt_end(config, deadline_at)
        try:
            if end.what == "deadline":
                return await client.send(request)
            async with asyncio.timeout_at(_loop_deadline(end.at)):
                return await client.send(request)
        except httpx2.TimeoutException as exc:
            raise self.limit_error(config, call, end.what, cause=exc) from None
        except httpx2.HTTPError as exc:
            raise self._transport_error(config, call, exc) from exc
        except builtins_TimeoutError as exc:  # our scope ran out (only it raises this here)
            raise self.limit_error(config, call, "attempt", cause=exc) from None

    # -- admission and errors ----------------------------------------------------------

    def _admit(self, endpoint: Endpoint, config: EndpointConfig, call: Call) -> Any:
        try:
            return endpoint.admit()
        except QueueFull:
            raise QueueFullError(
                f"queue full: {config.settings.queue_size} calls already waiting",
                backend=self.backend,
                endpoint_id=config.endpoint_id,
                request_id=call.request_id,
            ) from None

    def _deadline_error(self, config: EndpointConfig, call: Call, where: str) -> TimeoutError:
        err = TimeoutError(
            f"call deadline of {config.settings.deadline}s ran out while {where}",
            backend=self.backend,
            endpoint_id=config.endpoint_id,
            request_id=call.request_id,
        )
        err.retryable = False  # the call has no time left for another attempt
        return err

    # -- streams -----------------------------------------------------------------------

    def stream(self, endpoint: Endpoint, call: Call) -> Iterator[StreamChunk]:
        """Run a streamed call on the calling thread, yielding chunks as they arrive.

        Opening the stream (up to its first chunk) is the attempt, retried like a unary
        call; after that ``stream_idle_timeout`` bounds each silence and the deadline the
        whole stream.
        """
        config = endpoint.config
        start = _monotonic()
        deadline_at = None if config.settings.deadline is None else start + config.settings.deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = cancelled = False
        reader: SyncStream | None = None
        try:
            if waiter is not None:
                self._wait_sync(endpoint, config, call, waiter, deadline_at)
                holding = True
            exchange = self.hooks.send(call, config)

            def attempt() -> StreamChunk | None:
                nonlocal reader
                if reader is not None:
                    reader.close()
                reader = SyncStream(self, config, call, exchange, deadline_at)
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
                                cancelled=cancelled)

    async def astream(
        self, endpoint: Endpoint, call: Call
    ) -> AsyncIterator[StreamChunk]:
        """Run a streamed call on the running event loop, yielding chunks as they arrive."""
        config = endpoint.config
        start = _monotonic()
        deadline_at = None if config.settings.deadline is None else start + config.settings.deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = cancelled = False
        reader: AsyncStream | None = None
        try:
            try:
                # The deadline scope covers the queue wait and opening the stream (up to its
                # first chunk); after that the reader bounds each read by the idle limit and
                # the deadline, since a scope cannot span the consumer's code between chunks.
                async with asyncio.timeout_at(
                    None if deadline_at is None else _loop_deadline(deadline_at)
                ):
                    if waiter is not None:
                        await endpoint.limiter.await_slot(waiter)
                        holding = True
                    exchange = self.hooks.send(call, config)

                    async def attempt() -> StreamChunk | None:
                        nonlocal reader
                        if reader is not None:
                            await reader.aclose()
                        reader = AsyncStream(self, config, call, exchange, deadline_at)
                        return await reader.open()

                    state = Attempts(endpoint, config, deadline_at)
                    first = await retry_async(state, attempt)
            except builtins_TimeoutError as exc:
                if isinstance(exc, CallError):
                    raise
                where = "running" if holding else "waiting in the queue"
                redact_cause(config, exc)  # it stays reachable as __context__
                raise self._deadline_error(config, call, where) from None
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
                if waiter is None or not waiter.dead:  # a dead waiter was counted when found
                    endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start,
                                    usage=usage, cancelled=cancelled)


builtins_TimeoutError = builtins.TimeoutError  # ours shadows the name in this module


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


def _loop_deadline(deadline_at: float) -> float:
    """``deadline_at`` (on ``time.monotonic``) on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline_at - _monotonic())

"""The call engine: admission to the queue, the retry loop, one exchange, stats.

Every call goes: admit (or reject at once when the queue is full) -> wait for a slot ->
attempts under stamina's retry loop, each one the plugin's exchange(s) over HTTP -> the
plugin's parser -> usage and request IDs on the result -> stats. Whatever happens, an
admitted call ends exactly once, with a result or an error, and gives its slot back.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeAlias

import httpx2
import msgspec

from ._attempts import Attempts, retry_async, retry_sync
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
from ._wire import decode_json

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
        exchange: Exchange, deadline_at: float | None = None,
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
        if deadline_at is not None:
            # Threads have no cancel scope: an attempt may wait no longer than the call has left.
            remaining = deadline_at - _monotonic()
            if remaining <= 0:
                err = self._deadline_error(config, call, "running")
                err.retryable = False
                raise err
            if remaining < config.settings.timeout:
                timeout = httpx2.Timeout(remaining)
        return client.build_request(
            exchange.method, url, content=content, params=exchange.params, headers=headers,
            timeout=timeout,
        )

    def _server_request_id(self, headers: httpx2.Headers) -> str | None:
        for name in self.info.server_request_id_headers:
            value = headers.get(name)
            if value:
                return value
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
                if config.api_key.reveal().encode() in _encode(body):
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
        err = self.error(config, call, Failure(operation=call.operation, exception=exc))
        err.__cause__ = exc
        return err

    def _status_error(
        self, config: EndpointConfig, call: Call, resp: httpx2.Response
    ) -> CallError:
        content = resp.content
        failure = Failure(
            operation=call.operation,
            status=resp.status_code,
            headers=resp.headers,
            content=content,
            data=decode_json(content),
        )
        return self.error(config, call, failure, server_request_id=self._server_request_id(resp.headers))

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
        response = Response(
            status=resp.status_code, headers=resp.headers, content=content,
            data=decode_json(content),
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
                server_request_id=self._server_request_id(resp.headers), status=resp.status_code,
            )
            err.retryable = False
            raise err from exc
        reported = self.hooks.parse_usage(call.operation, response.data)
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
            result.server_request_id = self._server_request_id(resp.headers)
        return result

    # -- unary calls -----------------------------------------------------------------

    def call(self, endpoint: Endpoint, call: Call) -> Result:
        """Run a unary call on the calling thread."""
        config = endpoint.config
        start = _monotonic()
        deadline_at = None if config.settings.deadline is None else start + config.settings.deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = False
        usage = None
        try:
            if waiter is not None:
                try:
                    endpoint.limiter.wait(
                        waiter, None if deadline_at is None else deadline_at - _monotonic()
                    )
                except TimeoutError:
                    raise self._deadline_error(config, call, "waiting in the queue") from None
                holding = True
            result = self._attempts_sync(endpoint, config, call, deadline_at)
            ok = True
            usage = result.usage
            return result
        finally:
            endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start, usage=usage)

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
            request = self._request(client, config, call, exchange, deadline_at)
            try:
                resp = client.send(request)
            except httpx2.HTTPError as exc:
                raise self._transport_error(config, call, exc) from exc
            if resp.status_code >= 400:
                raise self._status_error(config, call, resp)
            out = self._finish(config, call, exchange, resp, usage)
            if isinstance(out, tuple):
                exchange, usage = out
                continue
            return out

    async def acall(self, endpoint: Endpoint, call: Call) -> Result:
        """Run a unary call on the running event loop (no thread hops)."""
        config = endpoint.config
        start = _monotonic()
        deadline = config.settings.deadline
        deadline_at = None if deadline is None else start + deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = False
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
                    raise self._deadline_error(config, call, where) from None
            ok = True
            usage = result.usage
            return result
        finally:
            endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start, usage=usage)

    async def _attempts_async(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, deadline_at: float | None
    ) -> Result:
        first = self.hooks.send(call, config)
        state = Attempts(endpoint, config, deadline_at)
        return await retry_async(state, lambda: self._chain_async(config, call, first))

    async def _chain_async(self, config: EndpointConfig, call: Call, exchange: Exchange) -> Result:
        client = self.http.for_loop(asyncio.get_running_loop())
        usage: Usage | None = None
        while True:
            request = self._request(client, config, call, exchange)
            try:
                resp = await client.send(request)
            except httpx2.HTTPError as exc:
                raise self._transport_error(config, call, exc) from exc
            if resp.status_code >= 400:
                raise self._status_error(config, call, resp)
            out = self._finish(config, call, exchange, resp, usage)
            if isinstance(out, tuple):
                exchange, usage = out
                continue
            return out

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
        return TimeoutError(
            f"call deadline of {config.settings.deadline}s ran out while {where}",
            backend=self.backend,
            endpoint_id=config.endpoint_id,
            request_id=call.request_id,
        )

    # -- streams -----------------------------------------------------------------------

    def stream(self, endpoint: Endpoint, call: Call) -> Iterator[StreamChunk]:
        """Run a streamed call on the calling thread, yielding chunks as they arrive."""
        config = endpoint.config
        start = _monotonic()
        deadline_at = None if config.settings.deadline is None else start + config.settings.deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = False
        reader: SyncStream | None = None
        try:
            if waiter is not None:
                try:
                    endpoint.limiter.wait(
                        waiter, None if deadline_at is None else deadline_at - _monotonic()
                    )
                except TimeoutError:
                    raise self._deadline_error(config, call, "waiting in the queue") from None
                holding = True
            exchange = self.hooks.send(call, config)

            def attempt() -> StreamChunk | None:
                nonlocal reader
                if reader is not None:
                    reader.close()
                reader = SyncStream(self, config, call, exchange)
                return reader.open(deadline_at)

            first = retry_sync(Attempts(endpoint, config, deadline_at), attempt)
            assert reader is not None
            if first is not None:
                reader.yielded = True
                yield first
            yield from reader.rest()
            ok = True
        finally:
            try:
                if reader is not None:
                    reader.close()
            finally:
                usage = reader.usage if reader is not None else None
                endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start, usage=usage)

    async def astream(
        self, endpoint: Endpoint, call: Call
    ) -> AsyncIterator[StreamChunk]:
        """Run a streamed call on the running event loop, yielding chunks as they arrive."""
        config = endpoint.config
        start = _monotonic()
        deadline_at = None if config.settings.deadline is None else start + config.settings.deadline
        waiter = self._admit(endpoint, config, call)
        holding = waiter is None
        ok = False
        reader: AsyncStream | None = None
        try:
            try:
                # The deadline covers the queue wait and opening the stream (up to its first
                # chunk); once text flows, each read is bounded by the attempt timeout.
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
                        reader = AsyncStream(self, config, call, exchange)
                        return await reader.open()

                    first = await retry_async(Attempts(endpoint, config, deadline_at), attempt)
            except builtins_TimeoutError as exc:
                if isinstance(exc, CallError):
                    raise
                where = "running" if holding else "waiting in the queue"
                raise self._deadline_error(config, call, where) from None
            assert reader is not None
            if first is not None:
                reader.yielded = True
                yield first
            async for chunk in reader.rest():
                yield chunk
            ok = True
        finally:
            try:
                if reader is not None:
                    await reader.aclose()
            finally:
                usage = reader.usage if reader is not None else None
                endpoint.finish(holding=holding, ok=ok, latency=_monotonic() - start, usage=usage)


builtins_TimeoutError = builtins.TimeoutError  # ours shadows the name in this module


def _loop_deadline(deadline_at: float) -> float:
    """``deadline_at`` (on ``time.monotonic``) on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline_at - _monotonic())

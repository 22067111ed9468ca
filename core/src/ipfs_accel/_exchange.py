"""One HTTP exchange, from the plugin's :class:`Exchange` to a result or an error.

What the unary engine (``_call``) and the stream runner (``_stream``, with its readers in
``_readers``) share, so the arrows point one way: admitting a call to its endpoint's queue,
building the HTTP request (headers folded, the attempt's time left as its timeouts), reading
a 2xx body into the plugin's result (decoded into its declared type), and turning whatever
else comes back into the error the user sees: a failure as the plugin classifies it, a
redirect, a body that does not fit, a time limit run out."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import httpx2
import msgspec

from ._batch_types import streamed_body
from ._bounds import Bound, Limit
from ._endpoint import Endpoint
from ._errors import (
    ERROR_CLASSES,
    CallError,
    ErrorKind,
    QueueFullError,
    ResponseError,
    TimeoutError,
)
from ._http import HTTP, Answer, AsyncSender
from ._observe import Observer
from ._plugin import PluginHooks
from ._queue import QueueFull, Waiter
from ._secrets import redact_cause
from ._settings import EndpointConfig
from ._types import (
    Call,
    ChatResult,
    Classification,
    EmbedResult,
    Exchange,
    Failure,
    InvokeResult,
    Response,
    Usage,
    fit_finish_reason,
)
from ._validate import check_result, check_usage
from ._wire import decode_json, decode_typed, is_json

__all__ = ["Exchanger", "R", "Result", "builtins_TimeoutError", "loop_time"]

Result: TypeAlias = ChatResult | EmbedResult | InvokeResult
R = TypeVar("R", ChatResult, EmbedResult, InvokeResult)
_encode = msgspec.json.encode
_monotonic = time.monotonic
_JSON = "application/json"
builtins_TimeoutError = builtins.TimeoutError  # ours shadows the name in this module


class Exchanger:
    """Builds one backend's requests and reads what comes back into results or errors."""

    __slots__ = ("backend", "hooks", "http", "info", "observers", "provider", "rid_header",
                 "timeouts")

    def __init__(self, hooks: PluginHooks, http: HTTP, observers: Sequence[Observer] = ()):
        self.hooks = hooks
        self.info = hooks.info
        self.backend = hooks.info.name
        self.provider = hooks.info.provider or hooks.info.name
        self.rid_header = hooks.info.request_id_header.lower()
        self.http = http
        self.timeouts: dict[float, httpx2.Timeout] = {}
        self.observers = tuple(observers)

    def request(
        self, client: httpx2.Client | AsyncSender, config: EndpointConfig, call: Call,
        exchange: Exchange, end: Bound | None = None, *, trace: dict[str, str] | None = None,
    ) -> Any:  # the client's own request type, for its send
        path = exchange.path
        url = path if path.startswith(("http://", "https://")) else config.base_url + path
        # Header names are case-insensitive: fold them so a user's "Accept" replaces ours.
        headers = {"accept": _JSON, self.rid_header: call.request_id}
        if trace and config.settings.propagate_trace:  # traceparent: the user's may replace it
            headers.update(trace)
        for extra in (config.settings.headers, exchange.headers):
            for name, value in extra.items():
                headers[name.lower()] = value
        content: Any = None
        if exchange.json is not None:
            content = _encode(exchange.json)
            headers["content-type"] = _JSON
        elif exchange.body is not None:  # streamed from its file, never whole in memory
            content = streamed_body(exchange.body, headers, isinstance(client, httpx2.Client))
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

    def server_request_id(self, config: EndpointConfig, headers: Mapping[str, str]) -> str | None:
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

    def transport_error(
        self, config: EndpointConfig, call: Call, exc: Exception
    ) -> CallError:
        redact_cause(config, exc)  # it becomes our __cause__: no key in its request or frames
        err = self.error(config, call, Failure(operation=call.operation, exception=exc))
        err.__cause__ = exc
        return err

    def status_error(
        self, config: EndpointConfig, call: Call, resp: Answer
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
            config, call, failure, server_request_id=self.server_request_id(config, resp.headers)
        )

    def _redirect_error(
        self, config: EndpointConfig, call: Call, resp: Answer
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
            server_request_id=self.server_request_id(config, resp.headers), status=resp.status_code,
        )
        err.retryable = False
        return err

    def unfit(
        self, config: EndpointConfig, call: Call, what: str, exc: msgspec.DecodeError,
        *, was_json: bool = True, status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ResponseError:
        """A body (or stream event) that does not fit the type the plugin declared for it:
        msgspec's message names the field (``$.choices[0].finish_reason``). Never retried:
        the same server sends the same shape again."""
        reason = "it does not fit the API" if was_json else "it is not JSON"
        err = ResponseError(
            config.scrub(f"{self.backend} sent a {what} that could not be read, {reason}: {exc}"),
            backend=self.backend, endpoint_id=config.endpoint_id, request_id=call.request_id,
            server_request_id=None if headers is None else self.server_request_id(config, headers),
            status=status,
        )
        err.retryable = False
        return err

    def limit_error(
        self, config: EndpointConfig, call: Call, what: Limit, idle: float | None = None,
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
            return self.deadline_error(config, call, "running")
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

    def finish(
        self,
        config: EndpointConfig,
        call: Call,
        exchange: Exchange,
        resp: Answer,
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
                server_request_id=self.server_request_id(config, resp.headers),
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
        self._stamp(config, call, resp, result)
        check_result(result, call, self.backend, config.endpoint_id, result.server_request_id,
                     usage_checked=reported is not None)
        if isinstance(result, ChatResult):
            fit_finish_reason(result)
        return result

    def _stamp(
        self, config: EndpointConfig, call: Call, resp: Answer, result: Result
    ) -> None:
        """Both request IDs on a result. One rule for unary calls and streams: the server's
        ID header wins; an ID only the body carries (Gemini's responseId) stands in when
        there is no header."""
        result.request_id = call.request_id
        header_id = self.server_request_id(config, resp.headers)
        if header_id is not None:
            result.server_request_id = header_id
        elif result.server_request_id is not None:
            result.server_request_id = config.scrub(result.server_request_id)

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
            raise self.transport_error(config, call, exc) from exc

    def begin(
        self, endpoint: Endpoint, call: Call, deadline_at: float | None = None,
    ) -> tuple[EndpointConfig, float, float | None, Waiter | None]:
        """Start a call: the settings it runs with, its start time, when its deadline falls
        (``None``: none; the endpoint's, or ``deadline_at`` if earlier) and its waiter
        (``None``: it holds a slot already; see :meth:`admit`)."""
        config = endpoint.config
        start = _monotonic()
        deadline = config.settings.deadline
        waiter = self.admit(endpoint, config, call)
        own = None if deadline is None else start + deadline
        if deadline_at is not None and (own is None or deadline_at < own):
            own = deadline_at
        return config, start, own, waiter

    def admit(self, endpoint: Endpoint, config: EndpointConfig, call: Call) -> Waiter | None:
        """Take a slot (``None``) or a place in the queue (the waiter); a full queue is a
        :class:`QueueFullError` at once."""
        try:
            return endpoint.admit()
        except QueueFull:
            raise QueueFullError(
                f"queue full: {config.settings.queue_size} calls already waiting",
                backend=self.backend,
                endpoint_id=config.endpoint_id,
                request_id=call.request_id,
            ) from None

    def deadline_error(self, config: EndpointConfig, call: Call, where: str) -> TimeoutError:
        """The call's deadline ran out ``where`` it was (never retried)."""
        limit = config.settings.deadline
        err = TimeoutError(
            f"call deadline of {limit}s ran out while {where}" if limit is not None
            else f"the call's deadline ran out while {where}",
            backend=self.backend,
            endpoint_id=config.endpoint_id,
            request_id=call.request_id,
        )
        err.retryable = False  # the call has no time left for another attempt
        return err

    def wait_sync(
        self, endpoint: Endpoint, config: EndpointConfig, call: Call, waiter: Waiter,
        deadline_at: float | None,
    ) -> None:
        """Block until ``waiter`` holds a slot, or raise at the call's deadline."""
        try:
            endpoint.wait(waiter, None if deadline_at is None else deadline_at - _monotonic())
        except builtins_TimeoutError:  # the queue's own, which names no call
            raise self.deadline_error(config, call, "waiting in the queue") from None


def loop_time(at: float) -> float:
    """``at`` (on ``time.monotonic``) on the running loop's clock."""
    return asyncio.get_running_loop().time() + (at - _monotonic())

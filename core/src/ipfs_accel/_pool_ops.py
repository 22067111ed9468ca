"""The operations a pool offers: a Backend's, without ``endpoint_id``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import tools
from ._backend import new_request_id
from ._chatstream import AsyncChatStream, ChatStream
from ._errors import ConfigurationError
from ._pool_run import Request, astream, call_async, call_sync, stream
from ._types import ChatResult, EmbedResult, InvokeResult, Operation

if TYPE_CHECKING:
    from ._pool import Pool

__all__ = ["PoolOperations"]

_CHAT, _GENERATE, _EMBED = Operation.CHAT.value, Operation.GENERATE.value, Operation.EMBED.value
_STREAM_CHAT, _STREAM_GENERATE = Operation.STREAM_CHAT.value, Operation.STREAM_GENERATE.value
_CORE = frozenset({_CHAT, _GENERATE, _STREAM_CHAT, _STREAM_GENERATE, _EMBED})


def _request(
    pool: Pool, operation: str, request_id: str | None, model: str | None,
    params: dict[str, Any], **inputs: Any,
) -> Request:
    if "endpoint_id" in params:
        raise ConfigurationError("a pool picks the endpoint of each attempt: pass no endpoint_id")
    # the shapes of tools, response format and images are checked here, once for the call
    # (each member's attempt checks only that it takes what the call needs)
    needs = (frozenset(tools.check_params(params, inputs.get("messages")))
             if operation in _CORE else frozenset())
    pool.check(operation, needs)
    return Request(operation, request_id or new_request_id(), model, params, inputs, needs=needs)


class PoolOperations:
    """Chat, generate, embed, streams and invoke, sync and async, through a pool."""

    def chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> ChatResult:
        """Chat completion on the member the pool picks (see :meth:`Backend.chat`)."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _CHAT, request_id, model, params, messages=messages)
        return call_sync(pool, req, ChatResult)

    async def achat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> ChatResult:
        """Async :meth:`chat`."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _CHAT, request_id, model, params, messages=messages)
        return await call_async(pool, req, ChatResult)

    def generate(
        self, prompt: str, *, model: str | None = None, request_id: str | None = None,
        **params: Any,
    ) -> ChatResult:
        """Text completion of a raw ``prompt``."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _GENERATE, request_id, model, params, prompt=prompt)
        return call_sync(pool, req, ChatResult)

    async def agenerate(
        self, prompt: str, *, model: str | None = None, request_id: str | None = None,
        **params: Any,
    ) -> ChatResult:
        """Async :meth:`generate`."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _GENERATE, request_id, model, params, prompt=prompt)
        return await call_async(pool, req, ChatResult)

    def embed(
        self, inputs: str | list[str], *, model: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> EmbedResult:
        """Embeddings: one vector per input, in input order."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _EMBED, request_id, model, params, inputs=inputs)
        return call_sync(pool, req, EmbedResult)

    async def aembed(
        self, inputs: str | list[str], *, model: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> EmbedResult:
        """Async :meth:`embed`."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _EMBED, request_id, model, params, inputs=inputs)
        return await call_async(pool, req, EmbedResult)

    def stream_chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> ChatStream:
        """Stream a chat reply; it moves to another member only before its first chunk."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _STREAM_CHAT, request_id, model, params, messages=messages)
        return ChatStream(stream(pool, req))

    def astream_chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> AsyncChatStream:
        """Async :meth:`stream_chat`."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _STREAM_CHAT, request_id, model, params, messages=messages)
        return AsyncChatStream(astream(pool, req))

    def stream_generate(
        self, prompt: str, *, model: str | None = None, request_id: str | None = None,
        **params: Any,
    ) -> ChatStream:
        """Stream a completion of a raw ``prompt``."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _STREAM_GENERATE, request_id, model, params, prompt=prompt)
        return ChatStream(stream(pool, req))

    def astream_generate(
        self, prompt: str, *, model: str | None = None, request_id: str | None = None,
        **params: Any,
    ) -> AsyncChatStream:
        """Async :meth:`stream_generate`."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, _STREAM_GENERATE, request_id, model, params, prompt=prompt)
        return AsyncChatStream(astream(pool, req))

    def invoke(
        self, operation: str, *, model: str | None = None, request_id: str | None = None,
        **params: Any,
    ) -> InvokeResult:
        """A backend-specific operation, on a member that offers it."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, operation, request_id, model, params)
        return call_sync(pool, req, InvokeResult)

    async def ainvoke(
        self, operation: str, *, model: str | None = None, request_id: str | None = None,
        **params: Any,
    ) -> InvokeResult:
        """Async :meth:`invoke`."""
        pool: Pool = self  # type: ignore[assignment]
        req = _request(pool, operation, request_id, model, params)
        return await call_async(pool, req, InvokeResult)

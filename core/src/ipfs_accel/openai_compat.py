"""The OpenAI wire format, once, for every backend that speaks it.

OpenAI itself, Groq, TGI's Messages API, TEI's ``/v1/embeddings``, OVMS's ``/v3`` API and
Ollama's ``/v1`` API share this format. A plugin for such a server builds its exchanges with
:func:`exchange` (or the body builders and parsers below) and keeps only what differs.

Chat: ``POST {prefix}/chat/completions``; completions: ``POST {prefix}/completions``;
embeddings: ``POST {prefix}/embeddings``. Streams are SSE chunks ending with ``data: [DONE]``;
``stream_options.include_usage`` asks for a last chunk carrying the usage, so streamed calls
are counted too.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Callable, Mapping
from typing import Any

from ._classify import default_classification
from ._errors import ConfigurationError, ErrorKind, UnsupportedOperationError
from ._settings import EndpointConfig
from ._types import (
    Call,
    ChatResult,
    Classification,
    EmbedResult,
    Exchange,
    Failure,
    Response,
    StreamChunk,
    StreamFailure,
    Usage,
)
from ._wire import Event

__all__ = [
    "bearer_headers",
    "chat_body",
    "classify_error",
    "completion_body",
    "embeddings_body",
    "error_fields",
    "exchange",
    "parse_chat",
    "parse_chat_event",
    "parse_completion",
    "parse_completion_event",
    "parse_embeddings",
    "parse_usage",
]

def bearer_headers(endpoint: EndpointConfig) -> dict[str, str]:
    """``Authorization: Bearer <key>`` when the endpoint has a key, else nothing."""
    key = endpoint.api_key
    return {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}


def _model(call: Call) -> str:
    if not call.model:
        raise ConfigurationError(
            f"{call.operation} needs a model: pass model=, or set it on the endpoint"
        )
    return call.model


def _params(call: Call, max_tokens_field: str) -> dict[str, Any]:
    params = dict(call.params)
    if max_tokens_field != "max_tokens" and "max_tokens" in params:
        params[max_tokens_field] = params.pop("max_tokens")
    return params


def chat_body(
    call: Call, *, stream: bool = False, include_usage: bool = True,
    max_tokens_field: str = "max_tokens", require_model: bool = True,
) -> dict[str, Any]:
    """The ``/chat/completions`` body for a chat call (a generate call becomes one user turn)."""
    messages = call.messages
    if messages is None:
        messages = [{"role": "user", "content": call.prompt or ""}]
    body: dict[str, Any] = {"messages": messages}
    if require_model or call.model:
        body["model"] = _model(call)
    body.update(_params(call, max_tokens_field))
    if stream:
        body["stream"] = True
        if include_usage:
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
    return body


def completion_body(
    call: Call, *, stream: bool = False, include_usage: bool = True, require_model: bool = True
) -> dict[str, Any]:
    """The legacy ``/completions`` body for a generate call."""
    body: dict[str, Any] = {"prompt": call.prompt or ""}
    if require_model or call.model:
        body["model"] = _model(call)
    body.update(call.params)
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True, **(body.get("stream_options") or {})}
    return body


def embeddings_body(call: Call, *, require_model: bool = True) -> dict[str, Any]:
    """The ``/embeddings`` body for an embed call."""
    body: dict[str, Any] = {"input": call.inputs or []}
    if require_model or call.model:
        body["model"] = _model(call)
    body.update(call.params)
    return body


def parse_usage(data: Any) -> Usage | None:
    """Usage from an OpenAI-style ``usage`` object (in a body or a stream chunk)."""
    usage = data.get("usage") if isinstance(data, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, Mapping):
        details = {}
    extra = {
        k: float(v) for k, v in usage.items()
        if k.endswith("_time") and isinstance(v, (int, float))  # Groq's queue/prompt/total time
    }
    return Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_tokens=_int(details.get("cached_tokens")),
        cache_write_tokens=_int(details.get("cache_write_tokens")),
        details=extra,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def parse_chat(resp: Response) -> ChatResult:
    """A ``chat.completion`` body into a :class:`ChatResult`."""
    data = resp.data
    if not isinstance(data, Mapping):
        raise ValueError("the body is not a JSON object")
    choices = data.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    message = first.get("message") or {}
    return ChatResult(
        text=_text(message.get("content")),
        finish_reason=first.get("finish_reason"),
        model=data.get("model"),
        tool_calls=message.get("tool_calls") or None,
        raw=data,
    )


def parse_completion(resp: Response) -> ChatResult:
    """A ``text_completion`` body into a :class:`ChatResult`."""
    data = resp.data
    if not isinstance(data, Mapping):
        raise ValueError("the body is not a JSON object")
    choices = data.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    return ChatResult(
        text=first.get("text") or "",
        finish_reason=first.get("finish_reason"),
        model=data.get("model"),
        raw=data,
    )


def _vector(embedding: Any, i: int) -> list[Any]:
    """One embedding: a list of floats, or (``encoding_format="base64"``) the base64 of
    little-endian float32s, as the official SDKs decode it. The core checks the numbers."""
    if isinstance(embedding, str):  # bad base64 raises, and the core reports a ResponseError
        raw = base64.b64decode(embedding, validate=True)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if isinstance(embedding, list):
        return embedding
    raise ValueError(
        f"data[{i}].embedding of type {type(embedding).__name__}, expected a list of numbers"
    )


def parse_embeddings(resp: Response, *, count: int | None = None) -> EmbedResult:
    """An embeddings list into an :class:`EmbedResult`, vectors in input order.

    Each row goes where its ``index`` says (a row without one keeps its position), so a
    server that answers out of order is put back in order. ``count`` is the number of
    inputs sent (``exchange`` passes it): a different number of rows is an error, and so is
    a row that is not an object, or an index that is not an int, out of range or repeated.
    """
    data = resp.data
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise ValueError("the body has no 'data' list")
    rows = data["data"]
    size = len(rows) if count is None else count
    if len(rows) != size:
        raise ValueError(f"{len(rows)} embeddings in 'data' for {size} inputs")
    vectors: list[Any] = [None] * size
    placed = [False] * size
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"data[{i}] of type {type(row).__name__}, expected an object")
        index = row.get("index", i)
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"data[{i}].index of type {type(index).__name__}, expected an int")
        if not 0 <= index < size:
            raise ValueError(f"data[{i}].index {index} is out of range for {size} inputs")
        if placed[index]:
            raise ValueError(f"data[{i}].index {index} repeats an earlier row's")
        placed[index] = True
        vectors[index] = _vector(row.get("embedding"), i)
    return EmbedResult(vectors=vectors, model=data.get("model"), raw=data)


def _event(event: Event, text_of: Callable[[Mapping[str, Any]], str]) -> StreamChunk | StreamFailure | None:
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    data = event.json
    if event.event == "error":  # an error event is an error whatever its data looks like
        return StreamFailure(data=data if data is not None else {"error": event.data})
    if not isinstance(data, Mapping):
        return None
    if data.get("error"):  # as the SDKs test it: "error": null is no failure
        return StreamFailure(data=data)
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return None  # e.g. the usage-only chunk: parse_usage reads it
    choice = choices[0]
    return StreamChunk(delta=text_of(choice), finish_reason=choice.get("finish_reason"), raw=data)


def parse_chat_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One ``chat.completion.chunk`` SSE event."""
    return _event(event, lambda c: _text((c.get("delta") or {}).get("content")))


def parse_completion_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One streamed ``text_completion`` SSE event."""
    return _event(event, lambda c: c.get("text") or "")


def error_fields(data: Any) -> tuple[str | None, str | None, str | None]:
    """``(message, type, code)`` from ``{"error": {...}}`` or ``{"error": "...", ...}``."""
    if not isinstance(data, Mapping):
        return None, None, None
    err = data.get("error")
    if isinstance(err, Mapping):
        code = err.get("code")
        return (
            err.get("message") if isinstance(err.get("message"), str) else None,
            err.get("type") if isinstance(err.get("type"), str) else None,
            str(code) if code is not None else None,
        )
    if isinstance(err, str):
        kind = data.get("error_type") or data.get("type")
        return err, kind if isinstance(kind, str) else None, None
    return None, None, None


_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})


def classify_error(failure: Failure) -> Classification:
    """OpenAI's error semantics over the default classification.

    ``insufficient_quota`` (429) is not retried: waiting does not fix billing.
    ``context_length_exceeded`` becomes a context-length error. The error code is kept.
    """
    c = default_classification(failure)
    message, type_, code = error_fields(failure.data)
    code = code or type_
    if code in ("insufficient_quota", "billing_hard_limit_reached") or type_ == "insufficient_quota":
        return Classification(
            kind=ErrorKind.QUOTA_EXCEEDED, retryable=False, message=c.message, code=code
        )
    if code in _CONTEXT_CODES:
        c.kind = ErrorKind.CONTEXT_LENGTH
        c.retryable = False
    if message and not c.message:
        c.message = message
    c.code = code
    return c


def exchange(
    call: Call,
    endpoint: EndpointConfig,
    *,
    prefix: str = "",
    headers: Mapping[str, str] | None = None,
    max_tokens_field: str = "max_tokens",
    include_usage: bool = True,
    require_model: bool = True,
    generate_as_chat: bool = False,
) -> Exchange:
    """The whole exchange for chat, generate, embed and their streams, OpenAI-style.

    ``prefix`` goes before the route (``/v1``, ``/v3``, ``/openai/v1``...). ``headers``
    defaults to a Bearer token from the endpoint's key. ``generate_as_chat`` sends
    ``generate`` as a one-turn chat for servers without ``/completions``.
    """
    hdrs = dict(bearer_headers(endpoint) if headers is None else headers)
    op = call.operation
    if op in ("chat", "stream_chat") or (generate_as_chat and op in ("generate", "stream_generate")):
        stream = op.startswith("stream_")
        body = chat_body(
            call, stream=stream, include_usage=include_usage,
            max_tokens_field=max_tokens_field, require_model=require_model,
        )
        path = f"{prefix}/chat/completions"
        if stream:
            return Exchange(path=path, json=body, headers=hdrs, stream="sse",
                            parse_event=parse_chat_event)
        return Exchange(path=path, json=body, headers=hdrs, parse=parse_chat)
    if op in ("generate", "stream_generate"):
        stream = op == "stream_generate"
        body = completion_body(
            call, stream=stream, include_usage=include_usage, require_model=require_model
        )
        path = f"{prefix}/completions"
        if stream:
            return Exchange(path=path, json=body, headers=hdrs, stream="sse",
                            parse_event=parse_completion_event)
        return Exchange(path=path, json=body, headers=hdrs, parse=parse_completion)
    if op == "embed":
        return Exchange(
            path=f"{prefix}/embeddings", json=embeddings_body(call, require_model=require_model),
            headers=hdrs, parse=functools.partial(parse_embeddings, count=len(call.inputs or [])),
        )
    raise UnsupportedOperationError(f"operation {op!r} has no OpenAI-compatible route")

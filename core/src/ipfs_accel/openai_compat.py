"""The OpenAI wire format, once, for every backend that speaks it.

OpenAI itself, Groq, TGI's Messages API, TEI's ``/v1/embeddings``, OVMS's ``/v3`` API and
Ollama's ``/v1`` API share this format. A plugin for such a server builds its exchanges with
:func:`exchange` (or the body builders and parsers below) and keeps only what differs.

Chat: ``POST {prefix}/chat/completions``; completions: ``POST {prefix}/completions``;
embeddings: ``POST {prefix}/embeddings``. Streams are SSE chunks ending with ``data: [DONE]``;
``stream_options.include_usage`` asks for a last chunk carrying the usage, so streamed calls
are counted too.

Answers are decoded by the core straight into the Structs below (:class:`ChatCompletion`,
:class:`ChatCompletionChunk`, :class:`Completion`, :class:`Embeddings`, :class:`CompletionUsage`):
:func:`exchange` declares them as the exchange's ``response_type`` / ``event_type``, so a
field of the wrong type is a ``ResponseError`` naming the backend and the field path. Each
Struct declares only what is read here; fields it does not declare are skipped. A plugin
with its own extra fields subclasses one (Groq's ``x_groq`` on a chunk) and declares that.
The parsers also take an answer decoded generically (an exchange that declared no type) and
fit it to the Struct themselves, so a wrong-typed field is an error there too.

Error bodies stay generic: they come from whatever stands in front of the server (proxies,
gateways, load balancers) as often as from the API, and classification must read what it
can from any body, field by field, and never raise. :func:`error_fields` does that.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

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
from ._wire import Event, decode_json

__all__ = [
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatMessage",
    "ChunkChoice",
    "ChunkDelta",
    "Completion",
    "CompletionChoice",
    "CompletionUsage",
    "ContentPart",
    "Embedding",
    "Embeddings",
    "PromptTokensDetails",
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


# --- What the server sends -----------------------------------------------------------------
# omit_defaults: msgspec.to_builtins of a Struct gives back only the fields the body had
# (EmbedResult.raw is built that way, without the vectors).


class PromptTokensDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``usage.prompt_tokens_details``: prompt-cache reads (and writes, where reported)."""

    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class CompletionUsage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``usage`` of a body or of a stream's last chunk (``CompletionUsage`` in the spec).

    The ``*_time`` fields are Groq's timings (seconds), kept in ``Usage.details``.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    queue_time: float | None = None
    prompt_time: float | None = None
    completion_time: float | None = None
    total_time: float | None = None


class ContentPart(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One part of a ``content`` given as a list (a text part; others have no ``text``)."""

    text: str | None = None


class ChatMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[].message`` of a chat completion."""

    content: str | list[ContentPart] | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[]`` of a chat completion."""

    message: ChatMessage | None = None
    finish_reason: str | None = None


class ChatCompletion(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A ``chat.completion`` body (``POST /chat/completions``)."""

    choices: list[ChatChoice] = []
    model: str | None = None
    usage: CompletionUsage | None = None


class ChunkDelta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[].delta`` of a chat stream chunk."""

    content: str | list[ContentPart] | None = None


class ChunkChoice(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[]`` of a chat stream chunk."""

    delta: ChunkDelta | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One ``chat.completion.chunk`` stream event; the usage-only last chunk has no choices.

    ``error`` is whatever the server put there: a chunk whose ``error`` is truthy ends the
    stream as a failure, and ``classify_error`` reads the event generically.
    """

    choices: list[ChunkChoice] = []
    model: str | None = None
    usage: CompletionUsage | None = None
    error: Any = None


class CompletionChoice(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[]`` of a legacy completion (or of one of its stream events)."""

    text: str | None = None
    finish_reason: str | None = None


class Completion(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A ``text_completion`` body (``POST /completions``), and each event of its stream."""

    choices: list[CompletionChoice] = []
    model: str | None = None
    usage: CompletionUsage | None = None
    error: Any = None


class Embedding(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One row of an embeddings answer: floats, or (``encoding_format="base64"``) a string.

    A row without ``index`` keeps its position.
    """

    embedding: list[float] | str
    index: int | None = None


class Embeddings(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An embeddings answer (``POST /embeddings``): ``{"object": "list", "data": [...]}``."""

    data: list[Embedding]
    object: str | None = None
    model: str | None = None
    usage: CompletionUsage | None = None


_T = TypeVar("_T", bound=msgspec.Struct)


def _fit(data: Any, type_: type[_T]) -> _T:
    """``data`` as ``type_``: as it is when the core decoded it so, else fitted here (a
    generic body); a field that does not fit raises ``msgspec.ValidationError`` naming it."""
    if isinstance(data, type_):
        return data
    if not isinstance(data, Mapping):
        raise ValueError("the body is not a JSON object")
    return msgspec.convert(data, type_)


# --- Requests ------------------------------------------------------------------------------


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


# --- Answers -------------------------------------------------------------------------------


def parse_usage(data: Any) -> Usage | None:
    """Usage from the ``usage`` of a body or stream chunk, ``None`` when it has none.

    ``data`` is one of the Structs above (or any value with a ``usage`` attribute holding a
    :class:`CompletionUsage`, such as a plugin's own chunk Struct), or a generically decoded
    body, whose ``usage`` is fitted here leniently: usage that cannot be read is no usage,
    never an error, as this backs the ``parse_usage`` hook.
    """
    if isinstance(data, Mapping):
        counts: Any = data.get("usage")
    else:
        counts = getattr(data, "usage", None)
    if counts is None:
        return None
    if not isinstance(counts, CompletionUsage):
        try:
            counts = msgspec.convert(counts, CompletionUsage, strict=False)
        except msgspec.ValidationError:
            return None
    details = counts.prompt_tokens_details
    timings = {
        name: value for name, value in (
            ("queue_time", counts.queue_time), ("prompt_time", counts.prompt_time),
            ("completion_time", counts.completion_time), ("total_time", counts.total_time),
        ) if value is not None
    }
    return Usage(
        input_tokens=counts.prompt_tokens or 0,
        output_tokens=counts.completion_tokens or 0,
        cache_read_tokens=(details.cached_tokens or 0) if details is not None else 0,
        cache_write_tokens=(details.cache_write_tokens or 0) if details is not None else 0,
        details=timings,
    )


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, str):
        return content
    if content:  # content parts
        return "".join(part.text or "" for part in content)
    return ""


def _raw(resp: Response) -> Any:
    """The whole body, generic: ``raw`` on a result."""
    data = resp.data
    return data if isinstance(data, Mapping) else decode_json(resp.content)


def parse_chat(resp: Response) -> ChatResult:
    """A ``chat.completion`` body (:class:`ChatCompletion`) into a :class:`ChatResult`;
    ``raw`` is the whole body."""
    data = _fit(resp.data, ChatCompletion)
    if not data.choices:
        return ChatResult(text="", model=data.model, raw=_raw(resp))
    first = data.choices[0]
    message = first.message
    if message is None:
        return ChatResult(text="", finish_reason=first.finish_reason, model=data.model,
                          raw=_raw(resp))
    return ChatResult(
        text=_text(message.content),
        finish_reason=first.finish_reason,
        model=data.model,
        tool_calls=message.tool_calls or None,
        raw=_raw(resp),
    )


def parse_completion(resp: Response) -> ChatResult:
    """A ``text_completion`` body (:class:`Completion`) into a :class:`ChatResult`; ``raw``
    is the whole body."""
    data = _fit(resp.data, Completion)
    first = data.choices[0] if data.choices else None
    return ChatResult(
        text=(first.text or "") if first is not None else "",
        finish_reason=first.finish_reason if first is not None else None,
        model=data.model,
        raw=_raw(resp),
    )


def _vector(embedding: list[float] | str) -> list[float]:
    """One embedding: a list of floats, or (``encoding_format="base64"``) the base64 of
    little-endian float32s, as the official SDKs decode it."""
    if isinstance(embedding, str):  # bad base64 raises, and the core reports a ResponseError
        raw = base64.b64decode(embedding, validate=True)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return embedding


def parse_embeddings(resp: Response, *, count: int | None = None) -> EmbedResult:
    """An embeddings answer (:class:`Embeddings`) into an :class:`EmbedResult`, vectors in
    input order.

    Each row goes where its ``index`` says (a row without one keeps its position), so a
    server that answers out of order is put back in order. ``count`` is the number of
    inputs sent (``exchange`` passes it): a different number of rows is an error, and so is
    an index out of range or repeated (a row that is not an object, or an index that is
    not an int, does not fit :class:`Embeddings` and is refused when the body is decoded).

    ``raw`` is the body without its vectors (``object``, ``model``, ``usage`` as the body
    gave them): the vectors are decoded once, into ``vectors``, and not copied again.
    """
    data = _fit(resp.data, Embeddings)
    rows = data.data
    size = len(rows) if count is None else count
    if len(rows) != size:
        raise ValueError(f"{len(rows)} embeddings in 'data' for {size} inputs")
    vectors: list[list[float]] = [[]] * size
    placed = [False] * size
    for i, row in enumerate(rows):
        index = i if row.index is None else row.index
        if not 0 <= index < size:
            raise ValueError(f"data[{i}].index {index} is out of range for {size} inputs")
        if placed[index]:
            raise ValueError(f"data[{i}].index {index} repeats an earlier row's")
        placed[index] = True
        vectors[index] = _vector(row.embedding)
    raw = msgspec.to_builtins(msgspec.structs.replace(data, data=[]))
    del raw["data"]
    return EmbedResult(vectors=vectors, model=data.model, raw=raw)


_Chunk = TypeVar("_Chunk", ChatCompletionChunk, Completion)


def _event(event: Event, type_: type[_Chunk]) -> _Chunk | StreamChunk | StreamFailure | None:
    """What an event says before its choices are read: the end (``[DONE]``), a failure (an
    error event, or a chunk whose ``error`` is truthy), nothing (data that is not an object),
    or the chunk itself."""
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    if event.event == "error":  # an error event is an error whatever its data looks like
        failed = decode_json(event.data)
        return StreamFailure(data=failed if failed is not None else {"error": event.data})
    data = event.json
    if not isinstance(data, type_):
        if not isinstance(data, Mapping):
            return None
        data = msgspec.convert(data, type_)  # an event decoded generically: fit it here
    if data.error:  # as the SDKs test it: "error": null is no failure
        return StreamFailure(data=decode_json(event.data))
    return data


def _event_raw(event: Event) -> Any:
    data = event.json
    return data if isinstance(data, Mapping) else decode_json(event.data)


def parse_chat_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One ``chat.completion.chunk`` SSE event (:class:`ChatCompletionChunk`); ``raw`` is
    the whole chunk. The usage-only last chunk gives nothing here: ``parse_usage`` reads it."""
    data = _event(event, ChatCompletionChunk)
    if not isinstance(data, ChatCompletionChunk):
        return data
    if not data.choices:
        return None
    choice = data.choices[0]
    delta = choice.delta
    return StreamChunk(
        delta=_text(delta.content) if delta is not None else "",
        finish_reason=choice.finish_reason, raw=_event_raw(event),
    )


def parse_completion_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One streamed ``text_completion`` SSE event (:class:`Completion`); ``raw`` is the
    whole event."""
    data = _event(event, Completion)
    if not isinstance(data, Completion):
        return data
    if not data.choices:
        return None
    choice = data.choices[0]
    return StreamChunk(delta=choice.text or "", finish_reason=choice.finish_reason,
                       raw=_event_raw(event))


# --- Errors --------------------------------------------------------------------------------


def error_fields(data: Any) -> tuple[str | None, str | None, str | None]:
    """``(message, type, code)`` from ``{"error": {...}}`` or ``{"error": "...", ...}``.

    Read field by field from a generic body, and total: a field of another type is ``None``
    and the others are still read (see the module docstring for why error bodies are not
    Structs).
    """
    if not isinstance(data, Mapping):
        return None, None, None
    err = data.get("error")
    if isinstance(err, Mapping):
        message, kind, code = err.get("message"), err.get("type"), err.get("code")
        return (
            message if isinstance(message, str) else None,
            kind if isinstance(kind, str) else None,
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


# --- The whole exchange --------------------------------------------------------------------

# Named events keep the generic decode: ``event: error`` carries whatever the server put
# there, and it must reach classify_error as it came.
_CHAT_EVENTS: Mapping[str, Any] = {"": ChatCompletionChunk}
_COMPLETION_EVENTS: Mapping[str, Any] = {"": Completion}


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
    ``generate`` as a one-turn chat for servers without ``/completions``. The exchange
    declares the answer's Struct (``response_type``, or ``event_type`` for a stream's
    unnamed events), so the core decodes into it once.
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
                            parse_event=parse_chat_event, event_type=_CHAT_EVENTS)
        return Exchange(path=path, json=body, headers=hdrs, parse=parse_chat,
                        response_type=ChatCompletion)
    if op in ("generate", "stream_generate"):
        stream = op == "stream_generate"
        body = completion_body(
            call, stream=stream, include_usage=include_usage, require_model=require_model
        )
        path = f"{prefix}/completions"
        if stream:
            return Exchange(path=path, json=body, headers=hdrs, stream="sse",
                            parse_event=parse_completion_event, event_type=_COMPLETION_EVENTS)
        return Exchange(path=path, json=body, headers=hdrs, parse=parse_completion,
                        response_type=Completion)
    if op == "embed":
        return Exchange(
            path=f"{prefix}/embeddings", json=embeddings_body(call, require_model=require_model),
            headers=hdrs, parse=functools.partial(parse_embeddings, count=len(call.inputs or [])),
            response_type=Embeddings,
        )
    raise UnsupportedOperationError(f"operation {op!r} has no OpenAI-compatible route")

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

``finish_reason`` is put in the core's one vocabulary by :data:`FINISH_REASON_TABLE`
(OpenAI's own values as they are, ``function_call`` as ``tool_calls``, the values servers
behind this format send of their own, such as TGI's ``eos_token`` or vLLM's ``abort``),
and the value as sent stays in ``native_finish_reason``.

Error bodies stay generic: they come from whatever stands in front of the server (proxies,
gateways, load balancers) as often as from the API, and classification must read what it
can from any body, field by field, and never raise. :func:`error_fields` does that.

Rate-limit headers (``x-ratelimit-*``) are read by :func:`openai_rate_limits`, a ready
``parse_rate_limits`` hook. The Structs live in ``_openai_wire``, the request builders in
``_openai_requests``, the error reading in ``_openai_errors`` and the rate-limit headers in
``_openai_limits``; this module is the one place plugins import them from.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from ._errors import UnsupportedOperationError
from ._openai_errors import classify_error, error_fields
from ._openai_limits import openai_rate_limits
from ._openai_parts import _raw_calls, parse_usage, tool_call_deltas, tool_calls
from ._openai_requests import bearer_headers, chat_body, completion_body, embeddings_body
from ._openai_wire import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChunkChoice,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionTokensDetails,
    CompletionUsage,
    ContentPart,
    DeltaToolCall,
    Embedding,
    Embeddings,
    FunctionCall,
    MessageToolCall,
    PromptTokensDetails,
)
from ._settings import EndpointConfig
from ._types import (
    Call,
    ChatResult,
    EmbedResult,
    Exchange,
    Response,
    StreamChunk,
    StreamFailure,
    normalize_finish_reason,
)
from ._wire import Event, decode_json

__all__ = [
    "CHAT_FEATURES",
    "FINISH_REASON_TABLE",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatMessage",
    "ChunkChoice",
    "ChunkDelta",
    "Completion",
    "CompletionChoice",
    "CompletionTokensDetails",
    "CompletionUsage",
    "ContentPart",
    "DeltaToolCall",
    "Embedding",
    "Embeddings",
    "FunctionCall",
    "MessageToolCall",
    "PromptTokensDetails",
    "bearer_headers",
    "chat_body",
    "classify_error",
    "completion_body",
    "embeddings_body",
    "error_fields",
    "exchange",
    "openai_rate_limits",
    "parse_chat",
    "parse_chat_event",
    "parse_completion",
    "parse_completion_event",
    "parse_embeddings",
    "parse_usage",
    "read_event",
    "tool_call_deltas",
    "tool_calls",
]


_T = TypeVar("_T", bound=msgspec.Struct)


def _fit(data: Any, type_: type[_T]) -> _T:
    """``data`` as ``type_``: as it is when the core decoded it so, else fitted here (a
    generic body); a field that does not fit raises ``msgspec.ValidationError`` naming it."""
    if isinstance(data, type_):
        return data
    if not isinstance(data, Mapping):
        raise ValueError("the body is not a JSON object")
    return msgspec.convert(data, type_)


CHAT_FEATURES: Mapping[str, frozenset[str]] = {
    "chat": frozenset({"tools", "json_schema", "json_object", "images"}),
    "stream_chat": frozenset({"tools", "json_schema", "json_object", "images"}),
    "generate": frozenset(),
    "stream_generate": frozenset(),
}
"""``BackendInfo.features`` of a server whose Chat Completions take tools, both response
formats and image parts and whose legacy completions take none of them (OpenAI's own)."""


# --- Answers -------------------------------------------------------------------------------

FINISH_REASON_TABLE: Mapping[str, str] = {
    # OpenAI's own values; the deprecated function_call is a tool call too.
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    # Engines behind this format send some of their own: TGI (eos_token, stop_sequence),
    # vLLM (abort), Mistral (model_length, error), and proxies relay Anthropic's.
    "eos_token": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_calls",
    "abort": "error",
    "error": "error",
}
"""``finish_reason`` values seen on OpenAI-compatible routes, to :data:`ipfs_accel.FINISH_REASONS`
(in any case); a value neither here nor in the vocabulary becomes ``"other"``, and the value
as sent is kept in ``native_finish_reason``."""


def _normal(native: str | None) -> str | None:
    return normalize_finish_reason(native, FINISH_REASON_TABLE)


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, str):
        return content
    if content:  # content parts
        return "".join(part.text or "" for part in content)
    return ""


def _raw(resp: Response) -> Any:
    """The whole body, generic: ``raw`` on a result."""
    data = resp.data
    return data if type(data) is dict or isinstance(data, Mapping) else decode_json(resp.content)


def parse_chat(resp: Response) -> ChatResult:
    """A ``chat.completion`` body (:class:`ChatCompletion`) into a :class:`ChatResult`;
    ``raw`` is the whole body."""
    data = _fit(resp.data, ChatCompletion)
    if not data.choices:
        return ChatResult(text="", model=data.model, raw=_raw(resp))
    first = data.choices[0]
    message = first.message
    if message is None:
        return ChatResult(text="", finish_reason=_normal(first.finish_reason),
                          native_finish_reason=first.finish_reason, model=data.model,
                          raw=_raw(resp))
    raw = _raw(resp)
    return ChatResult(
        text=_text(message.content),
        finish_reason=_normal(first.finish_reason),
        native_finish_reason=first.finish_reason,
        model=data.model,
        tool_calls=tool_calls(message.tool_calls, _raw_calls(raw)) if message.tool_calls
        else None,
        raw=raw,
    )


def parse_completion(resp: Response) -> ChatResult:
    """A ``text_completion`` body (:class:`Completion`) into a :class:`ChatResult`; ``raw``
    is the whole body."""
    data = _fit(resp.data, Completion)
    first = data.choices[0] if data.choices else None
    native = first.finish_reason if first is not None else None
    return ChatResult(
        text=(first.text or "") if first is not None else "",
        finish_reason=_normal(native),
        native_finish_reason=native,
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


_Chunk = TypeVar("_Chunk", bound=msgspec.Struct)


def read_event(event: Event, type_: type[_Chunk]) -> _Chunk | StreamChunk | StreamFailure | None:
    """What an event says before its choices are read: the end (``[DONE]``, a done
    chunk), a failure (an error event, or a chunk whose ``error`` is truthy), nothing (data
    that is not an object), or the chunk itself as ``type_`` (a Struct with an ``error``
    field: :class:`ChatCompletionChunk`, :class:`Completion`, or a plugin's own)."""
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
    if getattr(data, "error", None):  # as the SDKs test it: "error": null is no failure
        return StreamFailure(data=decode_json(event.data))
    return data


def _event_raw(event: Event) -> Any:
    data = event.json
    return data if isinstance(data, Mapping) else decode_json(event.data)


def parse_chat_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One ``chat.completion.chunk`` SSE event (:class:`ChatCompletionChunk`); ``raw`` is
    the whole chunk. The usage-only last chunk gives nothing here: ``parse_usage`` reads it."""
    data = read_event(event, ChatCompletionChunk)
    if not isinstance(data, ChatCompletionChunk):
        return data
    if not data.choices:
        return None
    choice = data.choices[0]
    delta = choice.delta
    return StreamChunk(
        delta=_text(delta.content) if delta is not None else "",
        finish_reason=_normal(choice.finish_reason),
        native_finish_reason=choice.finish_reason, raw=_event_raw(event),
        tool_call_deltas=tool_call_deltas(delta.tool_calls) if delta is not None else None,
        model=data.model,
    )


def parse_completion_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One streamed ``text_completion`` SSE event (:class:`Completion`); ``raw`` is the
    whole event."""
    data = read_event(event, Completion)
    if not isinstance(data, Completion):
        return data
    if not data.choices:
        return None
    choice = data.choices[0]
    return StreamChunk(delta=choice.text or "", finish_reason=_normal(choice.finish_reason),
                       native_finish_reason=choice.finish_reason, raw=_event_raw(event))


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

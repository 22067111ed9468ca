"""Reading Gemini responses: ``GenerateContentResponse`` (whole or streamed), embeddings, usage.

Every field of these responses is optional in the spec, so the readers tolerate absent
ones: a response without candidates (a blocked prompt) is an empty reply whose finish
reason is the ``promptFeedback.blockReason``. Finish reasons are put in the core's
vocabulary by :data:`FINISH_REASON_TABLE`; the API's own value stays beside them.

The first candidate's ``functionCall`` parts become :class:`~ipfs_accel.ToolCall` objects
(``arguments`` the ``args`` object, ``raw`` the part as sent, ``id`` the API's or empty for
the core to make one), each with ``extra_content={"google": {"thought_signature",
"function_call_id"}}`` as far as the part had a ``thoughtSignature`` and an ``id``. A
stream sends each call whole, so a chunk carries the calls of its event in ``tool_calls``.
A text part's ``thoughtSignature`` is the answer's ``extra_content`` (the same namespace).
Usage is read as billed (:func:`usage_from`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec
from ipfs_accel import (
    ChatResult,
    EmbedResult,
    Event,
    Response,
    StreamChunk,
    StreamFailure,
    ToolCall,
    Usage,
    decode_json,
    normalize_finish_reason,
)

from ._wire import (
    BatchEmbedContentsResponse,
    ContentEmbedding,
    EmbedContentResponse,
    GenerateContentResponse,
    StreamEvent,
    embed_raw,
)

__all__ = [
    "FINISH_REASON_TABLE",
    "parse_batch_embed",
    "parse_embed",
    "parse_event",
    "parse_generate",
    "usage_from",
]


_FILTERED = "content_filter"

FINISH_REASON_TABLE: Mapping[str, str] = {
    # Candidate.FinishReason (generative_service.proto)
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": _FILTERED,
    "RECITATION": _FILTERED,
    "BLOCKLIST": _FILTERED,
    "PROHIBITED_CONTENT": _FILTERED,
    "SPII": _FILTERED,
    "IMAGE_SAFETY": _FILTERED,
    "IMAGE_PROHIBITED_CONTENT": _FILTERED,
    "IMAGE_RECITATION": _FILTERED,
    # the model's tool call was unusable: the turn failed rather than asked for tools
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "LANGUAGE": "other",
    "OTHER": "other",
    "IMAGE_OTHER": "other",
    "NO_IMAGE": "other",
    "FINISH_REASON_UNSPECIFIED": "other",
    # PromptFeedback.BlockReason, the finish reason of a blocked prompt (SAFETY, OTHER,
    # BLOCKLIST, PROHIBITED_CONTENT and IMAGE_SAFETY are named as above)
    "BLOCK_REASON_UNSPECIFIED": "other",
}
"""Gemini's ``finishReason`` and ``blockReason`` values in the core's finish-reason
vocabulary; a value not listed becomes ``"other"``. A ``STOP`` whose candidate calls
functions is ``tool_calls`` (Gemini has no reason of its own for it)."""


def _finish(native: str | None, calls: list[ToolCall] | None) -> str | None:
    reason = normalize_finish_reason(native, FINISH_REASON_TABLE)
    return "tool_calls" if reason == "stop" and calls else reason


def _count(value: int) -> int:
    return value if value > 0 else 0


def usage_from(data: Any) -> Usage | None:
    """Usage from a response's ``usageMetadata``, as billed; ``None`` when it has none.

    - ``input_tokens``: ``promptTokenCount`` (the cached part included, also given as
      ``cache_read_tokens`` from ``cachedContentTokenCount``) plus
      ``toolUsePromptTokenCount`` (the prompt of the API's own tool use, billed as input);
    - ``output_tokens``: ``candidatesTokenCount`` plus ``thoughtsTokenCount`` (thinking is
      billed as output), and ``reasoning_tokens`` the ``thoughtsTokenCount``;
    - ``total_tokens``: the API's ``totalTokenCount`` (input plus output when it has none).

    The three counts that are not plain prompt or candidates stay in ``details`` under the
    API's names as well. Never raises.
    """
    if isinstance(data, dict):  # from a caller that declared no type: read it the same way
        try:
            data = msgspec.convert(data, GenerateContentResponse)
        except msgspec.ValidationError:
            return None
    if not isinstance(data, GenerateContentResponse) or data.usage_metadata is None:
        return None
    meta = data.usage_metadata
    thoughts = _count(meta.thoughts_token_count)
    tool_prompt = _count(meta.tool_use_prompt_token_count)
    details = {
        name: float(value)
        for name, value in (
            ("thoughtsTokenCount", thoughts),
            ("toolUsePromptTokenCount", tool_prompt),
            ("totalTokenCount", _count(meta.total_token_count)),
        )
        if value > 0
    }
    return Usage(
        input_tokens=_count(meta.prompt_token_count) + tool_prompt,
        output_tokens=_count(meta.candidates_token_count) + thoughts,
        total_tokens=_count(meta.total_token_count),
        cache_read_tokens=_count(meta.cached_content_token_count),
        reasoning_tokens=thoughts,
        details=details,
    )


class _Turn(NamedTuple):
    """What the first candidate says: its text, finish reason, function calls and the
    thought signature of a text part (returned with the turn, as the API recommends)."""

    text: str
    reason: str | None
    calls: list[ToolCall] | None
    signature: str | None


def _raw_parts(raw: Any) -> list[Any]:
    """The first candidate's parts as the body spelled them (for ``ToolCall.raw``)."""
    try:
        parts = raw["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        return []
    return parts if isinstance(parts, list) else []


def _google(signature: str | None, call_id: str | None = None) -> dict[str, Any] | None:
    """``extra_content`` for what the API wants back: ``{"google": {...}}`` or ``None``."""
    google: dict[str, Any] = {}
    if signature:
        google["thought_signature"] = signature
    if call_id:
        google["function_call_id"] = call_id
    return {"google": google} if google else None


def _turn(data: GenerateContentResponse, raw: Any) -> _Turn:
    """The first candidate's answer (thoughts left out of the text); ``raw`` is the body
    (or the event) as decoded JSON, whose parts become the calls' ``raw``."""
    if not data.candidates:
        feedback = data.prompt_feedback
        return _Turn("", None if feedback is None else feedback.block_reason, None, None)
    first = data.candidates[0]
    parts = [] if first.content is None else first.content.parts
    raws = _raw_parts(raw)
    texts: list[str] = []
    calls: list[ToolCall] = []
    signature: str | None = None
    for i, part in enumerate(parts):
        fc = part.function_call
        if fc is not None:
            calls.append(ToolCall.of(
                id=fc.id or "", name=fc.name, arguments=fc.args or {},
                extra_content=_google(part.thought_signature, fc.id),
                raw=raws[i] if i < len(raws) else None,
            ))
        elif not part.thought:
            if part.text is not None:
                texts.append(part.text)
            if part.thought_signature:
                signature = part.thought_signature
    return _Turn("".join(texts), first.finish_reason, calls or None, signature)


def parse_generate(resp: Response) -> ChatResult:
    """A ``GenerateContentResponse`` into a :class:`ChatResult`; ``raw`` is the whole body.

    ``native_finish_reason`` is the first candidate's ``finishReason`` (or the prompt's
    ``blockReason``), ``finish_reason`` that value in the core's vocabulary. ``functionCall``
    parts are the ``tool_calls`` (see :mod:`ipfs_accel_gemini`)."""
    data: GenerateContentResponse = resp.data
    raw = decode_json(resp.content)
    turn = _turn(data, raw)
    return ChatResult(
        text=turn.text,
        finish_reason=_finish(turn.reason, turn.calls),
        native_finish_reason=turn.reason,
        model=data.model_version,
        server_request_id=data.response_id or None,
        tool_calls=turn.calls,
        extra_content=_google(turn.signature),
        raw=raw,
    )


def _values(embedding: ContentEmbedding, where: str) -> list[float]:
    """A ``ContentEmbedding``'s ``values``, which the spec lets a server leave out."""
    if embedding.values is None:
        raise TypeError(f"{where}.values of type NoneType, expected a list")
    return embedding.values


def parse_embed(resp: Response) -> EmbedResult:
    """An ``EmbedContentResponse`` (one input) into an :class:`EmbedResult`.

    ``raw`` is the body without the vector (which is in ``vectors``)."""
    data: EmbedContentResponse = resp.data
    if data.embedding is None:
        raise ValueError("the response has no 'embedding' for its one input")
    return EmbedResult(vectors=[_values(data.embedding, "embedding")],
                       raw=embed_raw(resp.content, "embedding"))


def parse_batch_embed(count: int) -> Callable[[Response], EmbedResult]:
    """The parser of a ``BatchEmbedContentsResponse`` for ``count`` inputs.

    The embeddings carry no index: the API answers in request order, so the i-th one is the
    i-th input's, and a different number of them is an error, never a shifted result.
    ``raw`` is the body without the vectors.
    """

    def parse(resp: Response) -> EmbedResult:
        data: BatchEmbedContentsResponse = resp.data
        embeddings = data.embeddings
        if embeddings is None:
            raise TypeError("embeddings of type NoneType, expected a list")
        if len(embeddings) != count:
            raise ValueError(f"{len(embeddings)} embeddings for {count} inputs")
        return EmbedResult(
            vectors=[_values(e, f"embeddings[{i}]") for i, e in enumerate(embeddings)],
            raw=embed_raw(resp.content, "embeddings"),
        )

    return parse


def parse_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One SSE event of ``streamGenerateContent?alt=sse``: a ``GenerateContentResponse``
    (decoded by the core into :class:`~._wire.StreamEvent`), or an ``error`` object.

    The stream has no end marker: the chunk carrying a ``finishReason`` (or, for a blocked
    prompt, a ``promptFeedback.blockReason``) is the last one, its finish reasons read as in
    :func:`parse_generate`. The event's ``functionCall`` parts are whole calls, in
    ``tool_calls`` (the core gives those without an ID one, and says ``tool_calls`` at the
    end of a turn that had any). A chunk's ``raw`` is the event's whole data.
    """
    data = event.json
    if not isinstance(data, StreamEvent):
        return None
    if data.error is not None:
        code = data.error.get("code") if isinstance(data.error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else None
        return StreamFailure(data=decode_json(event.data), status=status)
    raw = decode_json(event.data)
    turn = _turn(data, raw)
    return StreamChunk(
        delta=turn.text, finish_reason=_finish(turn.reason, turn.calls),
        native_finish_reason=turn.reason, done=turn.reason is not None,
        server_request_id=data.response_id or None, tool_calls=turn.calls,
        model=data.model_version, extra_content=_google(turn.signature), raw=raw,
    )

"""Reading Gemini responses: ``GenerateContentResponse`` (whole or streamed), embeddings, usage.

Every field of these responses is optional in the spec, so the readers tolerate absent
ones: a response without candidates (a blocked prompt) is an empty reply whose finish
reason is the ``promptFeedback.blockReason``. Finish reasons are put in the core's
vocabulary by :data:`FINISH_REASON_TABLE`; the API's own value stays beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from ipfs_accel import (
    ChatResult,
    EmbedResult,
    Event,
    Response,
    StreamChunk,
    StreamFailure,
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


def _finish(native: str | None, calls: list[Any] | None) -> str | None:
    reason = normalize_finish_reason(native, FINISH_REASON_TABLE)
    return "tool_calls" if reason == "stop" and calls else reason


def _count(value: int) -> int:
    return value if value > 0 else 0


def usage_from(data: Any) -> Usage | None:
    """Usage from a response's ``usageMetadata``; ``None`` when it has none.

    ``promptTokenCount`` is the input (``cachedContentTokenCount`` of it came from the
    cache), ``candidatesTokenCount`` the output; thinking and tool-use prompt tokens and
    the total are kept in ``details`` under the API's own names. Never raises.
    """
    if isinstance(data, dict):  # from a caller that declared no type: read it the same way
        try:
            data = msgspec.convert(data, GenerateContentResponse)
        except msgspec.ValidationError:
            return None
    if not isinstance(data, GenerateContentResponse) or data.usage_metadata is None:
        return None
    meta = data.usage_metadata
    details = {
        name: float(_count(value))
        for name, value in (
            ("thoughtsTokenCount", meta.thoughts_token_count),
            ("toolUsePromptTokenCount", meta.tool_use_prompt_token_count),
            ("totalTokenCount", meta.total_token_count),
        )
        if value > 0
    }
    return Usage(
        input_tokens=_count(meta.prompt_token_count),
        output_tokens=_count(meta.candidates_token_count),
        cache_read_tokens=_count(meta.cached_content_token_count),
        details=details,
    )


def _candidate(data: GenerateContentResponse) -> tuple[str, str | None, list[Any] | None]:
    """Text (thoughts left out), finish reason and function calls of the first candidate."""
    if not data.candidates:
        feedback = data.prompt_feedback
        return "", None if feedback is None else feedback.block_reason, None
    first = data.candidates[0]
    parts = [] if first.content is None else first.content.parts
    text = "".join(p.text for p in parts if p.text is not None and not p.thought)
    calls: list[Any] = [p.function_call for p in parts if p.function_call is not None]
    return text, first.finish_reason, calls or None


def parse_generate(resp: Response) -> ChatResult:
    """A ``GenerateContentResponse`` into a :class:`ChatResult`; ``raw`` is the whole body.

    ``native_finish_reason`` is the first candidate's ``finishReason`` (or the prompt's
    ``blockReason``), ``finish_reason`` that value in the core's vocabulary."""
    data: GenerateContentResponse = resp.data
    text, reason, calls = _candidate(data)
    return ChatResult(
        text=text,
        finish_reason=_finish(reason, calls),
        native_finish_reason=reason,
        model=data.model_version,
        server_request_id=data.response_id or None,
        tool_calls=calls,
        raw=decode_json(resp.content),
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
    :func:`parse_generate`. A chunk's ``raw`` is the event's whole data.
    """
    data = event.json
    if not isinstance(data, StreamEvent):
        return None
    if data.error is not None:
        code = data.error.get("code") if isinstance(data.error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else None
        return StreamFailure(data=decode_json(event.data), status=status)
    text, reason, calls = _candidate(data)
    return StreamChunk(
        delta=text, finish_reason=_finish(reason, calls), native_finish_reason=reason,
        done=reason is not None,
        server_request_id=data.response_id or None, raw=decode_json(event.data),
    )

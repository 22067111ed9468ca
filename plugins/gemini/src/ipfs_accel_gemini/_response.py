"""Reading Gemini responses: ``GenerateContentResponse`` (whole or streamed), embeddings, usage.

Every field of these responses is optional in the spec, so the readers tolerate absent
ones: a response without candidates (a blocked prompt) is an empty reply whose finish
reason is the ``promptFeedback.blockReason``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ipfs_accel import ChatResult, EmbedResult, Event, Response, StreamChunk, StreamFailure, Usage

__all__ = [
    "parse_batch_embed",
    "parse_embed",
    "parse_event",
    "parse_generate",
    "usage_from",
]

# usageMetadata counts kept in Usage.details under the API's own names.
_DETAIL_FIELDS = ("thoughtsTokenCount", "toolUsePromptTokenCount", "totalTokenCount")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from(data: Any) -> Usage | None:
    """Usage from a response's ``usageMetadata``; ``None`` when it has none.

    ``promptTokenCount`` is the input (``cachedContentTokenCount`` of it came from the
    cache), ``candidatesTokenCount`` the output; thinking and tool-use prompt tokens are
    kept in ``details``.
    """
    meta = data.get("usageMetadata") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return None
    details = {name: float(_int(meta.get(name))) for name in _DETAIL_FIELDS if _int(meta.get(name))}
    return Usage(
        input_tokens=_int(meta.get("promptTokenCount")),
        output_tokens=_int(meta.get("candidatesTokenCount")),
        cache_read_tokens=_int(meta.get("cachedContentTokenCount")),
        details=details,
    )


def _candidate(data: dict[str, Any]) -> tuple[str, str | None, list[Any] | None]:
    """Text (thoughts left out), finish reason and function calls of the first candidate."""
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        feedback = data.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        return "", reason if isinstance(reason, str) else None, None
    first = candidates[0]
    reason = first.get("finishReason")
    content = first.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[Any] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str) and not part.get("thought"):
            texts.append(text)
        if "functionCall" in part:
            calls.append(part["functionCall"])
    return "".join(texts), reason if isinstance(reason, str) else None, calls or None


def _response_id(data: dict[str, Any]) -> str | None:
    value = data.get("responseId")
    return value if isinstance(value, str) and value else None


def _model(data: dict[str, Any]) -> str | None:
    value = data.get("modelVersion")
    return value if isinstance(value, str) else None


def _object(resp: Response) -> dict[str, Any]:
    if not isinstance(resp.data, dict):
        raise TypeError("the response is not a JSON object")
    return resp.data


def parse_generate(resp: Response) -> ChatResult:
    """A ``GenerateContentResponse`` into a :class:`ChatResult`."""
    data = _object(resp)
    text, reason, calls = _candidate(data)
    return ChatResult(
        text=text,
        finish_reason=reason,
        model=_model(data),
        server_request_id=_response_id(data),
        tool_calls=calls,
        raw=data,
    )


def _values(embedding: Any, where: str) -> list[Any]:
    """A ``ContentEmbedding``'s ``values``, as sent: the core checks they are finite numbers
    (a string such as ``"0.5"`` is refused there, not quietly converted)."""
    if not isinstance(embedding, dict):
        raise TypeError(f"{where} of type {type(embedding).__name__}, expected an object")
    values = embedding.get("values")
    if not isinstance(values, list):
        raise TypeError(f"{where}.values of type {type(values).__name__}, expected a list")
    return values


def parse_embed(resp: Response) -> EmbedResult:
    """An ``EmbedContentResponse`` (one input) into an :class:`EmbedResult`."""
    data = _object(resp)
    if "embedding" not in data:
        raise ValueError("the response has no 'embedding' for its one input")
    return EmbedResult(vectors=[_values(data["embedding"], "embedding")], raw=data)


def parse_batch_embed(count: int) -> Callable[[Response], EmbedResult]:
    """The parser of a ``BatchEmbedContentsResponse`` for ``count`` inputs.

    The embeddings carry no index: the API answers in request order, so the i-th one is the
    i-th input's, and a different number of them is an error, never a shifted result.
    """

    def parse(resp: Response) -> EmbedResult:
        data = _object(resp)
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list):
            raise TypeError(
                f"embeddings of type {type(embeddings).__name__}, expected a list"
            )
        if len(embeddings) != count:
            raise ValueError(f"{len(embeddings)} embeddings for {count} inputs")
        return EmbedResult(
            vectors=[_values(e, f"embeddings[{i}]") for i, e in enumerate(embeddings)], raw=data
        )

    return parse


def parse_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One SSE event of ``streamGenerateContent?alt=sse``: a ``GenerateContentResponse``.

    The stream has no end marker: the chunk carrying a ``finishReason`` (or, for a blocked
    prompt, a ``promptFeedback.blockReason``) is the last one.
    """
    data = event.json
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else None
        return StreamFailure(data=data, status=status)
    text, reason, _ = _candidate(data)
    return StreamChunk(
        delta=text, finish_reason=reason, done=reason is not None,
        server_request_id=_response_id(data), raw=data,
    )

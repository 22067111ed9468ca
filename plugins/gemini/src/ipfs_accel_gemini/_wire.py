"""Gemini's answers as msgspec Structs: what the core decodes bodies and stream events into.

Field names are the API's camelCase (``rename="camel"``), so an error names the field as the
body spells it (``$.candidates[0].finishReason``). Every field of these responses is
optional in the spec, so each has a default; only what the plugin reads is declared, and
the decoder skips the rest.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "BatchEmbedContentsResponse",
    "Candidate",
    "Content",
    "ContentEmbedding",
    "EmbedContentResponse",
    "GenerateContentResponse",
    "Part",
    "PromptFeedback",
    "StreamEvent",
    "UsageMetadata",
    "embed_raw",
]


class _In(msgspec.Struct, rename="camel"):
    """Incoming: unknown fields are skipped, names are the API's camelCase."""


class Part(_In):
    """A ``Part``: text (a thought when ``thought`` is set) or a function call."""

    text: str | None = None
    thought: bool = False
    function_call: dict[str, Any] | None = None


class Content(_In):
    """A candidate's ``Content``."""

    parts: list[Part] = []


class Candidate(_In):
    """A ``GenerateContentCandidate``."""

    content: Content | None = None
    finish_reason: str | None = None


class PromptFeedback(_In):
    """Why a prompt was blocked (then there are no candidates)."""

    block_reason: str | None = None


class UsageMetadata(_In):
    """``usageMetadata``: token counts."""

    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    total_token_count: int = 0


class GenerateContentResponse(_In):
    """A ``GenerateContentResponse`` (the answer of ``generateContent``)."""

    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None


class StreamEvent(GenerateContentResponse):
    """One ``streamGenerateContent?alt=sse`` event: a ``GenerateContentResponse``, or a
    google.rpc ``error`` object (kept generic: ``classify_error`` reads any shape)."""

    error: Any = None


class ContentEmbedding(_In):
    """A ``ContentEmbedding``: the vector (optional in the spec, required by the plugin)."""

    values: list[float] | None = None


class EmbedContentResponse(_In):
    """The answer of ``embedContent``."""

    embedding: ContentEmbedding | None = None


class BatchEmbedContentsResponse(_In):
    """The answer of ``batchEmbedContents``: one embedding per request, in order."""

    embeddings: list[ContentEmbedding] | None = None


_decode = msgspec.json.decode
_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_EMBEDDING = msgspec.json.Decoder(dict[str, msgspec.Raw] | None)
_EMBEDDINGS = msgspec.json.Decoder(list[dict[str, msgspec.Raw]] | None)


def _rest(fields: dict[str, msgspec.Raw], left_out: str) -> dict[str, Any]:
    return {name: _decode(value) for name, value in fields.items() if name != left_out}


def embed_raw(content: bytes, key: str) -> dict[str, Any]:
    """An embeddings body without its vectors: every field, and every field of each
    embedding (``shape``...), but ``values``.

    The vectors were decoded once, into the typed response; here they are only skipped
    over (``msgspec.Raw``), never turned into floats a second time. ``key`` is
    ``"embedding"`` (``embedContent``) or ``"embeddings"`` (``batchEmbedContents``); the
    body has already been decoded into its type, so its shape is known to fit.
    """
    fields = _FIELDS.decode(content)
    raw = _rest(fields, key)
    if key in fields:
        if key == "embedding":
            one = _EMBEDDING.decode(fields[key])
            raw[key] = None if one is None else _rest(one, "values")
        else:
            many = _EMBEDDINGS.decode(fields[key])
            raw[key] = None if many is None else [_rest(e, "values") for e in many]
    return raw

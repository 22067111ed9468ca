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
    "FunctionCall",
    "GenerateContentResponse",
    "Part",
    "PromptFeedback",
    "StreamEvent",
    "UsageMetadata",
    "embed_raw",
]


class _In(msgspec.Struct, rename="camel"):
    """Incoming: unknown fields are skipped, names are the API's camelCase."""


class FunctionCall(_In):
    """A ``FunctionCall`` the model asks for: ``args`` is a JSON object; ``id`` is optional
    (the API gives one on some models only)."""

    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class Part(_In):
    """A ``Part``: text (a thought when ``thought`` is set) or a function call.

    ``thoughtSignature`` is the opaque signature of the model's thinking that the API wants
    back on the same part of the turn when the conversation goes on."""

    text: str | None = None
    thought: bool = False
    function_call: FunctionCall | None = None
    thought_signature: str | None = None


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


def embed_raw(content: bytes, key: str) -> dict[str, Any]:
    """An embeddings body without its vectors: every top-level field but ``key``
    (``"embedding"`` for ``embedContent``, ``"embeddings"`` for ``batchEmbedContents``).

    The vectors were decoded once, into the typed response; here the decoder only skips
    over them (``msgspec.Raw``), never turning them into floats a second time. The proto
    gives a ``ContentEmbedding`` nothing but its ``values`` (the OpenAPI file adds a
    ``shape``), so ``key`` is left out whole rather than scanned again for what is left.
    """
    return {name: _decode(value) for name, value in _FIELDS.decode(content).items()
            if name != key}

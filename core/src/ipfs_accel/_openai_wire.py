"""The OpenAI wire format's answers as Structs: what :mod:`ipfs_accel.openai_compat` reads.

Re-exported by ``openai_compat``, which declares them as its exchanges' ``response_type`` /
``event_type``; each declares only the fields read there, and skips the rest.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
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
]


# omit_defaults: msgspec.to_builtins of a Struct gives back only the fields the body had
# (EmbedResult.raw is built that way, without the vectors).


class PromptTokensDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``usage.prompt_tokens_details``: prompt-cache reads (and writes, where reported)."""

    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class CompletionTokensDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``usage.completion_tokens_details``: reasoning tokens (part of the completion's)."""

    reasoning_tokens: int | None = None


class CompletionUsage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``usage`` of a body or of a stream's last chunk (``CompletionUsage`` in the spec).

    The ``*_time`` fields are Groq's timings (seconds), kept in ``Usage.details``.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    queue_time: float | None = None
    prompt_time: float | None = None
    completion_time: float | None = None
    total_time: float | None = None


class ContentPart(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One part of a ``content`` given as a list (a text part; others have no ``text``)."""

    text: str | None = None


class FunctionCall(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``function`` of a tool call: ``arguments`` is JSON text (OpenAI), or an object (some
    servers behind this format send it decoded)."""

    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class MessageToolCall(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[].message.tool_calls[]`` of a chat completion."""

    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class DeltaToolCall(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[].delta.tool_calls[]`` of a chat stream chunk: a fragment of call
    ``index`` (``id`` and the name come first, then the arguments in pieces)."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class ChatMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``choices[].message`` of a chat completion."""

    content: str | list[ContentPart] | None = None
    tool_calls: list[MessageToolCall] | None = None


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
    tool_calls: list[DeltaToolCall] | None = None


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

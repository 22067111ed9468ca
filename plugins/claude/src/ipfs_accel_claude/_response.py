"""Anthropic Messages API answers: a whole message, its tool calls and thinking, and usage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from ipfs_accel import (
    ChatResult,
    Response,
    ToolCall,
    Usage,
    decode_json,
    normalize_finish_reason,
)

from ._wire import Block, Message, MessageDelta, MessageStart, typed_event
from ._wire import Usage as WireUsage

__all__ = [
    "FINISH_REASON_TABLE",
    "VENDOR",
    "chat_result",
    "parse_message",
    "thinking_block",
    "thinking_extra",
    "usage_of",
]

VENDOR = "anthropic"
"""The key of Anthropic's data in ``extra_content`` (``{"anthropic": {"thinking": [...]}}``)."""

FINISH_REASON_TABLE: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    # the beta API's stop when the model's context window, not max_tokens, ran out
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # the turn is unfinished: sent back as is, the API carries on; nothing in the vocabulary
    "pause_turn": "other",
    "compaction": "other",
}
"""Anthropic's ``stop_reason`` values (``StopReason`` and ``BetaStopReason`` in the spec)
in the core's finish-reason vocabulary; any value not listed becomes ``"other"``."""


def _count(value: int | None) -> int:
    return value if value is not None and value > 0 else 0


def thinking_block(block: Block) -> dict[str, Any] | None:
    """A ``thinking`` or ``redacted_thinking`` block of the answer as the request takes it
    back (``RequestThinkingBlock``: ``thinking`` and ``signature``;
    ``RequestRedactedThinkingBlock``: ``data``); ``None`` for any other block."""
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return None


def thinking_extra(blocks: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """``extra_content`` carrying the turn's thinking blocks, in order (``None``: none)."""
    thinking = list(blocks)
    return {VENDOR: {"thinking": thinking}} if thinking else None


def parse_message(resp: Response) -> ChatResult:
    """A ``Message`` body (decoded by the core into :class:`~._wire.Message`) into a
    :class:`ChatResult`.

    Text blocks are joined into ``text``; each ``tool_use`` block is a :class:`ToolCall`
    (``id``, ``name``, ``arguments`` = its ``input`` object, ``raw`` = the block as sent);
    ``thinking`` and ``redacted_thinking`` blocks, with their signatures, are kept in
    ``extra_content`` as ``{"anthropic": {"thinking": [...]}}`` so that ``result.message``
    sent back restores them before the ``tool_use`` blocks, as the API requires when
    extended thinking is on. ``stop_reason`` is ``native_finish_reason`` and, by
    :data:`FINISH_REASON_TABLE`, ``finish_reason``. ``raw`` is the whole body.
    """
    return chat_result(resp.data, decode_json(resp.content))


def chat_result(data: Message, raw: Any) -> ChatResult:
    """:func:`parse_message` of a ``Message`` already decoded: ``data`` typed, ``raw`` the
    same body generically decoded (a batch's result line carries the message so)."""
    blocks = data.content
    text = "".join(b.text for b in blocks if b.type == "text")
    # the typed decode checked the list, so the block at the same position of the body is
    # the one the call was read from: raw keeps fields the plugin does not declare
    tool_calls = [
        ToolCall.of(id=b.id, name=b.name, arguments=b.input or {}, raw=raw["content"][i])
        for i, b in enumerate(blocks) if b.type == "tool_use"
    ]
    return ChatResult(
        text=text,
        finish_reason=normalize_finish_reason(data.stop_reason, FINISH_REASON_TABLE),
        native_finish_reason=data.stop_reason,
        model=data.model,
        tool_calls=tool_calls or None,
        extra_content=thinking_extra(t for b in blocks if (t := thinking_block(b)) is not None),
        raw=raw,
    )


def _usage(data: Any) -> WireUsage | None:
    if isinstance(data, Message | MessageDelta):
        return data.usage
    if isinstance(data, MessageStart):
        return data.message.usage
    return None


def usage_of(data: Any) -> Usage | None:
    """Usage from a ``Message`` body or a ``message_start`` / ``message_delta`` event.

    Billed tokens: Anthropic's ``input_tokens`` leaves out the prompt-cache tokens, which
    are billed input too, so the core's input is ``input_tokens`` +
    ``cache_creation_input_tokens`` + ``cache_read_input_tokens`` (the two also in
    ``cache_write_tokens`` / ``cache_read_tokens``). ``output_tokens`` is billed output,
    extended-thinking tokens included (the API reports no separate count of them, so
    ``reasoning_tokens`` stays 0); the API gives no total, so ``total_tokens`` is input plus
    output. A ``message_delta`` without ``input_tokens`` reports none, so the input counted
    from ``message_start`` stands.
    """
    try:
        usage = _usage(typed_event(data))
    except msgspec.ValidationError:
        return None  # the stream reader has already refused this event
    if usage is None:
        return None
    cache_write = _count(usage.cache_creation_input_tokens)
    cache_read = _count(usage.cache_read_input_tokens)
    given = usage.input_tokens
    return Usage(
        input_tokens=_count(given) + cache_write + cache_read if given is not None else 0,
        output_tokens=_count(usage.output_tokens),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )

"""Anthropic Messages API answers: messages, stream events, usage and errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
from ipfs_accel import (
    ChatResult,
    Classification,
    ErrorKind,
    Event,
    Failure,
    Response,
    StreamChunk,
    StreamFailure,
    Usage,
    decode_json,
    default_classification,
    normalize_finish_reason,
)

from ._wire import (
    BlockDelta,
    BlockStart,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    typed_event,
)
from ._wire import Usage as WireUsage

__all__ = [
    "FINISH_REASON_TABLE",
    "classify",
    "error_fields",
    "parse_event",
    "parse_message",
    "usage_of",
]

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


def parse_message(resp: Response) -> ChatResult:
    """A ``Message`` body (decoded by the core into :class:`~._wire.Message`) into a
    :class:`ChatResult`: text blocks joined, ``tool_use`` blocks as ``tool_calls``,
    ``stop_reason`` as ``native_finish_reason`` and, by :data:`FINISH_REASON_TABLE`, as
    ``finish_reason``. ``raw`` is the whole body."""
    data: Message = resp.data
    raw = decode_json(resp.content)
    blocks = data.content
    text = "".join(b.text for b in blocks if b.type == "text")
    # a tool_use block goes out whole, as the API sent it: the typed decode checked the
    # list, so the block at the same position of the body is that block
    tool_calls = [raw["content"][i] for i, b in enumerate(blocks) if b.type == "tool_use"]
    return ChatResult(
        text=text,
        finish_reason=normalize_finish_reason(data.stop_reason, FINISH_REASON_TABLE),
        native_finish_reason=data.stop_reason,
        model=data.model,
        tool_calls=tool_calls or None,
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

    Anthropic's ``input_tokens`` leaves out the prompt-cache tokens; the core's input
    includes them (``cache_*_tokens`` are part of the input), so the three are added.
    A ``message_delta`` without ``input_tokens`` reports none, so the input counted from
    ``message_start`` stands.
    """
    try:
        usage = _usage(typed_event(data))
    except msgspec.ValidationError:
        return None  # parse_event has already refused this event
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


def _chunk(data: Any) -> StreamChunk | None:
    """The chunk a typed event makes, if any."""
    if isinstance(data, BlockDelta):
        # input_json_delta, thinking_delta, signature_delta, citations_delta carry no text
        delta = data.delta
        return StreamChunk(delta=delta.text) if delta.type == "text_delta" else None
    if isinstance(data, BlockStart):
        block = data.content_block
        return StreamChunk(delta=block.text) if block.type == "text" and block.text else None
    if isinstance(data, MessageDelta):
        native = data.delta.stop_reason
        return StreamChunk(finish_reason=normalize_finish_reason(native, FINISH_REASON_TABLE),
                           native_finish_reason=native)
    if isinstance(data, MessageStop):
        return StreamChunk(done=True)
    return None


def parse_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One SSE event of a streamed message, decoded by the core by its event name.

    ``content_block_delta`` with a ``text_delta`` carries text; ``message_delta`` the
    stop reason (normalised as in :func:`parse_message`); ``message_stop`` ends the
    stream; ``error`` is a failure. Usage is read by the ``parse_usage`` hook from
    ``message_start`` and ``message_delta``. ``ping``, ``message_start``, block stops,
    non-text deltas (tool input JSON, thinking) and event types added later carry no text.
    A chunk's ``raw`` is the event's whole data.
    """
    data = event.json
    if event.event == "error" or (isinstance(data, dict) and data.get("type") == "error"):
        return StreamFailure(data=data if data is not None else event.data)
    chunk = _chunk(typed_event(data))
    if chunk is not None:
        chunk.raw = decode_json(event.data)
    return chunk


def error_fields(data: Any) -> tuple[str | None, str | None]:
    """``(type, message)`` of ``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    if not isinstance(data, Mapping):
        return None, None
    err = data.get("error")
    if not isinstance(err, Mapping):
        return None, None
    kind, message = err.get("type"), err.get("message")
    return (kind if isinstance(kind, str) else None,
            message if isinstance(message, str) else None)


# error type -> (kind, retryable); the status decides for types not listed here
_TYPES: dict[str, tuple[ErrorKind, bool]] = {
    "invalid_request_error": (ErrorKind.BAD_REQUEST, False),
    "request_too_large": (ErrorKind.BAD_REQUEST, False),
    "authentication_error": (ErrorKind.AUTH, False),
    "permission_error": (ErrorKind.AUTH, False),
    "billing_error": (ErrorKind.QUOTA_EXCEEDED, False),
    "not_found_error": (ErrorKind.NOT_FOUND, False),
    "rate_limit_error": (ErrorKind.RATE_LIMITED, True),
    "api_error": (ErrorKind.SERVER, True),
    "overloaded_error": (ErrorKind.OVERLOADED, True),
    # a 504 from Anthropic's side: an HTTP answer, so a server error rather than our timeout
    "timeout_error": (ErrorKind.SERVER, True),
}

_CONTEXT = re.compile(
    r"prompt is too long|exceed(?:s|ed)? (?:the )?context (?:limit|window)|context window",
    re.IGNORECASE,
)


def classify(failure: Failure) -> Classification:
    """Anthropic's error semantics over the default classification.

    The body's ``error.type`` decides the kind (a 529 ``overloaded_error`` is overloaded,
    a ``billing_error`` is out of quota, an ``error`` event mid-stream keeps its type);
    an ``invalid_request_error`` saying the prompt is too long is a context-length error.
    ``x-should-retry`` from the server still has the last word on retrying.
    """
    c = default_classification(failure)
    kind, message = error_fields(failure.data)
    if kind is not None:
        c.code = kind
        if kind in _TYPES:
            c.kind, c.retryable = _TYPES[kind]
            should = failure.headers.get("x-should-retry")
            if should in ("true", "false"):
                c.retryable = should == "true"
    if message:
        c.message = message
        if c.kind is ErrorKind.BAD_REQUEST and _CONTEXT.search(message):
            c.kind = ErrorKind.CONTEXT_LENGTH
            c.retryable = False
    return c

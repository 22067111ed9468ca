"""Anthropic Messages API answers: messages, stream events, usage and errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

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
    default_classification,
)

__all__ = ["classify", "error_fields", "parse_event", "parse_message", "usage_of"]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_message(resp: Response) -> ChatResult:
    """A ``Message`` body into a :class:`ChatResult`: text blocks joined, ``tool_use``
    blocks as ``tool_calls``, ``stop_reason`` as the finish reason."""
    data = resp.data
    if not isinstance(data, Mapping):
        raise TypeError("the body is not a JSON object")
    content = data.get("content")
    if not isinstance(content, list):
        raise TypeError("the message has no 'content' list")
    blocks = [b for b in content if isinstance(b, Mapping)]
    text = "".join(
        b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)
    )
    tool_calls = [dict(b) for b in blocks if b.get("type") == "tool_use"]
    stop_reason = data.get("stop_reason")
    model = data.get("model")
    return ChatResult(
        text=text,
        finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        model=model if isinstance(model, str) else None,
        tool_calls=tool_calls or None,
        raw=data,
    )


def usage_of(data: Any) -> Usage | None:
    """Usage from a ``Message`` body or a ``message_start`` / ``message_delta`` event.

    Anthropic's ``input_tokens`` leaves out the prompt-cache tokens; the core's input
    includes them (``cache_*_tokens`` are part of the input), so the three are added.
    A ``message_delta`` without ``input_tokens`` reports none, so the input counted from
    ``message_start`` stands.
    """
    if not isinstance(data, Mapping):
        return None
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        message = data.get("message")
        usage = message.get("usage") if isinstance(message, Mapping) else None
        if not isinstance(usage, Mapping):
            return None
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
    given = usage.get("input_tokens")
    has_input = isinstance(given, int) and not isinstance(given, bool)
    return Usage(
        input_tokens=_int(given) + cache_write + cache_read if has_input else 0,
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _block_delta(data: Mapping[str, Any]) -> StreamChunk | None:
    delta = data.get("delta")
    if isinstance(delta, Mapping) and delta.get("type") == "text_delta":
        text = delta.get("text")
        return StreamChunk(delta=text if isinstance(text, str) else "", raw=data)
    return None  # input_json_delta, thinking_delta, signature_delta, citations_delta


def _block_start(data: Mapping[str, Any]) -> StreamChunk | None:
    block = data.get("content_block")
    if isinstance(block, Mapping) and block.get("type") == "text" and block.get("text"):
        return StreamChunk(delta=str(block["text"]), raw=data)
    return None


def _message_delta(data: Mapping[str, Any]) -> StreamChunk:
    delta = data.get("delta")
    reason = delta.get("stop_reason") if isinstance(delta, Mapping) else None
    return StreamChunk(finish_reason=reason if isinstance(reason, str) else None, raw=data)


def _message_stop(data: Mapping[str, Any]) -> StreamChunk:
    return StreamChunk(done=True, raw=data)


_EVENTS: dict[str, Callable[[Mapping[str, Any]], StreamChunk | None]] = {
    "content_block_delta": _block_delta,
    "content_block_start": _block_start,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
}


def parse_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One SSE event of a streamed message.

    ``content_block_delta`` with a ``text_delta`` carries text; ``message_delta`` the
    stop reason; ``message_stop`` ends the stream; ``error`` is a failure. Usage is read
    by the ``parse_usage`` hook from ``message_start`` and ``message_delta``. ``ping``,
    ``message_start``, block stops, non-text deltas (tool input JSON, thinking) and event
    types added later carry no text.
    """
    data = event.json
    kind = data.get("type") if isinstance(data, Mapping) else None
    if not isinstance(kind, str):
        kind = event.event
    if kind == "error":
        return StreamFailure(data=data if data is not None else event.data)
    handler = _EVENTS.get(kind)
    if handler is None or not isinstance(data, Mapping):
        return None
    return handler(data)


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

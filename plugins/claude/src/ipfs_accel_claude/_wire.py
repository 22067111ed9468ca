"""The Messages API's answers as msgspec Structs: what the core decodes bodies and events into.

Only what the plugin reads is declared; every other field is skipped by the decoder, and a
declared field of the wrong type is a ``ResponseError`` naming it (``$.content[0].text``).

Content blocks and block deltas are one Struct each with ``type: str`` rather than a tagged
union: a union refuses a tag it does not know, and Anthropic adds block types (thinking,
server tools, citations...) more often than clients are released. The fields declared
beside ``type`` (``text``; ``id``, ``name``, ``input``; ``thinking``, ``signature``,
``data``; ``partial_json``) are read only for the types that carry them and have the same
type in every block the API documents (``id``, ``name`` and ``input`` are those of
``tool_use``, ``server_tool_use`` and ``mcp_tool_use`` alike). Stream events are declared
per SSE event name (the API names each event after its ``type``); events not named in
:data:`EVENT_TYPES` (``ping``, ``error`` and any added later) are decoded generically, so an
``error`` event of any shape still reaches ``classify_error``.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "EVENT_TYPES",
    "Block",
    "BlockDelta",
    "BlockStart",
    "BlockStop",
    "Delta",
    "Message",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "Started",
    "StopDelta",
    "Usage",
    "typed_event",
]


class Usage(msgspec.Struct):
    """``Usage`` / ``MessageDeltaUsage``: ``input_tokens`` is ``null`` in a ``message_delta``
    that does not repeat it, the cache counts are ``null`` when no cache was involved."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Block(msgspec.Struct):
    """A content block: ``text`` of ``text`` blocks; ``id``, ``name`` and ``input`` of
    ``tool_use`` blocks; ``thinking`` and ``signature`` of ``thinking`` blocks, ``data`` of
    ``redacted_thinking`` ones."""

    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None
    thinking: str = ""
    signature: str = ""
    data: str = ""


class Message(msgspec.Struct):
    """A ``Message`` body (the answer of ``POST /v1/messages``)."""

    content: list[Block]
    model: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None


class Started(msgspec.Struct):
    """The message a ``message_start`` event opens: its model and usage are read."""

    model: str | None = None
    usage: Usage | None = None


class MessageStart(msgspec.Struct):
    """``message_start``: the input tokens (and cache tokens) of the call."""

    message: Started


class BlockStart(msgspec.Struct):
    """``content_block_start``: a text block may start with text already, a ``tool_use``
    block names its ID and function (its input follows in ``input_json_delta`` pieces)."""

    content_block: Block
    index: int


class Delta(msgspec.Struct):
    """A block delta: ``text`` of ``text_delta``, ``partial_json`` of ``input_json_delta``,
    ``thinking`` of ``thinking_delta``, ``signature`` of ``signature_delta``."""

    type: str
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str = ""


class BlockDelta(msgspec.Struct):
    """``content_block_delta``: ``index`` is the block's position in the message."""

    delta: Delta
    index: int


class BlockStop(msgspec.Struct):
    """``content_block_stop``: the block at ``index`` is complete."""

    index: int


class StopDelta(msgspec.Struct):
    """The ``delta`` of a ``message_delta``."""

    stop_reason: str | None = None


class MessageDelta(msgspec.Struct):
    """``message_delta``: the stop reason and the output tokens so far."""

    delta: StopDelta
    usage: Usage | None = None


class MessageStop(msgspec.Struct):
    """``message_stop``: the stream's last event."""


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "message_start": MessageStart,
    "content_block_start": BlockStart,
    "content_block_delta": BlockDelta,
    "content_block_stop": BlockStop,
    "message_delta": MessageDelta,
    "message_stop": MessageStop,
}
"""SSE event name -> the Struct its data decodes into (the exchange's ``event_type``)."""


# a generic body's ``type`` -> its Struct: the events, and the whole message
_BY_TYPE: dict[str, type[msgspec.Struct]] = {**EVENT_TYPES, "message": Message}


def typed_event(data: Any) -> Any:
    """Data as its Struct when it arrived generically decoded.

    The core decodes by SSE event name; an event without one (a proxy that drops the
    ``event:`` lines) arrives generically decoded, and its ``type`` picks the Struct here
    (so does a whole ``Message`` handed to ``parse_usage`` by a caller that declared no
    type). Anything else is returned as it is. Raises ``msgspec.ValidationError`` when it
    does not fit, as the core's decoder would.
    """
    if isinstance(data, dict):
        kind = data.get("type")
        type_ = _BY_TYPE.get(kind) if isinstance(kind, str) else None
        if type_ is not None:
            return msgspec.convert(data, type_)
    return data

"""The Brook API's answers as msgspec Structs: the fields this plugin reads, nothing more.

The core decodes each 2xx body (and each stream event) straight into these, once. Fields
they do not declare are skipped, so a new field from the server is never an error; a
declared field of the wrong type is a ``ResponseError`` naming the field (``$.meter.read``)
before the plugin sees the value. Error bodies are not declared here: they reach
``classify_error`` decoded generically, since a proxy may answer in any shape at all.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "EVENTS",
    "CallInput",
    "CallStart",
    "Called",
    "ChatReply",
    "EmbedReply",
    "End",
    "Meter",
    "Row",
    "Said",
    "Start",
    "Text",
]


class Meter(msgspec.Struct):
    """Token counts: ``read`` from the prompt, ``written`` into the reply."""

    read: int = 0
    written: int = 0


class Called(msgspec.Struct):
    """One tool call in a chat reply: Brook's ID for it, the tool's name, its input (an
    object). ``id`` is optional here so that a proxy that drops it still works: the core
    then makes a stable one."""

    tool: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str | None = None


class Said(msgspec.Struct):
    """The assistant's message in a chat reply: its text (``""`` when it only calls tools)
    and the tool calls it makes, if any."""

    text: str
    calls: list[Called] | None = None


class ChatReply(msgspec.Struct):
    """``POST /v2/chat`` (unary): the reply, why it ended, the model, the server's ID."""

    message: Said
    end: str | None = None
    model: str | None = None
    id: str | None = None
    meter: Meter | None = None


class Row(msgspec.Struct):
    """One embedding, with the position of its input (rows may come in any order)."""

    index: int
    values: list[float]


class EmbedReply(msgspec.Struct):
    """``POST /v2/embed``: one row per input."""

    embeddings: list[Row]
    model: str | None = None
    meter: Meter | None = None


# Stream events, one type per SSE event name. ``error`` (and any event a later API version
# adds) is not named, so it arrives generically decoded: never a decoding error.


class Start(msgspec.Struct):
    """``event: start``: the server's ID for the reply, and the prompt's tokens."""

    id: str | None = None
    meter: Meter | None = None


class Text(msgspec.Struct):
    """``event: text``: the next piece of the reply."""

    text: str


class CallStart(msgspec.Struct):
    """``event: call``: a tool call begins: its position in the reply, ID and tool name.
    Its input follows in ``call_input`` events with the same ``index``."""

    index: int
    tool: str
    id: str | None = None


class CallInput(msgspec.Struct):
    """``event: call_input``: the next piece of a tool call's input, as JSON text (the
    pieces joined are one JSON object; a piece may end anywhere, mid-string included)."""

    index: int
    json: str


class End(msgspec.Struct):
    """``event: end``: the last event; why the reply ended, and the reply's tokens."""

    end: str | None = None
    meter: Meter | None = None


EVENTS = {"start": Start, "text": Text, "call": CallStart, "call_input": CallInput, "end": End}
"""The exchange's ``event_type``: SSE event name to the type its data decodes into."""

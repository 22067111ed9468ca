"""The Brook API's answers as msgspec Structs: the fields this plugin reads, nothing more.

The core decodes each 2xx body (and each stream event) straight into these, once. Fields
they do not declare are skipped, so a new field from the server is never an error; a
declared field of the wrong type is a ``ResponseError`` naming the field (``$.meter.read``)
before the plugin sees the value. Error bodies are not declared here: they reach
``classify_error`` decoded generically, since a proxy may answer in any shape at all.
"""

from __future__ import annotations

import msgspec

__all__ = ["EVENTS", "ChatReply", "EmbedReply", "End", "Meter", "Row", "Said", "Start", "Text"]


class Meter(msgspec.Struct):
    """Token counts: ``read`` from the prompt, ``written`` into the reply."""

    read: int = 0
    written: int = 0


class Said(msgspec.Struct):
    """The assistant's message in a chat reply."""

    text: str


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


class End(msgspec.Struct):
    """``event: end``: the last event; why the reply ended, and the reply's tokens."""

    end: str | None = None
    meter: Meter | None = None


EVENTS = {"start": Start, "text": Text, "end": End}
"""The exchange's ``event_type``: SSE event name to the type its data decodes into."""

"""What Ollama sends back, as the msgspec Structs the core decodes bodies and lines into.

Shapes from docs/openapi.yaml (``ChatResponse``, ``GenerateResponse``, ``EmbedResponse``,
``ListResponse``, ``ChatStreamEvent``, ``GenerateStreamEvent``). The spec makes every field
optional, so each one the plugin reads has a default; the fields it does not read are not
declared and the decoder skips them. A field of the wrong type (a ``done_reason`` that is a
number, a negative ``eval_count``) is a ``ResponseError`` naming the field, raised by the
core before a parser runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = [
    "ChatAnswer",
    "ChatLine",
    "EmbedAnswer",
    "GenerateAnswer",
    "GenerateLine",
    "Metered",
    "Tags",
    "WireToolCall",
]

Count = Annotated[int, msgspec.Meta(ge=0)]
"""A token count: an int, never negative (the stats add them up)."""


class Answer(msgspec.Struct, kw_only=True):
    """Base of every incoming shape: unknown fields are skipped (msgspec's default)."""


class Metered(Answer):
    """The token counts and durations (ns) a final answer or a stream's last line carries."""

    prompt_eval_count: Count | None = None
    eval_count: Count | None = None
    total_duration: float | None = None
    load_duration: float | None = None
    prompt_eval_duration: float | None = None
    eval_duration: float | None = None


class WireFunction(Answer, kw_only=True):
    """``function`` of a tool call (openapi.yaml ``ToolCall``): ``arguments`` is a JSON
    object; text is read too (parsed by ``ToolCall.of``), as a proxy may send it."""

    name: str
    arguments: dict[str, Any] | str | None = None


class WireToolCall(Answer, kw_only=True):
    """One of ``message.tool_calls``. The spec's calls have no ID (the core then makes one);
    a newer server's ``id`` is kept where it sends one."""

    function: WireFunction
    id: str | None = None


class Delta(Answer):
    """The ``message`` of a streamed ``/api/chat`` line: its piece of text, or the tool
    calls, which Ollama streams whole in a line of their own."""

    content: str = ""
    tool_calls: list[WireToolCall] | None = None


class Message(Delta):
    """The ``message`` of a non-streamed ``/api/chat`` answer, with the model's
    ``thinking`` when ``think`` was asked for."""

    thinking: str | None = None


class ChatAnswer(Metered):
    """A non-streamed ``/api/chat`` answer."""

    model: str | None = None
    message: Message | None = None
    done_reason: str | None = None


class GenerateAnswer(Metered):
    """A non-streamed ``/api/generate`` answer."""

    model: str | None = None
    response: str = ""
    thinking: str | None = None
    done_reason: str | None = None


class EmbedAnswer(Metered, kw_only=True):
    """An ``/api/embed`` answer: ``embeddings`` holds one vector per input, in order."""

    embeddings: list[list[float]]
    model: str | None = None


class Tags(Answer):
    """``GET /api/tags``: the local models, each kept as the object the server sent."""

    models: list[dict[str, Any]] = []


class Line(Metered):
    """What every NDJSON line may carry: the end of the stream, or an error.

    ``error`` is :data:`msgspec.UNSET` unless the line has one: once a stream has started
    the status stays 200, so Ollama reports a failure as an ``{"error": ...}`` line.
    """

    done: bool = False
    done_reason: str | None = None
    error: Any = msgspec.UNSET


class ChatLine(Line):
    """One line of a streamed ``/api/chat``."""

    message: Delta | None = None


class GenerateLine(Line):
    """One line of a streamed ``/api/generate``."""

    response: str = ""

"""Tool calls, the same on every backend: :class:`ToolCall` in results, :class:`ToolCallDelta`
for the fragments a stream sends, and the assembly of those fragments into calls.

The vocabulary is OpenAI's, since every user already knows it: a call has an ``id``, a
function ``name`` and ``arguments`` (a JSON object; OpenAI sends it as text, others as an
object). A plugin builds ``ToolCall`` with :meth:`ToolCall.of` from whatever its API sends;
where the API gives no ID (Gemini, Ollama) the core makes a stable one from the request ID,
the call's position and its name, so the tool's answer can name the call it answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["ToolCall", "ToolCallDelta", "ToolCallParts", "fill_ids", "tool_call_id"]

_encoder = msgspec.json.Encoder()


class ToolCall(msgspec.Struct, kw_only=True):
    """One function call the model asked for.

    - ``id``: the API's ID for the call (made by the core where the API gives none); the
      tool's answer names it as ``tool_call_id``.
    - ``name``: the function's name.
    - ``arguments``: the arguments as a JSON object, parsed; ``None`` when what the model
      wrote is not a JSON object (``arguments_json`` then holds it as written).
    - ``arguments_json``: the arguments as JSON text, as the API sent them where it sends
      text (OpenAI), else encoded from the object.
    - ``extra_content``: what the backend needs back with the call that OpenAI's form has
      no field for, by vendor (``{"google": {"thought_signature": ...}}``); it travels in
      :meth:`to_message` and the plugin restores it when the call is sent back.
    - ``raw``: the call as the API sent it (for streams, ``None``: it came in pieces).
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    arguments_json: str
    type: str = "function"
    extra_content: dict[str, Any] | None = None
    raw: Any = None

    @classmethod
    def of(
        cls, *, id: str | None, name: str, arguments: Any,
        extra_content: dict[str, Any] | None = None, raw: Any = None,
    ) -> ToolCall:
        """A call from what an API sent: ``arguments`` as JSON text (parsed here; text that
        is not a JSON object gives ``arguments=None``), or as an object (encoded here for
        ``arguments_json``). An empty ``id`` is filled by the core."""
        if isinstance(arguments, str):
            text = arguments if arguments.strip() else "{}"
            parsed = _parse_object(text)
        elif arguments is None:
            text, parsed = "{}", {}
        else:
            text = _encoder.encode(arguments).decode()
            parsed = dict(arguments) if isinstance(arguments, Mapping) else None
        return cls(id=id or "", name=name, arguments=parsed, arguments_json=text,
                   extra_content=extra_content or None, raw=raw)

    def to_message(self) -> dict[str, Any]:
        """The call in OpenAI's form, as an assistant message's ``tool_calls`` holds it."""
        out: dict[str, Any] = {
            "id": self.id, "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json},
        }
        if self.extra_content:
            out["extra_content"] = self.extra_content
        return out


class ToolCallDelta(msgspec.Struct, kw_only=True):
    """A fragment of a tool call in a stream, as the plugin read it from one event.

    ``index`` says which call it belongs to (OpenAI's ``tool_calls[].index``, Anthropic's
    content block index); ``id`` and ``name`` come once (a name sent in pieces is joined);
    ``arguments`` is the next piece of the JSON text. The core joins the fragments and puts
    the whole calls on the chunk that ends the turn (the one with a ``finish_reason``).
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    extra_content: dict[str, Any] | None = None


def _parse_object(text: str) -> dict[str, Any] | None:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def tool_call_id(request_id: str, index: int, name: str) -> str:
    """A stable ID for a call the API sent without one: the same request, position and name
    give the same ID, so a result and a stream of the same answer agree."""
    digest = hashlib.sha256(f"{request_id}\0{index}\0{name}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def fill_ids(calls: list[ToolCall] | None, request_id: str, start: int = 0) -> None:
    """Give every call without an ID a stable one (``start``: the position of the first)."""
    for i, call in enumerate(calls or (), start):
        if not call.id:
            call.id = tool_call_id(request_id, i, call.name)


class _Part:
    __slots__ = ("arguments", "extra", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.extra: dict[str, Any] | None = None


class ToolCallParts:
    """The fragments of one stream's tool calls, by index, until the turn ends."""

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: dict[int, _Part] = {}
        self.count = 0  # calls already handed out, so made IDs stay distinct

    def add(self, deltas: list[ToolCallDelta]) -> None:
        for delta in deltas:
            part = self.parts.get(delta.index)
            if part is None:
                part = self.parts[delta.index] = _Part()
            if delta.id and not part.id:
                part.id = delta.id
            if delta.name:
                part.name += delta.name
            if delta.arguments:
                part.arguments.append(delta.arguments)
            if delta.extra_content:
                part.extra = {**(part.extra or {}), **delta.extra_content}

    def take(self, request_id: str) -> list[ToolCall] | None:
        """The calls whose fragments came so far, whole (in index order), and forget them."""
        if not self.parts:
            return None
        calls = [
            ToolCall.of(id=part.id, name=part.name, arguments="".join(part.arguments),
                        extra_content=part.extra)
            for _, part in sorted(self.parts.items())
        ]
        self.parts.clear()
        fill_ids(calls, request_id, self.count)
        self.count += len(calls)
        return calls

"""OpenAI's vocabulary of tools, tool turns, images and structured output, in Ollama's
native ``/api/chat`` and ``/api/generate`` form (openapi.yaml ``ChatRequest``,
``ChatMessage``, ``ToolCall``, ``ToolDefinition``; api.md "Chat request (With history, with
tools)").

- ``tools``: OpenAI-form function tools are sent as Ollama takes them,
  ``{"type": "function", "function": {"name", "description", "parameters"}}`` (``strict``,
  which Ollama lacks, is left out; a tool without ``parameters`` gets the empty object
  schema the spec requires). Tools in any other form go as they are.
- ``tool_choice``: Ollama's native API has none. ``"auto"`` (what Ollama does anyway) is
  dropped; ``"none"``, ``"required"`` or one function is a ``ConfigurationError`` before
  anything is sent, never silently ignored.
- assistant messages with ``tool_calls``: each becomes ``{"function": {"name", "arguments"}}``
  with the arguments as an OBJECT (OpenAI sends JSON text: read by ``tools.sent_call``,
  which refuses arguments that are no object); the call's ID has no place in Ollama's
  form. ``content: None`` becomes ``""`` (Ollama requires a string).
  The model's thinking kept in ``extra_content`` (``{"ollama": {"thinking": ...}}``, as
  :attr:`ChatResult.message` carries it) goes back as the message's ``thinking``.
- ``{"role": "tool", "tool_call_id", "content"}``: a ``tool`` message with ``tool_name``, the
  function the answered call named (found in the earlier assistant turns by its ID).
- ``image_url`` parts: ``data:`` URLs go into the message's ``images`` (base64, as Ollama
  takes them); an ``https:`` URL is a ``ConfigurationError`` (Ollama fetches nothing).
  Text parts are joined with newlines into ``content``.
- ``response_format``: ``json_schema`` -> ``format: <the schema>``, ``json_object`` ->
  ``format: "json"``, ``text`` -> nothing; with a native ``format=`` as well it is a
  ``ConfigurationError`` (two answers to one question).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import ConfigurationError, tools

__all__ = ["MAPPED", "chat_messages", "chat_tools", "output_format"]

MAPPED = frozenset({"tools", "tool_choice", "response_format"})
"""The call parameters this module maps; every other one goes to the body as given."""

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def chat_tools(params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The ``tools`` of an ``/api/chat`` body (``None``: none); ``tool_choice`` checked."""
    choice = tools.tool_choice(params)
    if choice is not None and choice.mode != "auto":
        what = f"function {choice.name!r}" if choice.mode == "function" else repr(choice.mode)
        hint = (" (leave out tools to keep the model from calling one)"
                if choice.mode == "none" else "")
        raise ConfigurationError(
            f"ollama has no tool_choice: it cannot be made to use {what}; only 'auto', "
            f"what it does anyway, is taken{hint}"
        )
    out: list[dict[str, Any]] = []
    for tool in tools.function_tools(params):
        function: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.parameters if tool.parameters is not None else _EMPTY_SCHEMA
        out.append({"type": "function", "function": function})
    out.extend(tools.native_tools(params))
    return out or None


def output_format(params: Mapping[str, Any]) -> str | dict[str, Any] | None:
    """The ``format`` that ``response_format`` asks for (``None``: none)."""
    fmt = tools.response_format(params)
    if fmt is None or fmt.kind == "text":
        return None
    if "format" in params:
        raise ConfigurationError(
            "ollama: pass either response_format or Ollama's own format, not both"
        )
    if fmt.kind == "json_object":
        return "json"
    assert fmt.schema is not None  # response_format() checked it
    return fmt.schema


def chat_messages(messages: list[Any] | None) -> list[Any]:
    """The ``messages`` of an ``/api/chat`` body, in Ollama's form."""
    names = tools.tool_names(messages)
    return [
        _message(message, i, names) if isinstance(message, Mapping) else message
        for i, message in enumerate(messages or ())
    ]


_DROPPED = ("content", "tool_calls", "tool_call_id", "extra_content")


def _message(message: Mapping[str, Any], i: int, names: Mapping[str, str]) -> dict[str, Any]:
    out = {key: value for key, value in message.items() if key not in _DROPPED}
    text, images = _content(message.get("content"), i)
    out["content"] = text
    if images:
        given = out.get("images")
        out["images"] = [*(given if isinstance(given, list) else ()), *images]
    role = message.get("role")
    calls = message.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise ConfigurationError(f"messages[{i}].tool_calls must be a list")
        out["tool_calls"] = [_call(call, i, j) for j, call in enumerate(calls)]
    if role == "tool" and "tool_name" not in out:
        name = names.get(message.get("tool_call_id") or "")
        if name:
            out["tool_name"] = name
    thinking = _thinking(message.get("extra_content"))
    if thinking and "thinking" not in out:
        out["thinking"] = thinking
    return out


def _thinking(extra: Any) -> str | None:
    ours = extra.get("ollama") if isinstance(extra, Mapping) else None
    text = ours.get("thinking") if isinstance(ours, Mapping) else None
    return text if isinstance(text, str) else None


def _content(content: Any, i: int) -> tuple[Any, list[str]]:
    """The message text and its images (base64) from OpenAI's content (text or parts)."""
    if content is None:
        return "", []
    if not isinstance(content, list):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(_image(part, f"messages[{i}].content[{j}]"))
        else:
            raise ConfigurationError(
                f"messages[{i}].content[{j}]: ollama takes text and image_url parts only"
                + (f", not {kind!r}" if isinstance(kind, str) else "")
            )
    return "\n".join(texts), images


def _image(part: Mapping[str, Any], where: str) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    inline = tools.data_url(url) if isinstance(url, str) else None
    if inline is None:
        scheme = url.split(":", 1)[0] if isinstance(url, str) and ":" in url else "such"
        raise ConfigurationError(
            f"{where}: ollama takes images inline only (base64): pass a data: URL "
            f"(data:image/png;base64,...), not an {scheme}: URL, which it cannot fetch"
        )
    return inline[1]


def _call(call: Any, i: int, j: int) -> dict[str, Any]:
    """One tool call of an assistant message in Ollama's form (its ID has no place there)."""
    sent = tools.sent_call(call, f"messages[{i}].tool_calls[{j}]", api="Ollama")
    return {"function": {"name": sent.name, "arguments": sent.arguments}}

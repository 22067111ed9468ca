"""Tool calls: OpenAI's vocabulary (what every ipfs-accel call speaks) in Brook's form, and
Brook's calls back as typed :class:`~ipfs_accel.ToolCall`\\ s.

Requests (``POST /v2/chat``), read with the core's ``ipfs_accel.tools`` readers, which have
already checked their shape:

- ``tools=[{"type": "function", "function": {"name", "description", "parameters",
  "strict"}}]`` -> ``"tools": [{"name", "about", "input_schema", "strict"}]`` (a field the
  caller left out stays out). A tool already in Brook's form (``{"name", "input_schema"}``,
  no ``"type": "function"``) goes as it is.
- ``tool_choice`` -> ``"tool_mode"``: ``"auto"`` -> ``"auto"``, ``"none"`` -> ``"off"``,
  ``"required"`` -> ``"any"``, one function -> ``{"tool": <name>}``.
- an assistant message with ``tool_calls`` (as ``ChatResult.message`` gives it) -> a turn
  ``{"role": "assistant", "text", "calls": [{"id", "tool", "input"}]}``: the arguments,
  JSON text in OpenAI's form, go as an OBJECT, read by ``tools.sent_call`` (text that is
  no JSON object is a ``ConfigurationError``, as is a call without its ``id``).
- ``{"role": "tool", "tool_call_id", "content"}`` -> ``{"role": "tool", "call_id", "tool",
  "text"}``: Brook wants the tool's name beside the ID, found in the conversation's
  assistant turns by ``tools.tool_names``; a tool answer whose call is not there is a
  ``ConfigurationError``, before anything is sent.

Answers: a reply's ``message.calls`` ``[{"id", "tool", "input"}]`` become ``ToolCall``\\ s
(Brook names every call; should an ID be missing, the core makes a stable one). A stream
sends each call as ``event: call`` ``{"index", "id", "tool"}`` and then its input in pieces,
``event: call_input`` ``{"index", "json"}``: each is one :class:`~ipfs_accel.ToolCallDelta`,
and the core joins them into the call on the chunk that ends the turn (and on
``stream.result``). Brook's ``end`` for such a turn is ``TOOL_CALL``, i.e. ``tool_calls``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import ConfigurationError, ToolCall, ToolCallDelta, tools

from ._wire import Called, CallInput, CallStart

__all__ = ["MAPPED", "call_delta", "chat_tools", "tool_calls", "turn_fields"]

MAPPED = frozenset({"tools", "tool_choice"})
"""The call parameters mapped here; every other one goes to the body under its own name."""

_MODES = {"auto": "auto", "none": "off", "required": "any"}


def chat_tools(params: Mapping[str, Any]) -> dict[str, Any]:
    """The body fields for the call's ``tools`` and ``tool_choice`` (none: ``{}``)."""
    out: dict[str, Any] = {}
    offered: list[dict[str, Any]] = []
    for tool in tools.function_tools(params):
        brook: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            brook["about"] = tool.description
        if tool.parameters is not None:
            brook["input_schema"] = tool.parameters
        if tool.strict is not None:
            brook["strict"] = tool.strict
        offered.append(brook)
    offered.extend(tools.native_tools(params))  # already in Brook's form
    if offered:
        out["tools"] = offered
    choice = tools.tool_choice(params)
    if choice is not None:
        out["tool_mode"] = {"tool": choice.name} if choice.mode == "function" \
            else _MODES[choice.mode]
    return out


def turn_fields(message: Mapping[str, Any], i: int, names: Mapping[str, str]) -> dict[str, Any]:
    """What a message adds to its Brook turn: the ``calls`` of an assistant message, or the
    ``call_id`` and ``tool`` of a tool's answer. ``names``: ``tools.tool_names(messages)``."""
    role = message.get("role")
    if role == "tool":
        call_id = message.get("tool_call_id")  # the core has checked it is there
        name = names.get(call_id) if isinstance(call_id, str) else None
        if not name:
            raise ConfigurationError(
                f"messages[{i}] answers tool call {call_id!r}, which no assistant message in "
                "the conversation made: brook needs the called tool's name with its answer"
            )
        return {"call_id": call_id, "tool": name}
    calls = message.get("tool_calls")
    if role != "assistant" or not calls:
        return {}
    if not isinstance(calls, list):
        raise ConfigurationError(f"messages[{i}].tool_calls must be a list")
    return {"calls": [_called(call, f"messages[{i}].tool_calls[{j}]")
                      for j, call in enumerate(calls)]}


def _called(call: Any, where: str) -> dict[str, Any]:
    """One OpenAI-form call of an assistant message as Brook's ``{"id", "tool", "input"}``."""
    sent = tools.sent_call(call, where, api="brook")  # name and object arguments
    if sent.id is None:
        raise ConfigurationError(f"{where} needs its 'id': brook matches the tool's answer "
                                 "to the call by it")
    return {"id": sent.id, "tool": sent.name, "input": sent.arguments}


def tool_calls(calls: list[Called] | None, body: Any) -> list[ToolCall] | None:
    """A reply's calls as ``ToolCall``\\ s (``None``: it made none), each with its part of
    the reply's ``body`` as ``raw``."""
    if not calls:
        return None
    sent = body["message"]["calls"]  # the typed decode has checked this path
    return [ToolCall.of(id=call.id, name=call.tool, arguments=call.input, raw=sent[i])
            for i, call in enumerate(calls)]


def call_delta(data: CallStart | CallInput) -> ToolCallDelta:
    """A ``call`` or ``call_input`` event as the fragment the core joins."""
    if isinstance(data, CallStart):
        return ToolCallDelta(index=data.index, id=data.id, name=data.tool)
    return ToolCallDelta(index=data.index, arguments=data.json)

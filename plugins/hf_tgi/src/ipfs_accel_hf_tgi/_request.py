"""Tools, structured output and images in TGI's requests.

A call speaks OpenAI's vocabulary (:mod:`ipfs_accel.tools`); TGI's Messages API
(``POST /v1/chat/completions``, ``ChatRequest`` in TGI's OpenAPI description) takes most of it
as it is, and differs where this module maps it:

- ``tools``: TGI's ``Tool`` is ``{"type": "function", "function": {"name", "description",
  "arguments"}}``: the JSON Schema OpenAI calls ``parameters`` is ``arguments`` there (TGI
  reads ``parameters`` as an alias since 2.0.1, but its description requires ``arguments``), and
  it is required: a function without parameters gets ``{"type": "object", "properties": {}}``.
  ``strict`` has no field (TGI's grammar always holds the model to the schema). Tools in
  another API's own form are refused (TGI takes functions only).
- ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` and ``{"type": "function",
  "function": {"name"}}`` are TGI's own values too; sent as they are.
- ``response_format``: TGI's is a ``GrammarType``, ``{"type": "json", "value": <JSON Schema>}``
  (or ``regex``), not OpenAI's shape: ``json_schema`` sends its schema as
  ``{"type": "json", "value": schema}``, ``json_object`` as ``{"type": "json", "value":
  {"type": "object"}}``, ``text`` sends nothing. TGI's own ``GrammarType`` (a regex, say) goes
  as ``grammar=``, on chat as on generate. TGI refuses a grammar together with tools ("Grammar
  and tools are mutually exclusive"): such a call is a ``ConfigurationError`` before sending.
- messages: an assistant turn with ``tool_calls`` is sent without ``content``. TGI reads a
  message as either content or tool calls (content first), so a turn carrying both would
  lose its calls; its text, if any, is dropped. ``tool`` messages (``tool_call_id``,
  ``content``) and ``image_url`` parts (``https:`` or ``data:`` URLs) are TGI's shapes already.
- ``/generate`` takes structured output as ``parameters.grammar`` (the same mapping) and no
  tools (the backend declares none for generate, so the core refuses them before sending).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import Call, ConfigurationError, openai_compat
from ipfs_accel.tools import function_tools, native_tools, response_format, tool_choice

__all__ = ["chat_body", "grammar"]

_NO_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


def grammar(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """TGI's ``GrammarType`` for the call: from ``response_format`` (OpenAI's shape, mapped)
    or ``grammar`` (TGI's own, as given); ``None`` when the call asks for neither."""
    fmt = response_format(params)
    own = params.get("grammar")
    wanted = fmt is not None and fmt.kind != "text"
    if wanted and own is not None:
        raise ConfigurationError(
            "hf_tgi: pass response_format (OpenAI's shape) or grammar (TGI's), not both"
        )
    if fmt is None or fmt.kind == "text":
        return dict(own) if isinstance(own, Mapping) else own
    schema = fmt.schema if fmt.kind == "json_schema" else {"type": "object"}
    return {"type": "json", "value": schema}


def _tools(params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The call's tools as TGI's ``Tool`` objects; ``None`` when it offers none (an empty
    list too: TGI would still constrain the answer to its no-tool grammar)."""
    if not params.get("tools"):
        return None
    other = native_tools(params)
    if other:
        raise ConfigurationError(
            "hf_tgi takes function tools only ({'type': 'function', 'function': {...}}), "
            f"not {other[0].get('type') or sorted(other[0])!r}"
        )
    out = []
    for tool, fn in zip(params["tools"], function_tools(params), strict=True):
        schema: Any = fn.parameters
        if schema is None:  # TGI's own spelling, or none at all
            given = tool["function"].get("arguments")
            schema = dict(given) if isinstance(given, Mapping) else dict(_NO_PARAMETERS)
        function: dict[str, Any] = {"name": fn.name, "arguments": schema}
        if fn.description is not None:
            function["description"] = fn.description
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(params: Mapping[str, Any]) -> str | dict[str, Any] | None:
    choice = tool_choice(params)
    if choice is None:
        return None
    if choice.mode == "function":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assistant turns with tool calls without ``content``, each call with its ``type``."""
    if not any(m.get("tool_calls") for m in messages if isinstance(m, Mapping)):
        return messages
    out = []
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, Mapping) else None
        if not calls or not isinstance(calls, list):
            out.append(message)
            continue
        sent = {k: v for k, v in message.items() if k != "content"}
        sent["tool_calls"] = [
            {"type": "function", **c} if isinstance(c, Mapping) and "type" not in c else c
            for c in calls
        ]
        out.append(sent)
    return out


def chat_body(call: Call, *, stream: bool = False) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body: OpenAI's, with TGI's tools, grammar and turns."""
    body = openai_compat.chat_body(call, stream=stream, require_model=False)
    params = call.params
    tools = _tools(params)
    fmt = grammar(params)
    if tools is not None and fmt is not None:
        raise ConfigurationError(
            "hf_tgi: TGI takes either tools or a response_format/grammar in one chat, "
            "not both"
        )
    for name in ("grammar", "response_format", "tools", "tool_choice"):
        body.pop(name, None)
    if fmt is not None:
        body["response_format"] = fmt
    if tools is not None:
        body["tools"] = tools
    choice = _tool_choice(params)
    if choice is not None:
        body["tool_choice"] = choice
    body["messages"] = _messages(body["messages"])
    return body

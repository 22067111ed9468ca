"""A call's tools, tool choice and response format in the Messages API's form.

- ``tools``: an OpenAI function tool ``{"type": "function", "function": {"name",
  "description", "parameters", "strict"}}`` becomes Anthropic's ``{"name", "description",
  "input_schema", "strict"}`` (``input_schema`` an empty object schema when the function
  takes no parameters); a tool already in Anthropic's form (``{"name", "input_schema"}``, a
  server tool such as ``{"type": "web_search_20250305", ...}``) is sent as it is. The order
  of the list is kept (a ``cache_control`` on the last tool caches them all).
- ``tool_choice``: ``"auto"`` -> ``{"type": "auto"}``, ``"none"`` -> ``{"type": "none"}``,
  ``"required"`` -> ``{"type": "any"}``, one function -> ``{"type": "tool", "name"}``; one
  already in Anthropic's form (``{"type": "any"}``...) is sent as it is;
  ``parallel_tool_calls=False`` is ``disable_parallel_tool_use: true`` on it (on
  ``{"type": "auto"}`` when no choice is given).
- ``response_format``: ``json_schema`` -> ``output_config: {"format": {"type":
  "json_schema", "schema"}}`` (merged into an ``output_config`` the call gives, such as
  ``effort``; the schema's ``name`` and ``strict`` have no place there: Anthropic's output is
  always held to the schema). ``json_object`` has no equivalent in the API (its only
  output format is a JSON schema) and is refused with ``ConfigurationError`` before
  sending; ``text`` is the default and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import ConfigurationError
from ipfs_accel.tools import function_tools, native_tool_choice, response_format, tool_choice

__all__ = ["apply_tools"]

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _is_function(tool: Mapping[str, Any]) -> bool:
    # the test ipfs_accel.tools reads function tools by (native_tools are the rest)
    return tool.get("type") == "function" or "function" in tool


def _tools(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    functions = iter(function_tools(params))
    out: list[dict[str, Any]] = []
    for tool in params.get("tools") or ():
        if not _is_function(tool):
            out.append(dict(tool))
            continue
        fn = next(functions)
        mapped: dict[str, Any] = {"name": fn.name}
        if fn.description is not None:
            mapped["description"] = fn.description
        mapped["input_schema"] = fn.parameters if fn.parameters is not None else _EMPTY_SCHEMA
        if fn.strict is not None:
            mapped["strict"] = fn.strict
        out.append(mapped)
    return out


def _tool_choice(params: Mapping[str, Any], parallel: Any) -> dict[str, Any] | None:
    native = native_tool_choice(params)  # already Anthropic's ({"type": "any"}...)
    if native is not None:
        if parallel is False and native.get("type") != "none":
            native.setdefault("disable_parallel_tool_use", True)
        return native
    choice = tool_choice(params)
    if choice is None:
        offered = parallel is False and bool(params.get("tools"))
        out: dict[str, Any] | None = {"type": "auto"} if offered else None
    elif choice.mode == "function":
        out = {"type": "tool", "name": choice.name}
    else:
        out = {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True  # ToolChoiceNone takes no such field
    return out


def _output_config(params: Mapping[str, Any], given: Any) -> dict[str, Any] | None:
    fmt = response_format(params)
    if fmt is None or fmt.kind == "text":
        return None
    if fmt.kind == "json_object":
        raise ConfigurationError(
            "claude does not take response_format json_object: the Messages API's only "
            "output format is a JSON schema (use {'type': 'json_schema', 'json_schema': "
            "{'name', 'schema'}})")
    config = dict(given) if isinstance(given, Mapping) else {}
    if config.get("format") is not None:
        raise ConfigurationError("give either response_format or output_config.format, "
                                 "not both")
    config["format"] = {"type": "json_schema", "schema": fmt.schema}
    return config


def apply_tools(params: dict[str, Any], body: dict[str, Any]) -> None:
    """Move the call's ``tools``, ``tool_choice``, ``parallel_tool_calls`` and
    ``response_format`` out of ``params`` into ``body``, in the API's form."""
    parallel = params.pop("parallel_tool_calls", None)
    if params.get("tools"):
        body["tools"] = _tools(params)
    choice = _tool_choice(params, parallel)
    if choice is not None:
        body["tool_choice"] = choice
    config = _output_config(params, params.get("output_config"))
    if config is not None:
        body["output_config"] = config
        params.pop("output_config", None)
    for name in ("tools", "tool_choice", "response_format"):
        params.pop(name, None)

"""OpenAI-form ``tools``, ``tool_choice`` and ``response_format`` in Gemini's request.

- ``tools``: the function tools become one ``{"functionDeclarations": [...]}`` tool, each
  ``{name, description, parametersJsonSchema}`` (``parametersJsonSchema`` takes a whole
  JSON Schema, where ``parameters`` takes only the OpenAPI subset of Gemini's ``Schema``;
  OpenAI's ``strict`` has no counterpart and is not sent). Tools in Gemini's own form
  (``{"googleSearch": {}}``, ``{"codeExecution": {}}``, a ``functionDeclarations`` tool
  of one's own...) follow as they are.
- ``tool_choice``: ``toolConfig.functionCallingConfig.mode`` ``AUTO`` (``"auto"``),
  ``NONE`` (``"none"``), ``ANY`` (``"required"``), or ``ANY`` with
  ``allowedFunctionNames: [name]`` for one function; other ``toolConfig`` fields the call
  gives are kept.
- ``response_format``: ``json_schema`` sets ``generationConfig.responseMimeType`` to
  ``application/json`` and ``responseJsonSchema`` to the schema (a whole JSON Schema, where
  ``responseSchema`` takes only the OpenAPI subset; the format's ``name`` and ``strict``
  have no counterpart); ``json_object`` sets ``responseMimeType`` only; ``text`` sets
  nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel.tools import function_tools, native_tools, response_format, tool_choice

__all__ = ["apply_openai", "apply_response_format", "tool_config", "tools"]

_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}


def tools(params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The request's ``tools``: the function declarations, then the native tools."""
    declarations: list[dict[str, Any]] = []
    for tool in function_tools(params):
        declaration: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            declaration["description"] = tool.description
        if tool.parameters is not None:
            declaration["parametersJsonSchema"] = tool.parameters
        declarations.append(declaration)
    out = [{"functionDeclarations": declarations}] if declarations else []
    out += native_tools(params)
    return out or None


def tool_config(params: Mapping[str, Any], given: Any) -> dict[str, Any] | None:
    """The request's ``toolConfig``: ``given`` (the call's own ``toolConfig``, if any) with
    the ``functionCallingConfig`` that ``tool_choice`` says."""
    choice = tool_choice(params)
    if choice is None:
        return given if isinstance(given, dict) else None
    calling: dict[str, Any] = {"mode": _MODES[choice.mode]}
    if choice.name is not None:
        calling["allowedFunctionNames"] = [choice.name]
    config = dict(given) if isinstance(given, Mapping) else {}
    config["functionCallingConfig"] = calling
    return config


def apply_response_format(params: Mapping[str, Any], config: dict[str, Any]) -> None:
    """Put what ``response_format`` asks for into ``generationConfig`` (``config``)."""
    fmt = response_format(params)
    if fmt is None or fmt.kind == "text":
        return
    config["responseMimeType"] = "application/json"
    if fmt.kind == "json_schema":
        config["responseJsonSchema"] = fmt.schema


def apply_openai(params: Mapping[str, Any], body: dict[str, Any], config: dict[str, Any]) -> None:
    """Put the call's ``tools``, ``tool_choice`` and ``response_format`` into the request
    ``body`` and its ``generationConfig`` (``config``)."""
    declared = tools(params)
    if declared is not None:
        body["tools"] = declared
    calling = tool_config(params, body.get("toolConfig"))
    if calling is not None:
        body["toolConfig"] = calling
    apply_response_format(params, config)

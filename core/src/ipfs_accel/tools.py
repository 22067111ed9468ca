"""Tools, structured output and images in a call, read once for every plugin.

A call speaks OpenAI's vocabulary whatever the backend:

- ``tools=[{"type": "function", "function": {"name", "description", "parameters"}}]``
  and ``tool_choice`` (``"auto"``, ``"none"``, ``"required"``, or
  ``{"type": "function", "function": {"name": ...}}``);
- assistant messages with ``tool_calls`` (as :attr:`ChatResult.message` gives them) and
  ``{"role": "tool", "tool_call_id", "content"}`` messages with the tools' answers;
- ``response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
  or ``{"type": "json_object"}``;
- ``image_url`` content parts (``{"type": "image_url", "image_url": {"url": ...}}``, an
  ``https:`` or ``data:`` URL).

The core checks their shape before a call is queued (:func:`check_params`, a
``ConfigurationError`` naming what is wrong; once per call, however many members of a pool
its attempts go to) and, for a plugin that declares ``BackendInfo.features``, that the
operation takes what the call carries (:func:`needed_features`, :func:`check_needs`). A
plugin maps them to its API with the readers here: :func:`function_tools`,
:func:`tool_choice`, :func:`response_format`, :func:`tool_names` and :func:`data_url`, and
:func:`sent_call` for the tool calls of assistant messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from ._errors import ConfigurationError
from ._toolcall import ToolCall, ToolCallDelta, tool_call_id

__all__ = [
    "FEATURES",
    "FunctionTool",
    "ResponseFormat",
    "SentCall",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "check_features",
    "check_needs",
    "check_params",
    "data_url",
    "function_tools",
    "native_tool_choice",
    "native_tools",
    "needed_features",
    "response_format",
    "sent_call",
    "tool_call_id",
    "tool_choice",
    "tool_names",
]

FEATURES = frozenset({"tools", "json_schema", "json_object", "images"})
"""What ``BackendInfo.features`` may name per operation."""


class FunctionTool(msgspec.Struct, kw_only=True, frozen=True):
    """One function the model may call: ``parameters`` is its JSON Schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoice(msgspec.Struct, kw_only=True, frozen=True):
    """``tool_choice``: ``mode`` is ``auto``, ``none``, ``required`` or ``function``
    (then ``name`` is the one function the model must call)."""

    mode: Literal["auto", "none", "required", "function"]
    name: str | None = None


class ResponseFormat(msgspec.Struct, kw_only=True, frozen=True):
    """``response_format``: ``kind`` ``json_schema`` (with ``schema``, ``name`` and
    ``strict``), ``json_object`` (any JSON object) or ``text`` (the default)."""

    kind: Literal["json_schema", "json_object", "text"]
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


def _bad(what: str) -> ConfigurationError:
    return ConfigurationError(what)


def _tools(params: Mapping[str, Any]) -> list[Any]:
    tools = params.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad(f"tools must be a list of function tools, not {type(tools).__name__}")
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise _bad(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}, "
                       f"not {type(tool).__name__}")
    return tools


def _is_function(tool: Mapping[str, Any]) -> bool:
    return tool.get("type") == "function" or "function" in tool


def native_tools(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The call's tools in its API's own form (any tool that is not OpenAI's
    ``{"type": "function", ...}``: Anthropic's ``{"name", "input_schema"}``, a server tool
    such as web search), for the plugin to send as they are."""
    return [dict(t) for t in _tools(params) if not _is_function(t)]


def function_tools(params: Mapping[str, Any]) -> list[FunctionTool]:
    """The call's function tools in OpenAI's form, read and checked (none: an empty list);
    tools in an API's own form are :func:`native_tools`."""
    out: list[FunctionTool] = []
    for i, tool in enumerate(_tools(params)):
        if not _is_function(tool):
            continue
        if tool.get("type", "function") != "function":
            raise _bad(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}")
        fn = tool.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad(f"tools[{i}].function must be an object with a 'name'")
        parameters = fn.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise _bad(f"tools[{i}].function.parameters must be a JSON Schema object")
        description = fn.get("description")
        if description is not None and not isinstance(description, str):
            raise _bad(f"tools[{i}].function.description must be a string")
        strict = fn.get("strict")
        out.append(FunctionTool(
            name=fn["name"], description=description,
            parameters=dict(parameters) if parameters is not None else None,
            strict=strict if isinstance(strict, bool) else None,
        ))
    return out


def native_tool_choice(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The call's ``tool_choice`` when it is in its API's own form (an object whose
    ``type`` is not ``"function"``, such as Anthropic's ``{"type": "any"}``), for the plugin
    to send as it is; ``None`` otherwise."""
    choice = params.get("tool_choice")
    if isinstance(choice, Mapping) and isinstance(choice.get("type"), str) and (
            choice["type"] != "function"):
        return dict(choice)
    return None


def tool_choice(params: Mapping[str, Any]) -> ToolChoice | None:
    """The call's ``tool_choice`` in OpenAI's form, read and checked (``None`` when it has
    none, or has one in its API's own form: :func:`native_tool_choice`)."""
    choice = params.get("tool_choice")
    if choice is None or native_tool_choice(params) is not None:
        return None
    if choice in ("auto", "none", "required"):
        return ToolChoice(mode=choice)
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        fn = choice.get("function")
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str) and fn["name"]:
            return ToolChoice(mode="function", name=fn["name"])
    raise _bad(
        "tool_choice must be 'auto', 'none', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}"
    )


def response_format(params: Mapping[str, Any]) -> ResponseFormat | None:
    """The call's ``response_format``, read and checked (``None`` when it has none)."""
    fmt = params.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind in ("json_object", "text"):
        return ResponseFormat(kind=kind)
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise _bad("response_format json_schema needs {'json_schema': {'name', 'schema'}}"
                       " with 'schema' a JSON Schema object")
        name = spec.get("name")
        strict = spec.get("strict")
        return ResponseFormat(kind="json_schema", schema=dict(spec["schema"]),
                              name=name if isinstance(name, str) else None,
                              strict=strict if isinstance(strict, bool) else None)
    raise _bad("response_format must be {'type': 'json_schema', 'json_schema': {...}}, "
               "{'type': 'json_object'} or {'type': 'text'}")


class SentCall(msgspec.Struct, kw_only=True, frozen=True):
    """One tool call of an assistant message, read for sending back in an API's own form:
    ``arguments`` always a JSON object, ``extra_content`` the vendor data it carries."""

    id: str | None
    name: str
    arguments: dict[str, Any]
    extra_content: dict[str, Any] | None = None


def sent_call(call: Any, where: str, *, api: str) -> SentCall:
    """An assistant message's tool call (OpenAI's form, as :attr:`ChatResult.message` gives
    it, or a :class:`ToolCall`), for a plugin whose API takes the arguments as an object.

    A call without a function name, or whose arguments (JSON text, or an object) are not a
    JSON object, is a ``ConfigurationError`` naming ``where`` and saying that ``api`` takes
    an object; no arguments at all are ``{}``. An empty ``id`` is ``None``.
    """
    if isinstance(call, ToolCall):
        call = call.to_message()
    fn = call.get("function") if isinstance(call, Mapping) else None
    name = fn.get("name") if isinstance(fn, Mapping) else None
    if not isinstance(name, str) or not name:
        raise _bad(f"{where} must be {{'id', 'type': 'function', 'function': {{'name', "
                   "'arguments'}} (OpenAI's form, as result.message gives it)")
    assert isinstance(call, Mapping) and isinstance(fn, Mapping)
    arguments = fn.get("arguments")
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}
    elif isinstance(arguments, str):
        try:
            arguments = msgspec.json.decode(arguments)
        except msgspec.DecodeError:
            arguments = None
    if not isinstance(arguments, Mapping):
        raise _bad(f"{where}.function.arguments must be a JSON object ({api} takes the "
                   "arguments as an object)")
    call_id = call.get("id")
    extra = call.get("extra_content")
    return SentCall(id=call_id if isinstance(call_id, str) and call_id else None, name=name,
                    arguments=dict(arguments),
                    extra_content=dict(extra) if isinstance(extra, Mapping) else None)


def tool_names(messages: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """The function name of every tool call in the assistant messages, by call ID: an API
    that answers a call by name (Gemini's ``functionResponse``) finds it here for a
    ``tool`` message, which names only the call's ID."""
    names: dict[str, str] = {}
    for message in messages or ():
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, ToolCall):
                call = call.to_message()  # noqa: PLW2901 - the same call, in OpenAI's form
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(call.get("id"), str):
                names[call["id"]] = str(fn.get("name") or "")
    return names


_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)",
                       re.DOTALL)


def data_url(url: str) -> tuple[str, str] | None:
    """``(media type, base64 data)`` of a ``data:...;base64,...`` URL; ``None`` for any other
    URL (an ``https:`` one the API fetches itself). A ``data:`` URL that is not base64 is a
    ``ConfigurationError``."""
    if not url.startswith("data:"):
        return None
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise _bad("an image data: URL must be base64: data:<media type>;base64,<data>")
    return match["type"] or "application/octet-stream", match["data"]


def _image_url(part: Mapping[str, Any], where: str) -> None:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise _bad(f"{where}.image_url must be {{'url': 'https://...' or 'data:...'}}")
    data_url(url)


def _message_needs(messages: list[Any] | None, needs: set[str]) -> None:
    for i, message in enumerate(messages or ()):
        if type(message) is not dict and not isinstance(message, Mapping):
            continue
        if message.get("role") == "tool" or message.get("tool_calls"):
            needs.add("tools")
            if message.get("role") == "tool" and not isinstance(message.get("tool_call_id"), str):
                raise _bad(f"messages[{i}] (role 'tool') needs the 'tool_call_id' it answers")
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, Mapping) and part.get("type") == "image_url":
                    _image_url(part, f"messages[{i}].content[{j}]")
                    needs.add("images")


def needed_features(params: Mapping[str, Any], messages: list[Any] | None) -> set[str]:
    """What the call carries beyond plain text (:data:`FEATURES`), its shape checked."""
    needs: set[str] = set()
    if params.get("tools") is not None or params.get("tool_choice") is not None:
        function_tools(params)
        tool_choice(params)
        needs.add("tools")
    fmt = response_format(params)
    if fmt is not None and fmt.kind != "text":
        needs.add(fmt.kind)
    _message_needs(messages, needs)
    return needs


def check_params(params: Mapping[str, Any], messages: list[Any] | None) -> set[str]:
    """Check the shape of the call's tools, tool choice, response format, tool messages and
    image parts; return what it needs (:func:`needed_features`)."""
    return needed_features(params, messages)


def check_features(
    backend: str, operation: str, features: Mapping[str, frozenset[str]] | None,
    params: Mapping[str, Any], messages: list[Any] | None,
) -> None:
    """Refuse, before anything is sent, a call whose tools, response format, tool messages
    or images are malformed (:func:`check_params`), or that needs what its operation lacks
    (:func:`check_needs`)."""
    if _SHAPED.isdisjoint(params) and _plain(messages):
        return  # the common call, plain text turns: nothing to check, nothing it needs
    check_needs(backend, operation, features, check_params(params, messages))


# the parameters whose shape the core checks (needed_features reads them)
_SHAPED = frozenset(("tools", "tool_choice", "response_format"))


def _plain(messages: list[Any] | None) -> bool:
    """Whether every message is a dict of a text turn: no tool turn, no tool calls, no parts
    (what :func:`_message_needs` would find nothing in)."""
    for message in messages or ():
        if (type(message) is not dict or type(message.get("content")) is not str
                or message.get("role") == "tool" or message.get("tool_calls")):
            return False
    return True


def check_needs(
    backend: str, operation: str, features: Mapping[str, frozenset[str]] | None,
    needs: Iterable[str],
) -> None:
    """Refuse, before anything is sent, a call that needs (``needs``, from a call whose shape
    :func:`check_params` has checked) what its operation lacks."""
    wanted = set(needs)
    if not wanted or features is None:
        return
    have = features.get(operation, frozenset())
    missing = sorted(wanted - have)
    if missing:
        where = sorted(op for op, fs in features.items() if set(missing) <= fs)
        hint = f" (it does for: {', '.join(where)})" if where else ""
        raise ConfigurationError(
            f"backend {backend!r} does not take {' or '.join(missing)} "
            f"in {operation!r}{hint}"
        )

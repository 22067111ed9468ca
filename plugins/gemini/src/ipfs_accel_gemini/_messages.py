"""OpenAI-style messages into Gemini ``contents`` and ``systemInstruction`` parts.

- ``system`` messages become ``systemInstruction`` parts; ``user`` turns stay ``user``,
  ``assistant`` turns become ``model``.
- Content is a string or a list of parts: strings and ``{"type": "text"}`` parts become
  ``{"text"}``; ``{"type": "image_url"}`` parts become ``inlineData {mimeType, data}``
  (``data:`` URLs) or ``fileData {fileUri, mimeType}`` (other URLs, the media type guessed
  from the path's extension and left out when it cannot be: the spec makes it optional);
  a dict without ``type`` is already a Gemini ``Part`` and is sent as it is.
- An assistant message's ``tool_calls`` become ``functionCall`` parts after its text:
  ``name``, ``args`` (the arguments' JSON object, read by ``tools.sent_call``) and, from
  the call's ``extra_content["google"]``, the part's ``thoughtSignature`` (the API refuses
  a turn whose signature is missing) and the ``id`` the API gave the call (only an ID the
  API sent is sent back: one the core made would be refused as unknown). The message's own
  ``extra_content["google"]["thought_signature"]`` goes back on its last text part.
- ``tool`` messages become ``functionResponse`` parts of one ``user`` turn (consecutive
  answers share it): ``name`` is the function of the call that ``tool_call_id`` names (from
  the earlier assistant messages), ``response`` the answer if it is a JSON object, else
  ``{"result": <the answer as written>}``, and ``id`` the API's ID of the call, if it gave one.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ipfs_accel import ConfigurationError
from ipfs_accel.tools import data_url, sent_call, tool_names

__all__ = ["contents"]

_ROLES = {"user": "user", "assistant": "model", "model": "model"}


def _google(extra: Any) -> Mapping[str, Any]:
    """The ``"google"`` entry of an ``extra_content``, or an empty mapping."""
    google = extra.get("google") if isinstance(extra, Mapping) else None
    return google if isinstance(google, Mapping) else {}


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """An OpenAI ``image_url`` part as ``inlineData`` or ``fileData``."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{where}.image_url must be {{'url': 'https://...' or "
                                 "'data:...'}}")
    inline = data_url(url)
    if inline is not None:
        media_type, data = inline
        if media_type == "application/octet-stream":
            raise ConfigurationError(
                f"{where}: a data: URL needs its media type (data:image/png;base64,...): "
                "Gemini's inlineData requires a mimeType"
            )
        return {"inlineData": {"mimeType": media_type, "data": data}}
    file_data: dict[str, Any] = {"fileUri": url}
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    if guessed is not None:
        file_data["mimeType"] = guessed
    return {"fileData": file_data}


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    """``parts`` from a message's content: a string, or a list of strings, OpenAI text and
    image parts and Gemini parts (passed through)."""
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for j, item in enumerate(content):
            if isinstance(item, str):
                parts.append({"text": item})
            elif isinstance(item, dict) and item.get("type") == "text" and "text" in item:
                parts.append({"text": item["text"]})
            elif isinstance(item, dict) and item.get("type") == "image_url":
                parts.append(_image(item, f"{where}.content[{j}]"))
            elif isinstance(item, dict) and "type" not in item:
                parts.append(item)  # already a Gemini Part (text, inlineData, functionCall...)
            else:
                raise ConfigurationError(f"{where}: unsupported content part {item!r:.80}")
        return parts
    raise ConfigurationError(f"{where}: content must be a string or a list of parts")


def _function_calls(calls: Any, where: str) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` as ``functionCall`` parts."""
    if not isinstance(calls, list):
        raise ConfigurationError(f"{where}.tool_calls must be a list")
    parts: list[dict[str, Any]] = []
    for k, call in enumerate(calls):
        sent = sent_call(call, f"{where}.tool_calls[{k}]", api="Gemini")
        google = _google(sent.extra_content)
        function_call: dict[str, Any] = {"name": sent.name, "args": sent.arguments}
        if isinstance(google.get("function_call_id"), str):
            function_call["id"] = google["function_call_id"]
        part: dict[str, Any] = {"functionCall": function_call}
        if isinstance(google.get("thought_signature"), str):
            part["thoughtSignature"] = google["thought_signature"]
        parts.append(part)
    return parts


def _model_parts(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """An assistant message's parts: its text (with the turn's signature), then its calls."""
    content = message.get("content")
    calls = message.get("tool_calls")
    parts = [] if calls and content in (None, "") else _parts(content, where)
    signature = _google(message.get("extra_content")).get("thought_signature")
    if isinstance(signature, str):
        texts = [j for j, p in enumerate(parts) if "text" in p and "thoughtSignature" not in p]
        if texts:  # a copy: a Gemini part passed through is the caller's own dict
            parts[texts[-1]] = {**parts[texts[-1]], "thoughtSignature": signature}
    if calls:
        parts += _function_calls(calls, where)
    return parts


def _response(content: Any) -> dict[str, Any]:
    """A tool's answer as ``functionResponse.response``: a JSON object as it is, anything
    else as ``{"result": ...}`` (the answer as written)."""
    if isinstance(content, Mapping):
        return dict(content)
    if isinstance(content, list):  # OpenAI allows text parts here
        content = "".join(
            p["text"] if isinstance(p, Mapping) and isinstance(p.get("text"), str) else
            p if isinstance(p, str) else json.dumps(p)
            for p in content
        )
    if content is None:
        content = ""
    if isinstance(content, str):
        try:
            value = json.loads(content)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {"result": content}


class _Calls:
    """What the tool messages need of the calls they answer: the function's name
    (:func:`ipfs_accel.tools.tool_names`) and the API's own ID, by call ID."""

    def __init__(self, messages: list[Any]) -> None:
        self.names = tool_names(m for m in messages if isinstance(m, Mapping))
        self.ids: dict[str, str] = {}
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") != "assistant":
                continue
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
                    continue
                api_id = _google(call.get("extra_content")).get("function_call_id")
                if isinstance(api_id, str):
                    self.ids[call["id"]] = api_id

    def answer(self, message: Mapping[str, Any], where: str) -> dict[str, Any]:
        """A ``tool`` message as a ``functionResponse`` part."""
        call_id = message.get("tool_call_id")
        name = self.names.get(call_id) if isinstance(call_id, str) else None
        if not name and isinstance(message.get("name"), str):
            name = message["name"]
        if not name:
            raise ConfigurationError(
                f"{where} (role 'tool') answers tool_call_id {call_id!r}, which no "
                "assistant message's tool_calls names: Gemini answers a call by its "
                "function's name"
            )
        response: dict[str, Any] = {"name": name, "response": _response(message.get("content"))}
        if isinstance(call_id, str) and call_id in self.ids:
            response["id"] = self.ids[call_id]
        return {"functionResponse": response}


def contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The turns and the system parts of OpenAI-style messages."""
    turns: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    calls: _Calls | None = None
    answering = False  # the last turn holds tool answers: the next one joins it
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ConfigurationError(f"{where} must be a dict with 'role' and 'content'")
        role = message.get("role", "user")
        if role == "tool":
            calls = calls or _Calls(messages)
            part = calls.answer(message, where)
            if answering:
                turns[-1]["parts"].append(part)
            else:
                turns.append({"role": "user", "parts": [part]})
            answering = True
            continue
        if "parts" in message:
            parts = _parts(message["parts"], where)
        elif role == "assistant":
            parts = _model_parts(message, where)
        else:
            parts = _parts(message.get("content"), where)
        if role == "system":
            system.extend(parts)
            continue
        mapped = _ROLES.get(role)
        if mapped is None:
            raise ConfigurationError(
                f"{where}: role {role!r} is not one of user, assistant, model, system, tool"
            )
        turns.append({"role": mapped, "parts": parts})
        answering = False
    return turns, system

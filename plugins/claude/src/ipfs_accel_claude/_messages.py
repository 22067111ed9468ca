"""OpenAI-style messages into Anthropic's ``system`` and alternating turns.

The core hands us OpenAI-shaped ``messages`` (roles ``system``/``developer``, ``user``,
``assistant``, ``tool``). Anthropic wants the system prompt in a top-level ``system``
field and alternating ``user``/``assistant`` turns, so system messages are lifted out and
joined, and consecutive messages of one role are merged into one turn. Within a turn:

- an assistant message's ``tool_calls`` (OpenAI's ``{"id", "type": "function",
  "function": {"name", "arguments"}}``, as :attr:`ChatResult.message` gives them, or
  :class:`ToolCall` objects) become ``tool_use`` blocks (``id``, ``name``, ``input`` = the
  arguments' JSON object, read by :func:`ipfs_accel.tools.sent_call`), after its text;
- its ``extra_content["anthropic"]["thinking"]`` (the thinking and redacted-thinking blocks
  a claude result kept, signatures included) come back first, before text and
  ``tool_use``, as the API requires of a tool-use turn when extended thinking is on;
- ``{"role": "tool", "tool_call_id", "content"}`` becomes a ``tool_result`` block in a user
  turn; consecutive tool answers (and a user message after them) share that one turn;
- ``image_url`` parts become ``image`` blocks: a ``data:`` URL as ``{"type": "base64",
  "media_type", "data"}``, any other URL as ``{"type": "url", "url"}``.

Parts and tool calls already in Anthropic's form (a ``tool_use`` block, an ``image``
block...) pass through as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import ConfigurationError
from ipfs_accel.tools import data_url, sent_call

from ._response import VENDOR

__all__ = ["blocks", "system_value", "turns"]

_SYSTEM_ROLES = frozenset({"system", "developer"})


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI ``image_url`` part as an Anthropic ``image`` block (data URL or URL)."""
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, Mapping) else ref
    if not isinstance(url, str) or not url:
        raise ConfigurationError("an image_url part needs a url")
    inline = data_url(url)
    if inline is not None:
        media_type, data = inline
        return {"type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def blocks(content: Any) -> list[dict[str, Any]]:
    """Content (a string or parts) as a list of Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        # the API rejects empty text blocks (minLength 1)
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ConfigurationError("message content must be a string or a list of parts")
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            out.extend(blocks(part))
        elif isinstance(part, Mapping) and part.get("type") == "image_url":
            out.append(_image_block(part))
        elif isinstance(part, Mapping) and part.get("type") == "text":
            if part.get("text"):
                out.append(dict(part))
        elif isinstance(part, Mapping):
            out.append(dict(part))  # already an Anthropic block (image, document, tool_use...)
        else:
            raise ConfigurationError("a content part must be a dict or a string")
    return out


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    """One assistant tool call as a ``tool_use`` block (``input``: the arguments' object)."""
    if isinstance(call, Mapping) and call.get("type") == "tool_use":
        return dict(call)  # already Anthropic's block
    # a call without a name would be a tool_use without one, which the API refuses
    sent = sent_call(call, where, api="Anthropic")
    if sent.id is None:
        raise ConfigurationError(f"{where} needs the call's 'id' (its tool answer names it)")
    return {"type": "tool_use", "id": sent.id, "name": sent.name, "input": sent.arguments}


def _thinking(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The thinking blocks an assistant message carries back in ``extra_content``."""
    extra = message.get("extra_content")
    ours = extra.get(VENDOR) if isinstance(extra, Mapping) else None
    kept = ours.get("thinking") if isinstance(ours, Mapping) else None
    if kept is None:
        return []
    if not isinstance(kept, list) or not all(isinstance(b, Mapping) for b in kept):
        raise ConfigurationError("extra_content['anthropic']['thinking'] must be a list of "
                                 "thinking blocks (as a claude result gives it)")
    return [dict(b) for b in kept]


def _turn(message: Mapping[str, Any], i: int) -> tuple[str, list[dict[str, Any]] | str]:
    """One OpenAI message as an Anthropic role and content."""
    role = message.get("role")
    content = message.get("content")
    if role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        if isinstance(content, list):
            result["content"] = blocks(content)
        elif content:
            result["content"] = content if isinstance(content, str) else str(content)
        return "user", [result]
    if role not in ("user", "assistant"):
        raise ConfigurationError(
            f"unknown message role {role!r}: use system, developer, user, assistant or tool"
        )
    if role == "user":
        return role, content if isinstance(content, str) else blocks(content)
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise ConfigurationError(f"messages[{i}].tool_calls must be a list")
    thinking = _thinking(message)
    if not calls and not thinking and isinstance(content, str):
        return role, content
    uses = [_tool_use(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(calls or ())]
    return role, thinking + blocks(content) + uses


def turns(messages: list[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """System contents, and the remaining messages merged into alternating turns."""
    system: list[Any] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ConfigurationError("each message must be a dict with 'role' and 'content'")
        if message.get("role") in _SYSTEM_ROLES:
            system.append(message.get("content"))
            continue
        role, content = _turn(message, i)
        if out and out[-1]["role"] == role:
            previous = out[-1]
            previous["content"] = blocks(previous["content"]) + blocks(content)
        else:
            out.append({"role": role, "content": content})
    return system, out


def system_value(parts: list[Any]) -> str | list[dict[str, Any]] | None:
    """The top-level ``system`` value: joined text, or blocks when any part has blocks."""
    parts = [p for p in parts if p]
    if not parts:
        return None
    if all(isinstance(p, str) for p in parts):
        return "\n\n".join(parts)
    out: list[dict[str, Any]] = []
    for p in parts:
        out.extend(b for b in blocks(p) if b.get("type") == "text")
    return out or None

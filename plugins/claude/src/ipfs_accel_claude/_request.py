"""OpenAI-style calls into Anthropic Messages API request bodies.

The core hands us OpenAI-shaped ``messages`` (roles ``system``/``developer``, ``user``,
``assistant``, ``tool``). Anthropic wants the system prompt in a top-level ``system``
field and alternating ``user``/``assistant`` turns, so system messages are lifted out and
joined, consecutive messages of one role are merged into one turn, OpenAI tool calls and
tool results become ``tool_use`` / ``tool_result`` blocks, and ``image_url`` parts become
``image`` blocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from ipfs_accel import Call, ConfigurationError

__all__ = ["DEFAULT_MAX_TOKENS", "ClaudeOptions", "messages_body"]

DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` sent when the call gives none (the API requires the field)."""

_SYSTEM_ROLES = frozenset({"system", "developer"})


class ClaudeOptions(msgspec.Struct, kw_only=True, frozen=True):
    """Claude endpoint settings, given to ``create_endpoint`` next to the core's.

    ``anthropic_version`` is the ``anthropic-version`` header. ``auth`` chooses how the key
    travels: ``"x-api-key"`` (the API's documented header) or ``"bearer"``
    (``Authorization: Bearer``, as newer SDKs and some gateways use). ``anthropic_beta``
    names beta features for the ``anthropic-beta`` header. ``default_max_tokens`` is sent
    when a call gives no ``max_tokens``.
    """

    anthropic_version: str = "2023-06-01"
    auth: Literal["x-api-key", "bearer"] = "x-api-key"
    anthropic_beta: tuple[str, ...] = ()
    default_max_tokens: int = msgspec.field(default=DEFAULT_MAX_TOKENS)

    def __post_init__(self) -> None:
        if self.default_max_tokens < 1:
            raise ValueError("default_max_tokens must be at least 1")


def _text_of(content: Any) -> str:
    """The text of a string or of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content
            if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        )
    return "" if content is None else str(content)


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI ``image_url`` part as an Anthropic ``image`` block (data URL or URL)."""
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, Mapping) else ref
    if not isinstance(url, str):
        raise ConfigurationError("an image_url part needs a url")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
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
            out.extend(_blocks(part))
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


def _tool_use_blocks(tool_calls: Any) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` of an assistant message as ``tool_use`` blocks."""
    out: list[dict[str, Any]] = []
    for tc in tool_calls if isinstance(tool_calls, list) else ():
        if not isinstance(tc, Mapping):
            continue
        fn = tc.get("function")
        if not isinstance(fn, Mapping):
            fn = {}
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args else {}
            except ValueError:
                raise ConfigurationError("tool call arguments are not valid JSON") from None
        out.append({"type": "tool_use", "id": tc.get("id"), "name": fn.get("name"),
                    "input": args if isinstance(args, Mapping) else {}})
    return out


def _turn(message: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]] | str]:
    """One OpenAI message as an Anthropic role and content."""
    role = message.get("role")
    content = message.get("content")
    if role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        if content:
            result["content"] = content if isinstance(content, (str, list)) else str(content)
        return "user", [result]
    if role not in ("user", "assistant"):
        raise ConfigurationError(
            f"unknown message role {role!r}: use system, developer, user, assistant or tool"
        )
    calls = message.get("tool_calls") if role == "assistant" else None
    if calls:
        return role, _blocks(content) + _tool_use_blocks(calls)
    if isinstance(content, str):
        return role, content
    return role, _blocks(content)


def _split(messages: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """System contents, and the remaining messages merged into alternating turns."""
    system: list[Any] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise ConfigurationError("each message must be a dict with 'role' and 'content'")
        if message.get("role") in _SYSTEM_ROLES:
            system.append(message.get("content"))
            continue
        role, content = _turn(message)
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]
            previous["content"] = _blocks(previous["content"]) + _blocks(content)
        else:
            turns.append({"role": role, "content": content})
    return system, turns


def _system(parts: list[Any]) -> str | list[dict[str, Any]] | None:
    """The top-level ``system`` value: joined text, or blocks when any part has blocks."""
    parts = [p for p in parts if p]
    if not parts:
        return None
    if all(isinstance(p, str) for p in parts):
        return "\n\n".join(parts)
    blocks: list[dict[str, Any]] = []
    for p in parts:
        blocks.extend(b for b in _blocks(p) if b.get("type") == "text")
    return blocks or None


def messages_body(call: Call, options: ClaudeOptions, *, stream: bool) -> dict[str, Any]:
    """The ``POST /v1/messages`` body for a chat or generate call (and their streams).

    ``generate`` is one user turn. The common ``max_tokens`` (default
    ``options.default_max_tokens``), ``temperature`` and ``top_p`` keep their names,
    ``stop`` becomes ``stop_sequences`` (a string becomes a one-item list); other
    parameters pass through unchanged. A ``system=`` parameter comes before any system
    messages.
    """
    if not call.model:
        raise ConfigurationError("claude needs a model: pass model=, or set it on the endpoint")
    if call.operation in ("generate", "stream_generate"):
        system_parts: list[Any] = []
        turns: list[dict[str, Any]] = [{"role": "user", "content": call.prompt or ""}]
    else:
        system_parts, turns = _split(call.messages or [])
        if not turns:
            raise ConfigurationError("claude needs at least one user or assistant message")
    params = dict(call.params)
    params.pop("stream", None)  # the operation decides, so the parser matches the answer
    if "system" in params:
        system_parts.insert(0, params.pop("system"))
    body: dict[str, Any] = {"model": call.model, "messages": turns}
    system = _system(system_parts)
    if system is not None:
        body["system"] = system
    max_tokens = params.pop("max_tokens", None)
    body["max_tokens"] = options.default_max_tokens if max_tokens is None else max_tokens
    stop = params.pop("stop", None)
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else list(stop)
        if sequences:
            body["stop_sequences"] = sequences
    body.update((k, v) for k, v in params.items() if v is not None)
    if stream:
        body["stream"] = True
    return body

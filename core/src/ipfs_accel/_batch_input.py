"""The call lines a batch (or ``ipfs-accel run``) takes, in either shape:

- ours: ``{"id", one of "messages" / "prompt" / "input", "model", "params", "request_id"}``;
- OpenAI's Batch API: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions" |
  "/v1/embeddings" | "/v1/completions", "body": {...}}``: the body is OpenAI's request, whose
  ``model``, ``messages`` / ``prompt`` / ``input`` become the call's and whose other fields
  its parameters (mapped by the backend's plugin as for ``chat``).

A ``prompt`` is a chat turn where the backend chats, else a ``generate`` call; a
``/v1/completions`` line's prompt is a ``generate`` call where the backend has one.

:func:`to_call` reads one line into the method and keyword arguments of the backend call it
stands for, or says exactly what is wrong with it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MESSAGES", "OPENAI_URLS", "call_of", "is_openai_line", "to_call"]

OPENAI_URLS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embed",
               "/v1/completions": "generate"}
_OURS = frozenset(("id", "messages", "prompt", "input", "model", "params", "request_id"))
_OPENAI = frozenset(("custom_id", "method", "url", "body"))


def is_openai_line(data: dict[str, Any]) -> bool:
    """Whether ``data`` is in OpenAI's Batch line shape (it has ``custom_id``)."""
    return "custom_id" in data


def to_call(data: Any, operations: frozenset[str],  # noqa: PLR0911 - the first problem found
            ) -> tuple[Any, str, dict[str, Any]] | str:
    """``(key, method, kwargs)`` for one line (``method``: ``chat``, ``generate`` or
    ``embed``; ``key``: its ``id`` / ``custom_id``, ``None`` when it has none), or what is
    wrong with it."""
    if not isinstance(data, dict):
        return "a line must be a JSON object"
    if is_openai_line(data):
        return _openai(data, operations)
    unknown = sorted(set(data) - _OURS)
    if unknown:
        return f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_OURS))})"
    given = [k for k in ("messages", "prompt", "input") if k in data]
    if len(given) != 1:
        return "a line needs exactly one of 'messages', 'prompt', 'input'"
    params = data.get("params", {})
    if not isinstance(params, dict):
        return "'params' must be an object"
    kwargs: dict[str, Any] = dict(params)
    for name in ("model", "request_id"):
        if name in data:
            if not isinstance(data[name], str):
                return f"'{name}' must be a string"
            kwargs[name] = data[name]
    return call_of(data.get("id"), given[0], data[given[0]], kwargs, operations)


def _openai(data: dict[str, Any], operations: frozenset[str],  # noqa: PLR0911 - as to_call
            ) -> tuple[Any, str, dict[str, Any]] | str:
    unknown = sorted(set(data) - _OPENAI)
    if unknown:
        return f"unknown field {unknown[0]!r} in an OpenAI batch line (known: " \
               f"{', '.join(sorted(_OPENAI))})"
    key = data["custom_id"]
    if not isinstance(key, str) or not key:
        return "'custom_id' must be a non-empty string"
    if data.get("method", "POST") != "POST":
        return f"'method' must be 'POST', not {data.get('method')!r}"
    url = data.get("url")
    if url not in OPENAI_URLS:
        return f"'url' must be one of {', '.join(sorted(OPENAI_URLS))}, not {url!r}"
    body = data.get("body")
    if not isinstance(body, dict):
        return "'body' must be an object (the OpenAI request)"
    kwargs = {k: v for k, v in body.items() if k not in ("messages", "prompt", "input")}
    kwargs.pop("stream", None)  # a batch item's answer is whole
    if "model" in kwargs and not isinstance(kwargs["model"], str):
        return "'body.model' must be a string"
    field = {"chat": "messages", "generate": "prompt", "embed": "input"}[OPENAI_URLS[url]]
    if field not in body:
        return f"'body.{field}' is missing (a {url} request needs it)"
    # a completions request is a generate call where the backend has one, else a chat turn
    return call_of(key, field, body[field], kwargs, operations, prefer_generate=True)


MESSAGES = "'messages' must be a non-empty list of {'role', 'content'} objects"


def call_of(key: Any, field: str, value: Any, kwargs: dict[str, Any],
            operations: frozenset[str], *, prefer_generate: bool = False,
            ) -> tuple[Any, str, dict[str, Any]] | str:
    """``(key, method, kwargs)`` for a line's one input ``field`` (``messages``,
    ``prompt`` or ``input``) of ``value``, added to ``kwargs``; or what is wrong with it."""
    if field == "messages":
        if not isinstance(value, list) or not value or not all(isinstance(m, dict)
                                                               for m in value):
            return MESSAGES
        roleless = [i for i, m in enumerate(value) if "role" not in m]
        if roleless:
            return f"{MESSAGES} (messages[{roleless[0]}] has no 'role')"
        method, kwargs["messages"] = "chat", value
    elif field == "prompt":
        if not isinstance(value, str):
            return "'prompt' must be a string"
        if "chat" in operations and not (prefer_generate and "generate" in operations):
            method, kwargs["messages"] = "chat", [{"role": "user", "content": value}]
        else:
            method, kwargs["prompt"] = "generate", value
    else:
        if not (isinstance(value, str) or (isinstance(value, list)
                                           and all(isinstance(v, str) for v in value))):
            return "'input' must be a string or a list of strings"
        method, kwargs["inputs"] = "embed", value
    if method not in operations:
        return (f"this backend does not support {method!r} (it offers: "
                f"{', '.join(sorted(operations))})")
    return key, method, kwargs

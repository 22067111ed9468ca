"""The OpenAI wire format's requests: auth header and bodies (re-exported by ``openai_compat``)."""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationError
from ._settings import EndpointConfig
from ._types import Call

__all__ = ["bearer_headers", "chat_body", "completion_body", "embeddings_body"]


def bearer_headers(endpoint: EndpointConfig) -> dict[str, str]:
    """``Authorization: Bearer <key>`` when the endpoint has a key, else nothing."""
    key = endpoint.api_key
    return {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}


def _model(call: Call) -> str:
    if not call.model:
        raise ConfigurationError(
            f"{call.operation} needs a model: pass model=, or set it on the endpoint"
        )
    return call.model


def _params(call: Call, max_tokens_field: str) -> dict[str, Any]:
    params = dict(call.params)
    if max_tokens_field != "max_tokens" and "max_tokens" in params:
        params[max_tokens_field] = params.pop("max_tokens")
    return params


def _sent(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as this format takes them: ``extra_content`` (what another backend
    needs back with its turn, carried by ``ChatResult.message``) is not part of it."""
    if not any("extra_content" in m or m.get("tool_calls") for m in messages):
        return messages
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if "extra_content" not in message and not calls:
            out.append(message)
            continue
        sent = {k: v for k, v in message.items() if k != "extra_content"}
        if isinstance(calls, list):
            sent["tool_calls"] = [
                {k: v for k, v in c.items() if k != "extra_content"}
                if isinstance(c, dict) and "extra_content" in c else c
                for c in calls
            ]
        out.append(sent)
    return out


def chat_body(
    call: Call, *, stream: bool = False, include_usage: bool = True,
    max_tokens_field: str = "max_tokens", require_model: bool = True,
) -> dict[str, Any]:
    """The ``/chat/completions`` body for a chat call (a generate call becomes one user turn)."""
    messages = call.messages
    if messages is None:
        messages = [{"role": "user", "content": call.prompt or ""}]
    body: dict[str, Any] = {"messages": _sent(messages)}
    if require_model or call.model:
        body["model"] = _model(call)
    body.update(_params(call, max_tokens_field))
    if stream:
        body["stream"] = True
        if include_usage:
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
    return body


def completion_body(
    call: Call, *, stream: bool = False, include_usage: bool = True, require_model: bool = True
) -> dict[str, Any]:
    """The legacy ``/completions`` body for a generate call."""
    body: dict[str, Any] = {"prompt": call.prompt or ""}
    if require_model or call.model:
        body["model"] = _model(call)
    body.update(call.params)
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True, **(body.get("stream_options") or {})}
    return body


def embeddings_body(call: Call, *, require_model: bool = True) -> dict[str, Any]:
    """The ``/embeddings`` body for an embed call."""
    body: dict[str, Any] = {"input": call.inputs or []}
    if require_model or call.model:
        body["model"] = _model(call)
    body.update(call.params)
    return body



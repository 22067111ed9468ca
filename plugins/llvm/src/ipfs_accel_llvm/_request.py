"""Building the HTTP exchange for each operation of the llvm REST contract.

Every call is sent on its own, at once: there is no client-side batching, so no request
ever waits for a batch that may never fill. ``batch_infer`` is the explicit way to send
several inputs in one request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ipfs_accel import Call, ConfigurationError, EndpointConfig, Exchange, UnsupportedOperationError

from ._response import (
    ANY_INFER_ANSWER,
    TEXT_ANSWER,
    BatchAnswer,
    parse_batch,
    parse_chat,
    parse_infer,
    parse_json,
    parse_reload,
)

__all__ = ["COMMON_PARAMS", "DEFAULT_MODELS", "OPERATIONS", "build_exchange", "render_chat"]

COMMON_PARAMS = ("max_tokens", "temperature", "top_p", "stop")
"""The core's common keyword params; the contract's ``parameters`` uses the same names."""

def render_chat(messages: list[dict[str, Any]] | None) -> str:
    """The prompt a chat is sent as: one ``<role>: <content>`` line per message, then
    ``assistant:`` for the reply (left out when the last message is the assistant's own,
    which the model then continues).

    Content is a string, ``None`` (empty) or a list of OpenAI-style parts, whose text parts
    (``{"type": "text", "text": ...}`` or bare strings) are joined with newlines. The
    contract is text only: any other part is a :class:`ConfigurationError`.
    """
    if not messages:
        raise ConfigurationError("chat needs at least one message")
    lines: list[str] = []
    role = ""
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ConfigurationError(f"message {index} must be a dict with 'role' and 'content'")
        given = message.get("role")
        if not isinstance(given, str) or not given:
            raise ConfigurationError(f"message {index} needs a non-empty string 'role'")
        role = given
        lines.append(f"{role}: {_content_text(message.get('content'), index)}")
    if role != "assistant":
        lines.append("assistant:")
    return "\n".join(lines)


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif (
                isinstance(part, Mapping)
                and part.get("type", "text") == "text"
                and isinstance(part.get("text"), str)
            ):
                texts.append(part["text"])
            else:
                raise ConfigurationError(
                    f"message {index}: the llvm backend takes text content only, got {part!r:.80}"
                )
        return "\n".join(texts)
    raise ConfigurationError(
        f"message {index}: content must be a string or a list of text parts, "
        f"got {type(content).__name__}"
    )


def _parameters(params: Mapping[str, Any], *, taken: tuple[str, ...]) -> dict[str, Any]:
    """The ``parameters`` object: an explicit ``parameters=`` dict, then every other
    keyword param under its own name (the common ones are dropped when ``None``)."""
    out: dict[str, Any] = {}
    explicit = params.get("parameters")
    if explicit is not None:
        if not isinstance(explicit, Mapping):
            raise ConfigurationError("parameters= must be a dict")
        out.update(explicit)
    for name, value in params.items():
        if name in taken or name == "parameters":
            continue
        if value is None and name in COMMON_PARAMS:
            continue
        out[name] = value
    return out


def _no_params(call: Call) -> None:
    if call.params:
        names = ", ".join(sorted(call.params))
        raise ConfigurationError(f"{call.operation} takes no parameters, got: {names}")


def _body(key: str, value: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    body = {key: value}
    if parameters:
        body["parameters"] = parameters
    return body


def _generate(call: Call, base: str, model: str) -> Exchange:
    if call.operation == "generate":
        if not isinstance(call.prompt, str):
            raise ConfigurationError("generate needs a string prompt")
        prompt = call.prompt
    else:
        prompt = render_chat(call.messages)
    body = _body("input", prompt, _parameters(call.params, taken=()))
    return Exchange(path=f"{base}/infer", json=body, parse=parse_chat(model),
                    response_type=TEXT_ANSWER)


def _infer(call: Call, base: str, model: str) -> Exchange:
    params = call.params
    if params.get("input") is None:
        raise ConfigurationError("infer needs input= (any JSON value)")
    body = _body("input", params["input"], _parameters(params, taken=("input",)))
    return Exchange(path=f"{base}/infer", json=body, parse=parse_infer,
                    response_type=ANY_INFER_ANSWER)


def _batch_infer(call: Call, base: str, model: str) -> Exchange:
    params = call.params
    inputs = params.get("inputs")
    if not isinstance(inputs, list | tuple):
        raise ConfigurationError("batch_infer needs inputs= (a list)")
    body = _body("inputs", list(inputs), _parameters(params, taken=("inputs",)))
    return Exchange(path=f"{base}/batch_infer", json=body, parse=parse_batch,
                    response_type=BatchAnswer)


def _list_models(call: Call, base: str, model: str) -> Exchange:
    _no_params(call)
    return Exchange(method="GET", path="/models", parse=parse_json)


def _model_info(call: Call, base: str, model: str) -> Exchange:
    _no_params(call)
    return Exchange(method="GET", path=base, parse=parse_json)


def _status(call: Call, base: str, model: str) -> Exchange:
    _no_params(call)
    return Exchange(method="GET", path="/status", parse=parse_json)


def _reload(call: Call, base: str, model: str) -> Exchange:
    _no_params(call)
    return Exchange(path=f"{base}/reload", parse=parse_reload)


_BUILDERS: dict[str, Callable[[Call, str, str], Exchange]] = {
    "generate": _generate,
    "chat": _generate,
    "infer": _infer,
    "batch_infer": _batch_infer,
    "list_models": _list_models,
    "model_info": _model_info,
    "status": _status,
    "reload": _reload,
}

OPERATIONS = frozenset(_BUILDERS)
"""Every operation the backend offers (``chat`` and ``generate``; the rest via ``invoke``)."""

_SERVER_WIDE = frozenset({"list_models", "status"})

DEFAULT_MODELS = {op: "default" for op in sorted(OPERATIONS - _SERVER_WIDE)}
"""The model of each operation served under ``/models/{id}`` when the caller names none:
``default``, the contract's example model. ``list_models`` and ``status`` take no model."""


def build_exchange(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The exchange for ``call`` on ``endpoint`` (see the README for the routes)."""
    builder = _BUILDERS.get(call.operation)
    if builder is None:
        raise UnsupportedOperationError(f"the llvm backend does not support {call.operation!r}")
    model = call.model or ""
    if not model and call.operation not in _SERVER_WIDE:
        # the core fills DEFAULT_MODELS in; a model is never made up here, only reported missing
        raise ConfigurationError(f"llvm {call.operation} needs a model: pass model=, or set it "
                                 "on the endpoint")
    exchange = builder(call, f"/models/{quote(model, safe='')}", model)
    if endpoint.api_key is not None:
        exchange.headers = {"Authorization": f"Bearer {endpoint.api_key.reveal()}"}
    return exchange

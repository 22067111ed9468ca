"""OpenAI-style calls into Anthropic Messages API request bodies.

The messages become ``system`` and alternating turns (:mod:`._messages`); tools, tool
choice and the response format take the API's form (:mod:`._tools`); the common
parameters are renamed where Anthropic names them differently.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from ipfs_accel import Call, ConfigurationError, EndpointConfig

from ._messages import system_value, turns
from ._tools import apply_tools

__all__ = ["DEFAULT_MAX_TOKENS", "ClaudeOptions", "messages_body", "options_of", "request_headers"]

DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` sent when the call gives none (the API requires the field)."""


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


def options_of(endpoint: EndpointConfig) -> ClaudeOptions:
    """The endpoint's claude options (the defaults where it has none)."""
    options = endpoint.options
    return options if isinstance(options, ClaudeOptions) else ClaudeOptions()


def request_headers(endpoint: EndpointConfig, options: ClaudeOptions) -> dict[str, str]:
    """The headers of every request to the API: ``anthropic-version``, ``anthropic-beta``
    when beta features are named, and the key as ``options.auth`` says."""
    headers = {"anthropic-version": options.anthropic_version}
    if options.anthropic_beta:
        headers["anthropic-beta"] = ",".join(options.anthropic_beta)
    key = endpoint.api_key
    if key is not None:
        if options.auth == "bearer":
            headers["authorization"] = f"Bearer {key.reveal()}"
        else:
            headers["x-api-key"] = key.reveal()
    return headers


def messages_body(call: Call, options: ClaudeOptions, *, stream: bool) -> dict[str, Any]:
    """The ``POST /v1/messages`` body for a chat or generate call (and their streams).

    ``generate`` is one user turn. The common ``max_tokens`` (default
    ``options.default_max_tokens``), ``temperature`` and ``top_p`` keep their names,
    ``stop`` becomes ``stop_sequences`` (a string becomes a one-item list); ``tools``,
    ``tool_choice``, ``parallel_tool_calls`` and ``response_format`` are mapped by
    :func:`._tools.apply_tools`; other parameters pass through unchanged. A ``system=``
    parameter comes before any system messages.
    """
    if not call.model:
        raise ConfigurationError("claude needs a model: pass model=, or set it on the endpoint")
    if call.operation in ("generate", "stream_generate"):
        system_parts: list[Any] = []
        conversation: list[dict[str, Any]] = [{"role": "user", "content": call.prompt or ""}]
    else:
        system_parts, conversation = turns(call.messages or [])
        if not conversation:
            raise ConfigurationError("claude needs at least one user or assistant message")
    params = dict(call.params)
    params.pop("stream", None)  # the operation decides, so the parser matches the answer
    if "system" in params:
        system_parts.insert(0, params.pop("system"))
    body: dict[str, Any] = {"model": call.model, "messages": conversation}
    system = system_value(system_parts)
    if system is not None:
        body["system"] = system
    max_tokens = params.pop("max_tokens", None)
    body["max_tokens"] = options.default_max_tokens if max_tokens is None else max_tokens
    stop = params.pop("stop", None)
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else list(stop)
        if sequences:
            body["stop_sequences"] = sequences
    apply_tools(params, body)
    body.update((k, v) for k, v in params.items() if v is not None)
    if stream:
        body["stream"] = True
    return body

"""ipfs-accel backend for Anthropic's Claude Messages API.

One route: ``POST /v1/messages`` (``stream: true`` for server-sent events), with the
endpoint's key in ``x-api-key`` (or ``Authorization: Bearer`` with ``auth="bearer"``) and
the ``anthropic-version`` header. Operations: ``chat``, ``generate`` (one user turn),
``stream_chat`` and ``stream_generate``; Anthropic has no embeddings API, so ``embed`` is
not offered. Reads ``ANTHROPIC_API_KEY`` (required) and ``ANTHROPIC_BASE_URL``.

Batches (``backend.submit_batch``): chat calls go as Message Batches
(``/v1/messages/batches``: up to 100,000 requests and 256 MB each, each request's
``params`` the body ``send`` builds, each key its ``custom_id``, so keys are 1 to 64
letters, digits, ``_`` or ``-``); results are read with the online reader
(:mod:`._batch`).

Tools, structured output and images take OpenAI's vocabulary, as on every backend
(``BackendInfo.features``: chat and stream_chat take ``tools``, ``json_schema`` and
``images``; generate and stream_generate a ``json_schema``; ``json_object`` none):

- in: OpenAI function tools -> ``{"name", "description", "input_schema", "strict"}``, tools
  in Anthropic's own form (client or server tools) as they are; ``tool_choice``
  ``auto``/``none``/``required``/one function -> ``{"type": "auto"|"none"|"any"|"tool",
  "name"}`` (``parallel_tool_calls=False`` -> ``disable_parallel_tool_use``); an assistant
  message's ``tool_calls`` -> ``tool_use`` blocks (``input`` parsed from the arguments' JSON)
  after its ``extra_content["anthropic"]["thinking"]`` blocks and its text; ``tool`` messages
  -> ``tool_result`` blocks, consecutive ones in one user turn; ``image_url`` parts -> image
  blocks (``data:`` URLs as base64, others as ``url`` sources); ``response_format``
  ``json_schema`` -> ``output_config.format`` (``{"type": "json_schema", "schema"}``).
- out: ``tool_use`` blocks -> :class:`~ipfs_accel.ToolCall` (``arguments`` = ``input``,
  ``raw`` = the block); ``thinking`` / ``redacted_thinking`` blocks with their signatures ->
  ``ChatResult.extra_content = {"anthropic": {"thinking": [...]}}``, so ``result.message``
  sent back restores them; ``stop_reason`` ``tool_use`` -> ``finish_reason="tool_calls"``.
  Streamed, a ``tool_use`` block start and its ``input_json_delta`` pieces are
  :class:`~ipfs_accel.ToolCallDelta` fragments (by block index) the core joins; the thinking
  rides on the ``message_delta`` chunk's ``extra_content`` (and so on ``stream.result``).

Billed tokens: input = ``input_tokens`` + ``cache_creation_input_tokens`` +
``cache_read_input_tokens``; output = ``output_tokens``, which already counts extended
thinking (the API reports no separate thinking count, so ``reasoning_tokens`` is 0); the
API gives no total, so the total is input + output.

>>> from ipfs_accel import Registry
>>> claude = Registry().get("claude")                                   # doctest: +SKIP
>>> eid = claude.create_endpoint(anthropic_version="2023-06-01")        # doctest: +SKIP
>>> claude.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid).text  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import (
    BackendInfo,
    BatchOutcome,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    RateLimits,
    UnsupportedOperationError,
    Usage,
    hookimpl,
)

from ._batch import BATCH_LIMITS, exchange, outcome
from ._case import conformance_case as conformance_case  # the kit's optional hook
from ._errors import classify
from ._events import EventReader
from ._limits import rate_limits
from ._request import (
    DEFAULT_MAX_TOKENS,
    ClaudeOptions,
    messages_body,
    options_of,
    request_headers,
)
from ._response import parse_message, usage_of
from ._wire import EVENT_TYPES, Message

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "ClaudeOptions",
    "backend_info",
    "batch_exchange",
    "batch_result",
    "classify_error",
    "parse_rate_limits",
    "parse_usage",
    "send",
]

DEFAULT_BASE_URL = "https://api.anthropic.com"
"""Where the API lives unless ``base_url=`` or ``ANTHROPIC_BASE_URL`` says otherwise."""

DEFAULT_MODEL = "claude-sonnet-4-6"
"""The model used when neither the call nor the endpoint names one."""

API_KEY_ENV = "ANTHROPIC_API_KEY"
"""The environment variable the key is read from when ``api_key=`` is not given."""

BASE_URL_ENV = "ANTHROPIC_BASE_URL"
"""The environment variable that overrides :data:`DEFAULT_BASE_URL`."""

_OPERATIONS = frozenset({"chat", "generate", "stream_chat", "stream_generate"})
_CHAT_FEATURES = frozenset({"tools", "json_schema", "images"})
# json_object: the API's only output format is a JSON schema; generate sends one prompt
_FEATURES = {"chat": _CHAT_FEATURES, "stream_chat": _CHAT_FEATURES,
             "generate": frozenset({"json_schema"}), "stream_generate": frozenset({"json_schema"})}
_PATH = "/v1/messages"
_SSE_ACCEPT = "text/event-stream"


@hookimpl
def backend_info() -> BackendInfo:
    """Declare the ``claude`` backend."""
    return BackendInfo(
        name="claude",
        description="Anthropic Claude Messages API (POST /v1/messages)",
        provider="anthropic",
        default_base_url=DEFAULT_BASE_URL,
        base_url_env=(BASE_URL_ENV,),
        api_key_env=(API_KEY_ENV,),
        api_key_required=True,
        default_model=DEFAULT_MODEL,
        operations=_OPERATIONS,
        server_request_id_headers=("request-id",),
        options=ClaudeOptions,
        features=_FEATURES,
        batch=BATCH_LIMITS,
    )


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The ``POST /v1/messages`` exchange for a chat or generate call or their streams."""
    if call.operation not in _OPERATIONS:
        raise UnsupportedOperationError(f"claude does not support {call.operation!r}")
    options = options_of(endpoint)
    stream = call.operation.startswith("stream_")
    body = messages_body(call, options, stream=stream)
    headers = request_headers(endpoint, options)
    if stream:
        headers["accept"] = _SSE_ACCEPT
        # one reader per call: it remembers which blocks are tool calls and the thinking
        return Exchange(path=_PATH, json=body, headers=headers, stream="sse",
                        parse_event=EventReader(), event_type=EVENT_TYPES)
    return Exchange(path=_PATH, json=body, headers=headers, parse=parse_message,
                    response_type=Message)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Token usage of a ``Message`` body or a ``message_start`` / ``message_delta`` event."""
    return usage_of(data)


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """Classify an Anthropic error response or ``error`` stream event (never raises)."""
    return classify(failure)


@hookimpl
def parse_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """The ``anthropic-ratelimit-*`` headers every response carries: requests, and the
    binding one of the ``tokens`` / ``input-tokens`` / ``output-tokens`` budgets (the least
    remaining), resets read from their RFC 3339 times. Never raises."""
    return rate_limits(headers)


@hookimpl
def batch_exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    """A Message Batches step (``/v1/messages/batches``): a call's request line, submit,
    poll, cancel, or the results download (see :mod:`._batch`)."""
    return exchange(step, endpoint)


@hookimpl
def batch_result(data: Any, operation: str) -> BatchOutcome:
    """One line of a Message Batch's results: the answer read as an online one, the
    error as the online API sends it, or a request canceled or expired."""
    return outcome(data, operation)

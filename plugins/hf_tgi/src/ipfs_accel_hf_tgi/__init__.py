"""ipfs-accel backend for Hugging Face Text Generation Inference (TGI).

Talks to a self-hosted TGI server (default ``http://localhost:8080``, or ``TGI_BASE_URL``):

- ``generate`` -> ``POST /generate``; ``stream_generate`` -> ``POST /generate_stream`` (SSE);
- ``chat`` and ``stream_chat`` -> ``POST /v1/chat/completions`` (the Messages API, OpenAI
  format, built by :mod:`ipfs_accel.openai_compat`; a model the caller names is sent as
  given, else ``"tgi"``, which TGI accepts whatever model it serves);
- ``invoke("health")`` -> ``GET /health``; ``invoke("info")`` -> ``GET /info``.

Tools, structured output and images (OpenAI's vocabulary, mapped in :mod:`._request`):
``chat`` and ``stream_chat`` take ``tools``, ``tool_choice``, tool turns, ``response_format``
(``json_schema``, ``json_object``; sent as TGI's grammar ``{"type": "json", "value": schema}``)
and ``image_url`` parts; ``generate`` and ``stream_generate`` take ``response_format`` (as
``parameters.grammar``) but no tools. ``BackendInfo.features`` says so, and the core refuses
what an operation lacks before sending; TGI's refusal of tools together with a grammar is a
``ConfigurationError`` here too. Tool calls come back as typed ``ToolCall`` (TGI's IDs, ``"0"``,
kept), streamed ones joined by the core, TGI's older stream shapes read in :mod:`._chat`.

``finish_reason`` is one of :data:`ipfs_accel.FINISH_REASONS` on every route (TGI's
``eos_token`` and ``stop_sequence`` are ``stop``, a turn with tool calls ``tool_calls``);
``native_finish_reason`` is TGI's own value.

Billed tokens: TGI serves a model on your own hardware and bills nothing; the counts are
what it reports. Chat: the body's (or usage chunk's) ``usage``, whose ``total_tokens``
(prompt plus completion) is kept as TGI's own total; TGI reports no reasoning tokens (a
thinking model's thinking is part of ``completion_tokens``). ``/generate``: the
``x-prompt-tokens`` / ``x-generated-tokens`` headers (else ``details``), total their sum.

The key is optional (``HF_TOKEN`` or ``HF_API_TOKEN``, or ``api_key=``): it is sent as
``Authorization: Bearer`` to servers started with ``--api-key`` or behind an HF endpoint.
Errors are ``{"error", "error_type"}``: 429 (TGI's "Model is overloaded") and 503 are retried
with backoff (TGI sends no Retry-After); 422 validation and 424 generation errors are not.
"""

from __future__ import annotations

import re
from typing import Any

from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    ErrorKind,
    Exchange,
    Failure,
    InvokeResult,
    Response,
    UnsupportedOperationError,
    Usage,
    default_classification,
    hookimpl,
    openai_compat,
)

from ._case import conformance_case as conformance_case  # the kit's optional hook
from ._chat import EVENT_TYPES as CHAT_EVENT_TYPES
from ._chat import ChatEvents, parse_chat
from ._generate import (
    EVENT_TYPES,
    GenerateAnswer,
    generate_body,
    parse_generate,
    parse_generate_event,
    stream_usage,
)
from ._request import chat_body

__all__ = ["backend_info", "classify_error", "parse_usage", "send"]

_OPERATIONS = frozenset({"chat", "generate", "stream_chat", "stream_generate", "health", "info"})
_SSE = {"accept": "text/event-stream"}
_CHAT_FEATURES = frozenset({"tools", "json_schema", "json_object", "images"})
_GENERATE_FEATURES = frozenset({"json_schema", "json_object"})  # parameters.grammar

_INFO = BackendInfo(
    name="hf_tgi",
    description="Hugging Face Text Generation Inference (self-hosted)",
    provider="huggingface.tgi",
    default_base_url="http://localhost:8080",
    base_url_env=("TGI_BASE_URL",),
    api_key_env=("HF_TOKEN", "HF_API_TOKEN"),
    api_key_required=False,
    # Only the Messages API takes a model; /generate serves the one model TGI was started with.
    default_models={"chat": "tgi", "stream_chat": "tgi"},
    operations=_OPERATIONS,
    features={"chat": _CHAT_FEATURES, "stream_chat": _CHAT_FEATURES,
              "generate": _GENERATE_FEATURES, "stream_generate": _GENERATE_FEATURES},
)


@hookimpl
def backend_info() -> BackendInfo:
    """TGI: default base URL, env vars and operations."""
    return _INFO


_Object = dict[str, Any]
"""The ``/info`` answer, returned whole: it only has to be a JSON object."""


def _invoke_data(resp: Response) -> InvokeResult:
    data: _Object = resp.data
    return InvokeResult(data=data)


def _health(resp: Response) -> InvokeResult:
    # 200 with an empty body means healthy; 503 never gets here, it raises OverloadedError
    return InvokeResult(data={"healthy": True, "status": resp.status})


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The TGI exchange for one call."""
    auth = openai_compat.bearer_headers(endpoint)
    op = call.operation
    if op == "chat":
        return Exchange(path="/v1/chat/completions", json=chat_body(call), headers=auth,
                        parse=parse_chat, response_type=openai_compat.ChatCompletion)
    if op == "stream_chat":
        # one reader per call: it keeps what TGI's tool-call stream spreads over events
        return Exchange(path="/v1/chat/completions", json=chat_body(call, stream=True),
                        headers={**auth, **_SSE}, stream="sse",
                        parse_event=ChatEvents().parse, event_type=CHAT_EVENT_TYPES)
    if op == "generate":
        return Exchange(path="/generate", json=generate_body(call), headers=auth,
                        parse=parse_generate, response_type=GenerateAnswer)
    if op == "stream_generate":
        return Exchange(
            path="/generate_stream", json=generate_body(call), headers={**auth, **_SSE},
            stream="sse", parse_event=parse_generate_event, event_type=EVENT_TYPES,
        )
    if op == "health":
        return Exchange(method="GET", path="/health", headers=auth, parse=_health)
    if op == "info":
        return Exchange(method="GET", path="/info", headers=auth, parse=_invoke_data,
                        response_type=_Object)
    raise UnsupportedOperationError(f"hf_tgi has no operation {op!r}")


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Usage of chat bodies and chunks (``usage``) and of the last generate-stream event.

    A ``/generate`` body is read by its parser instead, which also sees the token-count
    headers; here it reports ``None`` so that parser's usage is kept.
    """
    if operation in ("chat", "stream_chat"):
        return openai_compat.parse_usage(data)
    if operation == "stream_generate":
        return stream_usage(data)
    return None


_CONTEXT = re.compile(
    r"must have less than \d+ tokens|tokens \+ `max_new_tokens` must be <=|"
    r"exceeds? the (model'?s )?(maximum )?context|too long",
    re.IGNORECASE,
)


def _kind(error_type: str, status: int, message: str) -> tuple[ErrorKind, bool] | None:
    if error_type == "overloaded" or status == 429:
        return ErrorKind.OVERLOADED, True
    if error_type == "validation" or status == 422:
        if _CONTEXT.search(message):
            return ErrorKind.CONTEXT_LENGTH, False
        return ErrorKind.BAD_REQUEST, False
    if error_type == "generation" or status == 424:
        return ErrorKind.SERVER, False
    return None


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """TGI's ``{error, error_type}`` over the default: 429/overloaded and 503 retried;
    422/validation (context length when the input is too long) and 424/generation not."""
    c = default_classification(failure)
    if failure.exception is not None:
        return c
    message, error_type, _ = openai_compat.error_fields(failure.data)
    if message and not c.message:
        c.message = message
    if error_type:
        c.code = error_type
    decided = _kind((error_type or "").lower(), failure.status or 0, c.message)
    if decided is not None:
        c.kind, c.retryable = decided
    return c

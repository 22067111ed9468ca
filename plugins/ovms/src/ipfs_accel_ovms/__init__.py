"""ipfs-accel backend for OpenVINO Model Server (OVMS).

Install ``ipfs-accel-plugin-ovms`` and ``Registry().get("ovms")`` finds it. Base URL:
``base_url=``, else ``OVMS_BASE_URL``, else ``http://localhost:8000``; an optional key
(``api_key=`` or ``OVMS_API_KEY``) is sent as ``Authorization: Bearer``.

- ``chat``, ``generate``, ``embed`` and their streams: the OpenAI-compatible ``/v3`` API
  (built with :mod:`ipfs_accel.openai_compat`).
- ``invoke("rerank", query=..., documents=[...])``: ``POST /v3/rerank`` (Cohere-style).
- ``invoke("infer" | "model_ready" | "metadata" | "ready" | "live" | "server_metadata")``:
  the KServe v2 tensor API; ``infer`` returns an :class:`InferResponse` (outputs, ``id``,
  ``model_name``, ``model_version``, ``parameters``). :func:`ready` / :func:`aready` ask
  whether the server or a model is ready and answer ``False`` for not ready (a health
  probe's 400, 404 or 503, which is never retried).
- ``invoke("predict", instances=... | inputs=...)``: the TF-Serving API of older releases.

Tools, structured output and images (``BackendInfo.features``): ``/v3/chat/completions``
takes OpenAI's form, so ``chat`` and ``stream_chat`` send ``tools``, ``tool_choice``,
assistant turns with ``tool_calls``, ``tool`` messages, ``response_format`` and
``image_url`` parts (``data:`` and https URLs; the server fetches an https one only from its
``--allowed_media_domains``) as they are, and read tool calls back as typed ``ToolCall``s
(streamed fragments joined by the core). One mapping: ``{"type": "json_object"}`` is sent
as the json_schema of any object, because OVMS turns ``response_format`` into an XGrammar
structural tag, which has no ``json_object``, and would then impose nothing.
``/v3/completions`` takes none of them: ``generate`` with tools or a response format is
refused before sending.

Billed tokens: ``usage`` as OVMS reports it, ``prompt_tokens`` as input and
``completion_tokens`` as output (every generated token, a reasoning model's thinking
included: OVMS reports no separate reasoning count), and OVMS's ``total_tokens`` kept as the
total. Streams are counted from the usage chunk (``stream_usage``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipfs_accel
import msgspec
from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    Usage,
    openai_compat,
)

from ._case import conformance_case as conformance_case  # the kit's optional hook
from ._health import aready, fit_probe, ready
from ._kserve import KSERVE_OPERATIONS, InferResponse, kserve_exchange
from ._rerank import rerank_exchange

__all__ = [
    "InferResponse",
    "OvmsOptions",
    "aready",
    "backend_info",
    "classify_error",
    "parse_usage",
    "ready",
    "send",
]

_OPENAI_OPERATIONS = frozenset({"chat", "generate", "embed", "stream_chat", "stream_generate"})
_FEATURES = openai_compat.CHAT_FEATURES
"""What each text operation's requests may carry (``BackendInfo.features``): chat takes
tools, both response formats and images; ``/v3/completions`` none of them."""

_ANY_OBJECT = {"type": "json_schema", "json_schema": {"name": "json_object",
                                                      "schema": {"type": "object"}}}


class OvmsOptions(msgspec.Struct, kw_only=True, frozen=True):
    """OVMS endpoint settings, given to ``create_endpoint``.

    ``stream_usage`` asks streams for a final usage chunk (``stream_options.include_usage``),
    so streamed calls are counted; OVMS supports it only for continuous-batching servables,
    so turn it off for the others.
    """

    stream_usage: bool = True


@ipfs_accel.hookimpl
def backend_info() -> BackendInfo:
    """OVMS: self-hosted, often several replicas as several endpoints."""
    return BackendInfo(
        name="ovms",
        description="OpenVINO Model Server: OpenAI-compatible /v3, KServe v2, TF-Serving",
        provider="openvino.model_server",
        default_base_url="http://localhost:8000",
        base_url_env=("OVMS_BASE_URL",),
        api_key_env=("OVMS_API_KEY",),
        operations=_OPENAI_OPERATIONS | KSERVE_OPERATIONS | {"rerank"},
        options=OvmsOptions,
        features=_FEATURES,
    )


def _fit_format(call: Call) -> Call:
    """``json_object`` as the json_schema of any object: OVMS turns ``response_format`` into
    an XGrammar structural tag, which has no ``json_object``, and then imposes nothing."""
    fmt = call.params.get("response_format")
    if not (isinstance(fmt, Mapping) and fmt.get("type") == "json_object"):
        return call
    return msgspec.structs.replace(call, params={**call.params, "response_format": _ANY_OBJECT})


@ipfs_accel.hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The OVMS request for one call."""
    headers = openai_compat.bearer_headers(endpoint)
    op = call.operation
    if op in _OPENAI_OPERATIONS:
        options = endpoint.options
        usage = options.stream_usage if isinstance(options, OvmsOptions) else True
        if op.startswith("stream_"):
            headers = {**headers, "accept": "text/event-stream"}
        return openai_compat.exchange(_fit_format(call), endpoint, prefix="/v3", headers=headers,
                                      include_usage=usage)
    if op == "rerank":
        return rerank_exchange(call, headers)
    return kserve_exchange(call, headers)


@ipfs_accel.hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """The OpenAI-style ``usage`` of /v3 answers (rerank and the tensor APIs report none)."""
    if operation not in _OPENAI_OPERATIONS:
        return None
    return openai_compat.parse_usage(data)


@ipfs_accel.hookimpl
def classify_error(failure: Failure) -> Classification:
    """OVMS errors are ``{"error": "..."}``; 503 (model or server not ready) is retried.

    404 (no such model or version) and other 4xx are final; other 5xx are retried. The
    health probes' not-ready answers (400, 404, 503) are final: they are the answer.
    """
    return fit_probe(failure, openai_compat.classify_error(failure))

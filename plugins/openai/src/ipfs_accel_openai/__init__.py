"""ipfs-accel backend for the OpenAI API (``https://api.openai.com/v1``).

Install ``ipfs-accel-plugin-openai`` and ``Registry().get("openai")`` finds it. The key comes
from ``api_key=`` or ``OPENAI_API_KEY`` (required), the base URL from ``base_url=``, else
``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``. The ``OpenAI-Organization`` and
``OpenAI-Project`` headers are sent when the endpoint options ``organization`` / ``project``
are set, else when ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID`` are (read at each call).

Operations: ``chat`` and ``stream_chat`` (``POST /chat/completions``; ``max_tokens`` is sent
as ``max_completion_tokens``), ``generate`` and ``stream_generate`` (the legacy
``POST /completions``), ``embed`` (``POST /embeddings``). Streams ask for
``stream_options.include_usage`` so streamed calls are counted too. Answers decode into
:mod:`ipfs_accel.openai_compat`'s Structs, so a wrong-typed field is a ``ResponseError``
naming its path; ``EmbedResult.raw`` is the embeddings body without its vectors.

A model named by the call or the endpoint is sent as given, whatever the operation (a
proxy may map any name). With none named, each operation has its own default, the model its
route accepts: :data:`DEFAULT_MODEL` for chat, :data:`COMPLETION_MODEL` for ``generate`` and
``stream_generate``, :data:`EMBEDDING_MODEL` for ``embed``.

``finish_reason`` is in the core's vocabulary (OpenAI's ``stop``, ``length``,
``tool_calls``, ``content_filter`` as they are, the deprecated ``function_call`` as
``tool_calls``), with the value as sent in ``native_finish_reason``;
:mod:`ipfs_accel.openai_compat` reads both.

Tools, structured output and images are OpenAI's own vocabulary, so chat and stream_chat
send them as given: ``tools``, ``tool_choice``, ``parallel_tool_calls``, assistant turns
with ``tool_calls`` and ``tool`` messages, ``response_format`` (``json_schema`` or
``json_object``), ``image_url`` content parts (``https:`` or ``data:`` URLs). A message's
``tool_calls`` come back as typed :class:`~ipfs_accel.ToolCall` (OpenAI's ID, the arguments
parsed, the text as sent in ``arguments_json``); a stream's ``delta.tool_calls`` fragments
are joined by the core, and the chunk that ends the turn and ``stream.result`` carry the
whole calls. ``result.message`` is the assistant turn to send back. ``/completions`` takes
none of these: ``backend_info().features`` says so, and the core refuses such a
``generate`` before sending.

Billed tokens: ``usage.completion_tokens`` already counts the reasoning tokens of a
reasoning model (``completion_tokens_details.reasoning_tokens``), so ``Usage.output_tokens``
is what is billed for output and ``Usage.reasoning_tokens`` shows how much of it was
reasoning (in the stats too); ``Usage.total_tokens`` is the API's ``total_tokens``.

Batches (``backend.submit_batch``, ``run --batch``): ``chat`` and ``embed`` calls go as
OpenAI's Batch API takes them (:mod:`ipfs_accel.openai_batch`): each call's request line
is its online request (``url`` ``/v1/chat/completions`` or ``/v1/embeddings``), the lines
are uploaded (``POST /files``, ``purpose=batch``) and a batch made of them (``POST
/batches``, window ``24h``, ``metadata.label``), polled, cancelled and read back from its
output and error files (``GET /files/{id}/content``). A batch holds up to 50,000 requests
and 200 MB of lines (:data:`BATCH_LIMITS`); each answer is read as the online one, with
its usage; an item's error as the online error. Every step sends the endpoint's headers
(key, organization, project).

Errors are classified by :func:`ipfs_accel.openai_compat.classify_error`: by ``code``, and
by the message where the code is missing or is an HTTP status (a proxy's ``"400"`` saying
"maximum context length" is a ``ContextLengthError``, a ``"429"`` saying "exceeded your
current quota" a ``QuotaExceededError``, not retried). An error event in a 200 stream that
says rate limit, before any chunk reached the caller, is retried as a ``RateLimitError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import ipfs_accel
import msgspec
from ipfs_accel import (
    BackendInfo,
    BatchLimits,
    BatchOutcome,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    RateLimits,
    Usage,
)
from ipfs_accel import openai_batch as ob
from ipfs_accel import openai_compat as oa

from ._case import conformance_case as conformance_case  # the kit's optional hook

__all__ = [
    "BATCH_LIMITS",
    "COMPLETION_MODEL",
    "DEFAULT_MODEL",
    "EMBEDDING_MODEL",
    "OpenAIOptions",
    "backend_info",
    "batch_exchange",
    "batch_result",
    "classify_error",
    "parse_rate_limits",
    "parse_usage",
    "send",
]

DEFAULT_MODEL = "gpt-4o-mini"
"""The chat model used when neither the call nor the endpoint names one."""
EMBEDDING_MODEL = "text-embedding-3-small"
"""The model ``embed`` sends when none is named (:data:`DEFAULT_MODEL` cannot embed)."""
COMPLETION_MODEL = "gpt-3.5-turbo-instruct"
"""The model ``generate`` sends when none is named (``/completions`` refuses
:data:`DEFAULT_MODEL`)."""

_DEFAULT_MODELS = {
    "embed": EMBEDDING_MODEL,
    "generate": COMPLETION_MODEL,
    "stream_generate": COMPLETION_MODEL,
}

BATCH_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1000 * 1000,
                           operations=frozenset({"chat", "embed"}), max_inputs=50_000)
"""What one OpenAI batch may hold: 50,000 requests, an input file of 200 MB, and 50,000
embedding inputs across an embeddings batch's requests (the spec's ``createBatch``)."""

# Chat Completions takes tools, both response formats and images; the legacy /completions
# none of them, so the core refuses them there before sending.
_FEATURES = oa.CHAT_FEATURES


class OpenAIOptions(msgspec.Struct, kw_only=True, frozen=True):
    """OpenAI endpoint settings, given to ``create_endpoint``.

    ``organization`` and ``project`` become the ``OpenAI-Organization`` and
    ``OpenAI-Project`` headers; when ``None``, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``
    are used if set (read at the endpoint's first request).
    """

    organization: str | None = None
    project: str | None = None


@ipfs_accel.hookimpl
def backend_info() -> BackendInfo:
    """OpenAI: Bearer key required, server request ID in ``x-request-id``."""
    return BackendInfo(
        name="openai",
        description="OpenAI API (/chat/completions, /completions, /embeddings)",
        provider="openai",
        default_base_url="https://api.openai.com/v1",
        base_url_env=("OPENAI_BASE_URL",),
        api_key_env=("OPENAI_API_KEY",),
        api_key_required=True,
        default_model=DEFAULT_MODEL,
        default_models=_DEFAULT_MODELS,
        operations=frozenset({"chat", "generate", "embed", "stream_chat", "stream_generate"}),
        # OpenAI logs a caller's own ID from this header beside its x-request-id
        request_id_header="X-Client-Request-Id",
        server_request_id_headers=("x-request-id",),
        options=OpenAIOptions,
        features=_FEATURES,
        batch=BATCH_LIMITS,
    )


_HEADERS: dict[int, tuple[EndpointConfig, Mapping[str, str]]] = {}
_HEADERS_KEPT = 1024  # endpoint configs whose headers are kept (then all are dropped)


def _headers(endpoint: EndpointConfig) -> Mapping[str, str]:
    """The endpoint's headers (its key, organization, project), made at its first request
    and kept with its config, which never changes (callers copy them before adding any):
    two environment lookups a call cost as much as a tenth of the core's own path."""
    kept = _HEADERS.get(id(endpoint))
    if kept is not None and kept[0] is endpoint:
        return kept[1]
    headers = oa.bearer_headers(endpoint)
    options = endpoint.options
    organization = getattr(options, "organization", None) or os.environ.get("OPENAI_ORG_ID")
    project = getattr(options, "project", None) or os.environ.get("OPENAI_PROJECT_ID")
    if organization:
        headers["OpenAI-Organization"] = organization
    if project:
        headers["OpenAI-Project"] = project
    if len(_HEADERS) >= _HEADERS_KEPT:
        _HEADERS.clear()
    _HEADERS[id(endpoint)] = (endpoint, headers)
    return headers


@ipfs_accel.hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The OpenAI request for one call."""
    return oa.exchange(
        call, endpoint, headers=_headers(endpoint), max_tokens_field="max_completion_tokens"
    )


@ipfs_accel.hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """``usage`` of a body, or of the last stream chunk (``include_usage``); the core asks
    none for a batch step (a Batch object's ``usage`` is the whole batch's, counted per item)."""
    return oa.parse_usage(data)


_BATCHES = ob.OpenAIBatches(send=send, headers=_headers)


@ipfs_accel.hookimpl
def batch_exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    """The request of one step of a batch (:mod:`ipfs_accel.openai_batch`)."""
    return _BATCHES.exchange(step, endpoint)


@ipfs_accel.hookimpl
def batch_result(data: Any, operation: str) -> BatchOutcome:
    """One line of a batch's output or error file, read as the online answer or error."""
    return _BATCHES.result(data, operation)


@ipfs_accel.hookimpl
def classify_error(failure: Failure) -> Classification:
    """``{"error": {message, type, param, code}}`` over the default classification.

    ``insufficient_quota`` (429) is a :class:`~ipfs_accel.QuotaExceededError`, not retried;
    ``context_length_exceeded`` a :class:`~ipfs_accel.ContextLengthError`. ``x-should-retry``,
    ``retry-after-ms`` and ``Retry-After`` are honoured.
    """
    return oa.classify_error(failure)


@ipfs_accel.hookimpl
def parse_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """The ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` headers OpenAI sends
    on every response: the requests and tokens budgets per minute, resets as durations
    (``6m0s``, ``20ms``). ``None`` when the response has none (a proxy, a local server)."""
    return oa.openai_rate_limits(headers)

"""ipfs-accel backend for GroqCloud's OpenAI-compatible API (``https://api.groq.com/openai/v1``).

Install ``ipfs-accel-plugin-groq`` and ``Registry().get("groq")`` finds it. The key comes
from ``api_key=`` or ``GROQ_API_KEY`` (required), the base URL from ``base_url=``, else
``GROQ_BASE_URL``, else ``https://api.groq.com/openai/v1``.

Operations: ``chat`` and ``stream_chat`` (``POST /chat/completions``; ``max_tokens`` is sent
as ``max_completion_tokens``), ``generate`` and ``stream_generate`` as a one-turn chat (Groq
has no ``/completions``), ``embed`` (``POST /embeddings``). A model named by the call or the
endpoint is sent as given; with none named, ``embed`` sends :data:`EMBEDDING_MODEL` and the
other operations :data:`DEFAULT_MODEL` (declared per operation in ``backend_info``).

``finish_reason`` is in the core's vocabulary (Groq's ``stop``, ``length``, ``tool_calls``
as they are, the deprecated ``function_call`` as ``tool_calls``), with the value as sent in
``native_finish_reason``; :mod:`ipfs_accel.openai_compat` reads both.

Usage keeps Groq's timings (``queue_time``, ``prompt_time``, ``completion_time``,
``total_time``, seconds) in ``Usage.details``. Groq's request schema has no
``stream_options`` (and refuses unknown fields), so streams do not ask for
``include_usage``: Groq sends a stream's usage as ``x_groq.usage`` on the final chunk, and
a top-level ``usage`` is read too where a server sends one.

Answers decode into :mod:`ipfs_accel.openai_compat`'s Structs; stream chunks into
:class:`GroqChunk`, which adds ``x_groq`` (its ``usage`` and ``error``).

Tools, structured output and images speak OpenAI's vocabulary, as Groq does: chat and
stream_chat send ``tools``, ``tool_choice``, ``response_format`` (``json_schema`` or
``json_object``) and ``image_url`` parts (``https:`` or ``data:`` URLs) as given; which
models take images or ``json_schema`` is Groq's to say (a 400). One change on the way back:
an assistant turn of tool calls with ``content: null`` (as ``result.message`` gives it) is
sent without ``content``, since Groq's schema wants content unless ``tool_calls`` is given
and does not admit null there. ``tool_calls`` come back as typed
:class:`~ipfs_accel.ToolCall`; Groq streams each call whole in one chunk, and the core joins
fragments either way, putting the whole calls on the chunk that ends the turn and on
``stream.result``. ``generate`` is a bare prompt: ``backend_info().features`` gives it
none of these, and the core refuses them there before sending.

Batches (``backend.submit_batch``, ``run --batch``): ``chat`` calls go as Groq's Batch
API takes them, OpenAI's (:mod:`ipfs_accel.openai_batch`): each call's request line is its
online request (``url`` ``/v1/chat/completions``), the lines are uploaded (``POST
/files``, ``purpose=batch``) and a batch made of them (``POST /batches``, window ``24h``),
polled, cancelled and read back from its output and error files (``GET
/files/{id}/content``, octet-stream). A batch holds up to 50,000 requests and 100 MB of
lines (:data:`BATCH_LIMITS`); each answer is read as the online one, with its usage.

Billed tokens: ``completion_tokens`` counts a reasoning model's reasoning tokens
(``completion_tokens_details.reasoning_tokens``, in ``usage`` or a stream's
``x_groq.usage``), so ``Usage.output_tokens`` is what is billed for output and
``Usage.reasoning_tokens`` shows how much of it was reasoning; ``Usage.total_tokens`` is
Groq's ``total_tokens``.
"""

from __future__ import annotations

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
    ErrorKind,
    Event,
    Exchange,
    Failure,
    RateLimits,
    StreamChunk,
    StreamFailure,
    Usage,
    decode_json,
    kind_from_message,
)
from ipfs_accel import openai_batch as ob
from ipfs_accel import openai_compat as oa

from ._case import conformance_case as conformance_case  # the kit's optional hook

__all__ = [
    "BATCH_LIMITS",
    "DEFAULT_MODEL",
    "EMBEDDING_MODEL",
    "GroqChunk",
    "XGroq",
    "backend_info",
    "batch_exchange",
    "batch_result",
    "classify_error",
    "parse_rate_limits",
    "parse_usage",
    "send",
]

DEFAULT_MODEL = "llama-3.3-70b-versatile"
"""The chat model used when neither the call nor the endpoint names one."""
EMBEDDING_MODEL = "nomic-embed-text-v1_5"
"""The model ``embed`` sends when neither the call nor the endpoint names one (the spec's
embedding model)."""

# Groq's chat takes function tools, both response formats and image_url parts (which
# models do is Groq's to say, with a 400); generate is a bare prompt, so the core refuses
# them there before sending.
_FEATURES = oa.CHAT_FEATURES

BATCH_LIMITS = BatchLimits(max_requests=50_000, max_bytes=100 * 1000 * 1000,
                           operations=frozenset({"chat"}))
"""What one Groq batch may hold: 50,000 requests (Groq's documentation), an input file of
100 MB (the spec's ``createBatch``); chat only (its ``endpoint`` enum)."""

_FAILED_GENERATION_SHOWN = 1000
"""How much of ``failed_generation`` goes into the message; all of it stays in ``body``."""


@ipfs_accel.hookimpl
def backend_info() -> BackendInfo:
    """Groq: Bearer key required, server request ID in ``x-request-id``."""
    return BackendInfo(
        name="groq",
        description="GroqCloud OpenAI-compatible API (/openai/v1/chat/completions, /embeddings)",
        provider="groq",
        default_base_url="https://api.groq.com/openai/v1",
        base_url_env=("GROQ_BASE_URL",),
        api_key_env=("GROQ_API_KEY",),
        api_key_required=True,
        default_model=DEFAULT_MODEL,
        default_models={"embed": EMBEDDING_MODEL},
        operations=frozenset({"chat", "generate", "embed", "stream_chat", "stream_generate"}),
        server_request_id_headers=("x-request-id",),
        features=_FEATURES,
        batch=BATCH_LIMITS,
    )


class XGroq(msgspec.Struct, kw_only=True):
    """A chunk's ``x_groq``: the stream's usage on its final chunk, or why it stopped.

    ``error`` is whatever Groq put there (a string as documented): a truthy one ends the
    stream as a failure, and ``classify_error`` reads the chunk generically.
    """

    usage: oa.CompletionUsage | None = None
    error: Any = None


class GroqChunk(oa.ChatCompletionChunk, kw_only=True):
    """A Groq ``chat.completion.chunk``: the OpenAI chunk plus ``x_groq``."""

    x_groq: XGroq | None = None


_EVENTS: Mapping[str, Any] = {"": GroqChunk}  # named events (``error``) stay generic


def _x_groq(data: Any) -> Mapping[str, Any]:
    """A generic body's ``x_groq`` (error bodies are read generically, field by field)."""
    x_groq = data.get("x_groq") if isinstance(data, Mapping) else None
    return x_groq if isinstance(x_groq, Mapping) else {}


def _parse_event(event: Event) -> StreamChunk | StreamFailure | None:
    """A chat chunk; one whose ``x_groq.error`` says why the stream stopped is a failure."""
    data = event.json
    if isinstance(data, GroqChunk):
        if data.x_groq is not None and data.x_groq.error:
            return StreamFailure(data=decode_json(event.data))
    elif _x_groq(data).get("error"):  # an event the exchange did not type (a named one)
        return StreamFailure(data=data)
    return oa.parse_chat_event(event)


def _calls_only(message: Any) -> bool:
    """An assistant turn of tool calls with ``content: null`` (as ``ChatResult.message``
    gives it)."""
    return (isinstance(message, Mapping) and message.get("role") == "assistant"
            and bool(message.get("tool_calls")) and "content" in message
            and message["content"] is None)


def _without_null_content(body: Any) -> None:
    """Leave ``content: null`` out of assistant turns that carry tool calls: Groq's schema
    wants content unless tool_calls is given, and its ``nullable`` beside a ``oneOf`` does
    not admit null. New dicts: the caller's messages are never changed."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and any(_calls_only(m) for m in messages):
        body["messages"] = [
            {k: v for k, v in m.items() if k != "content"} if _calls_only(m) else m
            for m in messages
        ]


@ipfs_accel.hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The Groq request for one call."""
    exchange = oa.exchange(
        call, endpoint, max_tokens_field="max_completion_tokens", generate_as_chat=True,
        include_usage=False,  # not in Groq's schema: x_groq.usage carries a stream's usage
    )
    _without_null_content(exchange.json)
    if exchange.stream is not None:
        exchange.parse_event = _parse_event
        exchange.event_type = _EVENTS
    return exchange


@ipfs_accel.hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """``usage`` (timings in ``details``), else a stream's final ``x_groq.usage`` (the core
    asks none for a batch step: its answers' usage is counted per item)."""
    usage = oa.parse_usage(data)
    if usage is None:
        if isinstance(data, GroqChunk):
            usage = None if data.x_groq is None else oa.parse_usage(data.x_groq)
        else:  # an event the exchange did not type
            usage = oa.parse_usage(_x_groq(data))
    return usage


@ipfs_accel.hookimpl
def classify_error(failure: Failure) -> Classification:
    """OpenAI's error semantics, plus Groq's own.

    498 (``capacity_exceeded``: the flex tier is full) is an overload, retried unless
    ``x-should-retry: false``. ``failed_generation`` (what the model produced when JSON mode
    or a tool call failed to validate) is added to the message. A stream stopped by
    ``x_groq.error`` reports that error, classified by its wording: one saying rate limit is
    a retryable :class:`~ipfs_accel.RateLimitError` (retried while no text reached the
    caller), quota or context length their own errors. Codes that are missing or are HTTP
    statuses (a proxy's ``"429"``) are read by the message too (``oa.classify_error``).
    """
    c = oa.classify_error(failure)
    if failure.status == 498 and not failure.in_stream:
        c.kind = ErrorKind.OVERLOADED
        c.retryable = failure.headers.get("x-should-retry") != "false"
    stream_error = _x_groq(failure.data).get("error")
    if isinstance(stream_error, str) and stream_error:
        c.message = stream_error
        # x_groq.error is bare text: its wording is all there is to tell a rate limit
        # (retried while no text reached the caller) from a server fault
        said = kind_from_message(stream_error)
        if failure.in_stream and c.kind is ErrorKind.SERVER and said is not None:
            c.kind = said
            c.retryable = said is ErrorKind.RATE_LIMITED
    data = failure.data
    error = data.get("error") if isinstance(data, Mapping) else None
    failed = error.get("failed_generation") if isinstance(error, Mapping) else None
    if isinstance(failed, str) and failed:
        shown = failed[:_FAILED_GENERATION_SHOWN]
        more = "..." if len(failed) > len(shown) else ""
        c.message = f"{c.message} (failed_generation: {shown}{more})"
    return c


@ipfs_accel.hookimpl
def parse_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """Groq's ``x-ratelimit-*`` headers, read as OpenAI's (``oa.openai_rate_limits``).

    The counts are Groq's own: ``x-ratelimit-limit-requests`` and ``-remaining-requests``
    count requests per *day* (RPD) and the tokens pair tokens per minute (TPM), so
    ``requests_reset`` runs on a day's clock (``2m59.56s`` where tokens say ``7.66s``). The
    :class:`~ipfs_accel.RateLimits` carries them as sent: remaining and reset say when a
    budget is spent and when it is whole again, whatever its window.
    """
    return oa.openai_rate_limits(headers)


_BATCHES = ob.OpenAIBatches(send=send, urls={"chat": ob.BATCH_URLS["chat"]},
                            download_accept="application/octet-stream")


@ipfs_accel.hookimpl
def batch_exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    """The request of one step of a batch (:mod:`ipfs_accel.openai_batch`)."""
    return _BATCHES.exchange(step, endpoint)


@ipfs_accel.hookimpl
def batch_result(data: Any, operation: str) -> BatchOutcome:
    """One line of a batch's output or error file, read as the online answer or error."""
    return _BATCHES.result(data, operation)

"""ipfs-accel backend for the Google Gemini API, native protocol (``generativelanguage`` v1beta).

Routes (base URL ``https://generativelanguage.googleapis.com``)::

    chat, generate    POST /v1beta/models/{model}:generateContent
    stream_*          POST /v1beta/models/{model}:streamGenerateContent?alt=sse
    embed (1 input)   POST /v1beta/models/{model}:embedContent
    embed (several)   POST /v1beta/models/{model}:batchEmbedContents

The key goes in the ``x-goog-api-key`` header, never in the URL. It is read from
``api_key=``, else ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``.

Tools, structured output and images are taken in OpenAI's form (``BackendInfo.features``:
chat and stream_chat take all four, generate and stream_generate the two JSON formats):

- ``tools`` -> ``tools: [{"functionDeclarations": [{name, description,
  parametersJsonSchema}]}]``, tools in Gemini's own form (``{"googleSearch": {}}``) after
  it as they are; ``tool_choice`` -> ``toolConfig.functionCallingConfig`` (``auto`` AUTO,
  ``none`` NONE, ``required`` ANY, one function ANY with ``allowedFunctionNames``).
- ``response_format`` ``json_schema`` -> ``generationConfig.responseMimeType``
  ``application/json`` + ``responseJsonSchema``; ``json_object`` -> ``responseMimeType``.
- ``image_url`` parts -> ``inlineData`` (``data:`` URLs) or ``fileData`` (``fileUri``, the
  ``mimeType`` guessed from the extension, left out when unknown: the spec makes it optional).
- An assistant message's ``tool_calls`` -> ``functionCall`` parts of the ``model`` turn,
  each with its ``thoughtSignature`` restored from the call's
  ``extra_content["google"]["thought_signature"]`` (the API refuses the turn without it);
  ``tool`` messages -> ``functionResponse`` parts (``name`` of the call answered,
  ``response`` the answer's JSON object or ``{"result": answer}``), consecutive answers in
  one ``user`` turn. A call's ``id`` is sent back (on both parts) only when the API gave it.
- Out: each ``functionCall`` part is a :class:`~ipfs_accel.ToolCall` (``id`` the API's or,
  when it gives none, one the core makes; ``arguments`` = ``args``; ``extra_content``
  ``{"google": {"thought_signature", "function_call_id"}}`` as the part had them; ``raw``
  the part); streams carry them whole on the chunk that brought them. ``STOP`` with calls
  is ``finish_reason="tool_calls"``. A text part's ``thoughtSignature`` travels as the
  result's ``extra_content`` and goes back on the turn's last text part.

Batches (``submit_batch``, half the price): chat calls as a batch of the Batch API
(``POST /v1beta/models/{model}:batchGenerateContent``; each call's request is the one
``generateContent`` would get, with its key), polled, cancelled and read back as ``_batch``
and ``_batch_result`` say. A batch of up to 10,000 calls and under 20 MB goes inline; a
larger one (up to 100,000 calls and 2 GB) is uploaded as a JSONL file through the Files API
first and created from it (``_batch_file``), its answers downloaded as a file
(``GeminiOptions(batch_input="file")`` sends every batch that way).

Billed tokens (``usageMetadata``): ``input_tokens`` = ``promptTokenCount`` +
``toolUsePromptTokenCount``; ``output_tokens`` = ``candidatesTokenCount`` +
``thoughtsTokenCount`` (thinking is billed as output), ``reasoning_tokens`` =
``thoughtsTokenCount``; ``total_tokens`` = ``totalTokenCount``; ``cache_read_tokens`` =
``cachedContentTokenCount`` (part of the prompt). Streams take the last event's counts.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from ipfs_accel import (
    BackendInfo,
    BatchOutcome,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    UnsupportedOperationError,
    Usage,
    hookimpl,
)

from ._batch import BATCH_LIMITS
from ._batch import batch_exchange as _batch_exchange
from ._batch_result import read_result
from ._case import conformance_case as conformance_case  # the kit's optional hook
from ._classify import classify
from ._request import embed_request, generate_body, model_id
from ._response import parse_batch_embed, parse_embed, parse_event, parse_generate, usage_from
from ._wire import (
    BatchEmbedContentsResponse,
    EmbedContentResponse,
    GenerateContentResponse,
    StreamEvent,
)

__all__ = [
    "DEFAULT_EMBED_MODEL",
    "DEFAULT_MODEL",
    "GeminiOptions",
    "backend_info",
    "batch_exchange",
    "batch_result",
    "classify_error",
    "parse_usage",
    "send",
]

DEFAULT_MODEL = "gemini-2.5-flash"
"""The chat model used when neither the call nor the endpoint names one."""
DEFAULT_EMBED_MODEL = "gemini-embedding-001"
"""The embedding model used by ``embed`` when neither the call nor the endpoint names one."""


class GeminiOptions(msgspec.Struct, kw_only=True, frozen=True):
    """Gemini endpoint settings, given to ``create_endpoint``.

    ``api_version`` is the path's version segment; ``embed_model`` is what ``embed`` uses
    when no model is named (a model named by the call or by the endpoint's ``model``
    setting is sent as given, for ``embed`` too). ``batch_input``: how a batch's requests
    go, ``"auto"`` inline when they fit (10,000 calls, under 20 MB) and else as an uploaded
    JSONL file, ``"file"`` always as a file.
    """

    api_version: str = "v1beta"
    embed_model: str = DEFAULT_EMBED_MODEL
    batch_input: Literal["auto", "file"] = "auto"


_OPERATIONS = frozenset({"chat", "generate", "embed", "stream_chat", "stream_generate"})
_CHAT = frozenset({"tools", "json_schema", "json_object", "images"})
_GENERATE = frozenset({"json_schema", "json_object"})  # a prompt: no turns to call tools in
_FEATURES = {"chat": _CHAT, "stream_chat": _CHAT, "generate": _GENERATE,
             "stream_generate": _GENERATE}


@hookimpl
def backend_info() -> BackendInfo:
    """Declare the Gemini backend."""
    return BackendInfo(
        name="gemini",
        description="Google Gemini API (native generateContent protocol)",
        provider="gcp.gemini",
        default_base_url="https://generativelanguage.googleapis.com",
        base_url_env=("GEMINI_BASE_URL",),
        api_key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        api_key_required=True,
        default_model=DEFAULT_MODEL,
        default_models={"embed": DEFAULT_EMBED_MODEL},
        operations=_OPERATIONS,
        options=GeminiOptions,
        features=_FEATURES,
        batch=BATCH_LIMITS,
    )


def _headers(endpoint: EndpointConfig, *, stream: bool = False) -> dict[str, str]:
    headers = {"accept": "text/event-stream"} if stream else {}
    if endpoint.api_key is not None:
        headers["x-goog-api-key"] = endpoint.api_key.reveal()
    return headers


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The Gemini exchange for one call."""
    options: GeminiOptions = endpoint.options or GeminiOptions()
    operation = call.operation
    if operation not in _OPERATIONS:
        raise UnsupportedOperationError(f"gemini does not support {operation!r}")
    model = call.model
    if operation == "embed" and not call.model_named:
        # the core filled in DEFAULT_EMBED_MODEL; this endpoint may have chosen its own
        model = options.embed_model
    base = f"/{options.api_version}/models/{model_id(model, operation)}"
    if operation == "embed":
        inputs = call.inputs or []
        if len(inputs) == 1:
            return Exchange(
                path=f"{base}:embedContent", json=embed_request(call, inputs[0], None),
                headers=_headers(endpoint), parse=parse_embed,
                response_type=EmbedContentResponse,
            )
        name = f"models/{model_id(model, operation)}"
        body: dict[str, Any] = {"requests": [embed_request(call, text, name) for text in inputs]}
        return Exchange(
            path=f"{base}:batchEmbedContents", json=body, headers=_headers(endpoint),
            parse=parse_batch_embed(len(inputs)), response_type=BatchEmbedContentsResponse,
        )
    body = generate_body(call)
    if operation.startswith("stream_"):
        return Exchange(
            path=f"{base}:streamGenerateContent", params={"alt": "sse"}, json=body,
            headers=_headers(endpoint, stream=True), stream="sse", parse_event=parse_event,
            event_type=StreamEvent,
        )
    return Exchange(
        path=f"{base}:generateContent", json=body, headers=_headers(endpoint),
        parse=parse_generate, response_type=GenerateContentResponse,
    )


@hookimpl
def batch_exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    """The exchange of one step of a batch (see ``_batch``), with the key as ``send``'s."""
    options: GeminiOptions = endpoint.options or GeminiOptions()
    return _batch_exchange(step, _headers(endpoint), options.api_version,
                           base_url=endpoint.base_url, batch_input=options.batch_input)


@hookimpl
def batch_result(data: Any, operation: str) -> BatchOutcome:
    """One answer of a batch (see ``_batch_result``)."""
    return read_result(data, operation)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Token usage from a response's or stream chunk's ``usageMetadata`` (the core asks none
    for a batch step: its answers' usage is read with each result)."""
    return usage_from(data)


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """Classify a failed exchange by its google.rpc ``status`` (see ``_classify``)."""
    return classify(failure)

"""ipfs-accel backend for Hugging Face Text Embeddings Inference (TEI).

Talks to a self-hosted TEI server (default ``http://localhost:8080``, or ``TEI_BASE_URL``):

- ``embed`` -> ``POST /embed`` (``normalize``, ``truncate``, ``dimensions``... passed
  through), or ``POST /v1/embeddings`` (OpenAI format) on an endpoint created with
  ``openai_api=True``. A batch larger than the server's ``max_client_batch_size`` is split
  and reassembled in input order (see ``_batch``): the size comes from ``GET /info``, asked
  once per base URL, or from the endpoint's ``max_client_batch_size`` setting;
- ``invoke("rerank", query=..., texts=[...])`` -> ``POST /rerank``;
- ``invoke("openai_embed", input=[...])`` -> ``POST /v1/embeddings``;
- ``invoke("health")`` -> ``GET /health``; ``invoke("info")`` -> ``GET /info``.

Usage: input tokens only (``x-compute-tokens``, or ``usage.prompt_tokens`` of
``/v1/embeddings``, whose own ``total_tokens`` is kept as the total); TEI generates no
tokens and bills nothing. A split batch sums each request's counts once. TEI has no text
operation: ``BackendInfo.features`` declares that ``embed`` takes none of tools, structured
output or images, so the core refuses an embed call carrying them before sending (TEI would
drop them without a word).

The key is optional (``HF_TOKEN`` or ``HF_API_TOKEN``, or ``api_key=``), sent as
``Authorization: Bearer`` (TEI's ``--api-key``). Errors are ``{"error", "error_type"}``
(``{"message", "error_type"}`` on ``/v1/embeddings``): 429 Overloaded and 503 are retried;
413 (batch or input too large), 422, 400 and 424 are not.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
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
    decode_json,
    default_classification,
    hookimpl,
    openai_compat,
)

from ._batch import Info, embed_exchange, header_usage
from ._case import conformance_case as conformance_case  # the kit's optional hook

__all__ = ["TEIOptions", "backend_info", "classify_error", "parse_usage", "send"]


class TEIOptions(msgspec.Struct, kw_only=True, frozen=True):
    """hf_tei endpoint settings.

    ``openai_api``: ``embed`` uses ``POST /v1/embeddings`` instead of ``POST /embed``.
    ``max_client_batch_size``: the most inputs per request; set it to skip the ``GET /info``
    probe (for example behind a proxy that only exposes the embedding routes).
    """

    openai_api: bool = False
    max_client_batch_size: Annotated[int, msgspec.Meta(ge=1)] | None = None


_INFO = BackendInfo(
    name="hf_tei",
    description="Hugging Face Text Embeddings Inference (self-hosted)",
    provider="huggingface.tei",
    default_base_url="http://localhost:8080",
    base_url_env=("TEI_BASE_URL",),
    api_key_env=("HF_TOKEN", "HF_API_TOKEN"),
    api_key_required=False,
    operations=frozenset({"embed", "rerank", "openai_embed", "health", "info"}),
    features={"embed": frozenset()},  # no tools, response formats or images
    options=TEIOptions,
)


@hookimpl
def backend_info() -> BackendInfo:
    """TEI: default base URL, env vars, operations and the endpoint options."""
    return _INFO


class _Rank(msgspec.Struct):
    """One ``/rerank`` answer row (``Rank``): the text's position and its score."""

    index: int
    score: float


_Object = dict[str, Any]
"""An answer returned whole (``invoke("info")``, ``invoke("openai_embed")``): it only has
to be a JSON object."""


def _rerank_result(resp: Response) -> InvokeResult:
    # the typed decode checked every row; the user gets the rows as the server sent them
    # (``text`` with ``return_text``, any extra fields)
    return InvokeResult(data=decode_json(resp.content), usage=header_usage(resp.headers))


def _object_result(resp: Response) -> InvokeResult:
    data: _Object = resp.data
    return InvokeResult(data=data)


def _health(resp: Response) -> InvokeResult:
    # 200 with an empty body means healthy; 503 never gets here, it raises OverloadedError
    return InvokeResult(data={"healthy": True, "status": resp.status})


def _openai_embed_body(call: Call) -> dict[str, Any]:
    params = dict(call.params)
    if "input" not in params and "inputs" in params:
        params["input"] = params.pop("inputs")
    if call.model and "model" not in params:
        params["model"] = call.model
    return params


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The TEI exchange (or the first of a chain) for one call."""
    auth = openai_compat.bearer_headers(endpoint)
    op = call.operation
    if op == "embed":
        return embed_exchange(call, endpoint, headers=auth)
    if op == "rerank":
        return Exchange(path="/rerank", json=dict(call.params), headers=auth,
                        parse=_rerank_result, response_type=list[_Rank])
    if op == "openai_embed":
        # data is the whole body, vectors included, as a dict: decoded once, generically
        return Exchange(path="/v1/embeddings", json=_openai_embed_body(call), headers=auth,
                        parse=_object_result, response_type=_Object)
    if op == "health":
        return Exchange(method="GET", path="/health", headers=auth, parse=_health)
    if op == "info":
        return Exchange(method="GET", path="/info", headers=auth, parse=_object_result,
                        response_type=_Object)
    raise UnsupportedOperationError(f"hf_tei has no operation {op!r}")


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Usage of a ``/v1/embeddings`` body (``usage.prompt_tokens``); ``None`` otherwise.

    ``/embed`` and ``/rerank`` answer bare lists: their parsers read ``x-compute-tokens``.
    """
    if operation in ("rerank", "health", "info") or isinstance(data, list | Info):
        return None
    return openai_compat.parse_usage(data)


_CONTEXT = re.compile(r"must have less than \d+ tokens|too long|exceeds? .*(max|context)",
                      re.IGNORECASE)


def _error_type(data: Any) -> str | None:
    if isinstance(data, dict):
        value = data.get("error_type")
        if isinstance(value, str):
            return value
        if value is not None:
            return str(value)
    return None


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """TEI's errors over the default: 429 Overloaded and 503 retried; 413 and 400/422 not
    (context length when an input has too many tokens); 424 backend errors not retried."""
    c = default_classification(failure)
    if failure.exception is not None:
        return c
    error_type = _error_type(failure.data)
    if error_type:
        c.code = error_type
    kind = (error_type or "").lower()
    status = failure.status or 0
    if kind in ("overloaded", "unhealthy") or status in (429, 503):
        c.kind, c.retryable = ErrorKind.OVERLOADED, True
    elif kind == "backend" or status == 424:
        c.kind, c.retryable = ErrorKind.SERVER, False
    elif kind in ("validation", "tokenizer", "empty") or status in (400, 413, 422):
        context = _CONTEXT.search(c.message) is not None
        c.kind = ErrorKind.CONTEXT_LENGTH if context else ErrorKind.BAD_REQUEST
        c.retryable = False
    return c

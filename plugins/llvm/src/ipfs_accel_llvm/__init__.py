"""ipfs-accel backend for the generic "LLVM API server" REST contract.

The contract (no public product implements it; this package's ``openapi.json``,
:data:`OPENAPI_PATH`, writes it down) serves models under ``/models/{id}``:
``GET /models``, ``GET /models/{id}``, ``POST /models/{id}/infer`` ``{input, parameters}``,
``POST /models/{id}/batch_infer`` ``{inputs, parameters}`` -> ``{results}``, ``GET /status``
and ``POST /models/{id}/reload``. Errors are ``{"error": ...}``.

Operations: ``generate`` (the prompt is the ``input``), ``chat`` (the messages rendered into
one prompt, see :func:`render_chat`), and through ``invoke``: ``infer``, ``batch_infer``,
``list_models``, ``model_info``, ``status`` and ``reload``. Every call is one request sent
at once: there is no client-side batching, so no request ever waits for a batch to fill.

The model goes into the path: the one named on the call or the endpoint, as given, else
``default``. ``finish_reason`` is one of :data:`ipfs_accel.FINISH_REASONS`; the server's own
value is in ``native_finish_reason``.

The contract is text in, text out: ``BackendInfo.features`` declares that ``chat`` and
``generate`` take no tools, no ``response_format`` (``json_schema``, ``json_object``) and no
``image_url`` parts, so the core refuses a call carrying any of them (or a tool turn in the
messages) with a ``ConfigurationError`` naming it, before anything is sent. Results carry
no tool calls; ``ChatResult.message`` is the plain assistant turn.

Billed tokens: the optional ``usage`` object, ``prompt_tokens`` (or ``input_tokens``) as
input and ``completion_tokens`` (or ``output_tokens``) as output; the contract defines
total as input + output and reports no reasoning tokens.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    Usage,
    hookimpl,
)

from ._case import conformance_case as conformance_case  # the kit's optional hook
from ._request import DEFAULT_MODELS, OPERATIONS, build_exchange, render_chat
from ._response import classify, read_usage

__all__ = [
    "OPENAPI_PATH",
    "backend_info",
    "classify_error",
    "parse_usage",
    "render_chat",
    "send",
]

OPENAPI_PATH: Path = Path(str(resources.files(__name__).joinpath("openapi.json")))
"""The OpenAPI 3.0 document of the REST contract this plugin speaks (shipped in the wheel)."""

_INFO = BackendInfo(
    name="llvm",
    description="generic LLVM API server REST contract (/models/{id}/infer)",
    provider="llvm.api_server",  # the contract's own name, openapi.json's title
    default_base_url="http://localhost:8090",
    base_url_env=("LLVM_API_URL", "LLVM_BASE_URL"),
    api_key_env=("LLVM_API_KEY",),
    api_key_required=False,
    default_models=DEFAULT_MODELS,
    operations=OPERATIONS,
    # text in, text out: the core refuses tools, response formats and images before sending
    features={"chat": frozenset(), "generate": frozenset()},
)


@hookimpl
def backend_info() -> BackendInfo:
    """Name ``llvm``; base URL from ``LLVM_API_URL`` / ``LLVM_BASE_URL``; key ``LLVM_API_KEY``."""
    return _INFO


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The request for one call, with ``Authorization: Bearer`` when the endpoint has a key."""
    return build_exchange(call, endpoint)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Token usage from the body's optional ``usage`` object."""
    return read_usage(data)


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """Classify an error answer (``{"error": ...}``) or a transport failure; never raises."""
    return classify(failure)

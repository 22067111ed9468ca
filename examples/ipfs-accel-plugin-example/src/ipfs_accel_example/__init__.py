"""An example third-party ipfs-accel backend for the (made-up) Parrot API.

The Parrot API has one route, ``POST /v1/reply`` with ``{"model", "prompt"}``, answering
``{"reply": "...", "model": "...", "tokens": {"in": 3, "out": 2}}``. The key travels in
``X-Parrot-Key``; errors are ``{"error": {"message": ..., "code": ...}}``; 429 and 503 may
carry ``Retry-After``. The plugin only translates: the core queues, retries, counts and
propagates request IDs. ``docs/writing-a-plugin.md`` walks through this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipfs_accel import (
    BackendInfo,
    Call,
    ChatResult,
    Classification,
    EndpointConfig,
    ErrorKind,
    Exchange,
    Failure,
    Response,
    Usage,
    default_classification,
    hookimpl,
)

if TYPE_CHECKING:
    from ipfs_accel import Backend
    from ipfs_accel.testing import Case

__all__ = ["backend_info", "classify_error", "conformance_case", "parse_usage", "send"]


@hookimpl
def backend_info() -> BackendInfo:
    """The example backend: its name, defaults, env vars and operations."""
    return BackendInfo(
        name="example",
        description="The made-up Parrot API (an example third-party plugin).",
        provider="parrot",
        default_base_url="http://localhost:8765",
        base_url_env=("PARROT_BASE_URL",),
        api_key_env=("PARROT_API_KEY",),
        default_model="parrot-1",
        operations=frozenset({"chat", "generate"}),
        request_id_header="X-Request-ID",
        server_request_id_headers=("x-parrot-request-id",),
    )


def _prompt(call: Call) -> str:
    if call.prompt is not None:
        return call.prompt
    return "\n".join(str(m.get("content", "")) for m in call.messages or [])


def _parse(resp: Response) -> ChatResult:
    data = resp.data
    return ChatResult(text=data["reply"], model=data.get("model"), finish_reason="stop", raw=data)


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """One call as the Parrot API's ``POST /v1/reply``, with this endpoint's key."""
    headers = {}
    if endpoint.api_key is not None:
        headers["x-parrot-key"] = endpoint.api_key.reveal()
    body: dict[str, Any] = {"model": call.model, "prompt": _prompt(call)}
    if "max_tokens" in call.params:
        body["max_words"] = call.params["max_tokens"]
    return Exchange(path="/v1/reply", json=body, headers=headers, parse=_parse)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Tokens from the answer's ``tokens: {in, out}``."""
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, dict):
        return None
    given, taken = tokens.get("in"), tokens.get("out")
    return Usage(
        input_tokens=given if isinstance(given, int) else 0,
        output_tokens=taken if isinstance(taken, int) else 0,
    )


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """The core's default, plus the Parrot API's ``code`` (``out_of_seeds`` is quota)."""
    c = default_classification(failure)
    data = failure.data
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str):
        c.code = code
        if code == "out_of_seeds":
            c.kind, c.retryable = ErrorKind.QUOTA_EXCEEDED, False
    return c


def _chat(backend: Backend, endpoint_id: str, request_id: str) -> Any:
    return backend.chat([{"role": "user", "content": "Polly?"}], endpoint_id=endpoint_id,
                        request_id=request_id)


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs_accel.testing`` and ``ipfs-accel report`` drive this backend."""
    from ipfs_accel.testing import Case, Reply  # noqa: PLC0415 - the kit loads only here

    return Case(
        backend="example",
        success=Reply(200, json={"reply": "Polly!", "model": "parrot-1",
                                 "tokens": {"in": 3, "out": 2}}),
        tokens=(3, 2),
        auth=("x-parrot-key", "{key}"),
        request_id_header="x-request-id",
        call=_chat,
    )

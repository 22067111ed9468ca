"""The default error classification every backend starts from, and the server's message.

A plugin's ``classify_error`` hook refines :func:`default_classification`; the core turns
the classification into an exception (``_errors.ERROR_CLASSES``) and the retry loop reads
whether it is retryable and how long the server asked to wait.
"""

from __future__ import annotations

from typing import Any

from ._backoff import parse_retry_after
from ._errors import ErrorKind
from ._types import Classification, Failure

__all__ = ["default_classification", "error_message", "kind_from_message"]

# Wording of the APIs and of the proxies that relay them (LiteLLM, gateways), lower case.
_MESSAGE_KINDS: tuple[tuple[ErrorKind, tuple[str, ...]], ...] = (
    (ErrorKind.QUOTA_EXCEEDED, (
        "exceeded your current quota", "insufficient_quota", "insufficient quota",
        "credit balance is too low",
    )),
    (ErrorKind.CONTEXT_LENGTH, (
        "maximum context length", "context window", "context_length_exceeded",
        "context length exceeded", "prompt is too long", "input is too long",
        "exceeds the context", "too many tokens in the prompt",
    )),
    (ErrorKind.RATE_LIMITED, ("rate limit", "rate_limit", "too many requests")),
)


_STATUS_KINDS: dict[int, tuple[ErrorKind, bool]] = {
    400: (ErrorKind.BAD_REQUEST, False),
    401: (ErrorKind.AUTH, False),
    403: (ErrorKind.AUTH, False),
    404: (ErrorKind.NOT_FOUND, False),
    408: (ErrorKind.TIMEOUT, True),
    409: (ErrorKind.SERVER, True),  # lock contention: the vendor SDKs retry it too
    413: (ErrorKind.BAD_REQUEST, False),
    422: (ErrorKind.BAD_REQUEST, False),
    429: (ErrorKind.RATE_LIMITED, True),
    503: (ErrorKind.OVERLOADED, True),
    529: (ErrorKind.OVERLOADED, True),
}


def error_message(data: Any, content: bytes = b"") -> str:
    """The server's message from an error body of the usual shapes.

    Knows ``{"error": {"message": ...}}`` (OpenAI, Anthropic, Gemini, Groq),
    ``{"error": "..."}`` (TGI, TEI, Ollama, OVMS), ``{"message": ...}`` and ``{"detail": ...}``;
    otherwise the start of the body as text.
    """
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            msg = err.get("message")
            if isinstance(msg, str):
                return msg
        if isinstance(err, str):
            return err
        for key in ("message", "detail"):
            msg = data.get(key)
            if isinstance(msg, str):
                return msg
    if isinstance(data, str):
        return data[:500]
    return content[:500].decode("utf-8", "replace").strip()


def kind_from_message(message: str | None) -> ErrorKind | None:
    """What an error message says the failure is, where its wording is unmistakable:
    ``QUOTA_EXCEEDED`` ("exceeded your current quota"), ``CONTEXT_LENGTH`` ("maximum context
    length", "context window", "prompt is too long"), ``RATE_LIMITED`` ("rate limit");
    ``None`` otherwise. For plugins whose error codes are missing or relayed as HTTP
    statuses by a proxy."""
    if not message:
        return None
    low = message.lower()
    for kind, words in _MESSAGE_KINDS:
        if any(word in low for word in words):
            return kind
    return None


def default_classification(failure: Failure) -> Classification:
    """The classification every backend starts from; plugins refine it.

    Transport errors and timeouts are retried, except a request that could not be written
    (``LocalProtocolError``); statuses map through the usual table (429,
    408, 409, 5xx retried; other 4xx not); ``x-should-retry: true/false`` overrides;
    Retry-After is read from the headers. Never raises.
    """
    exc = failure.exception
    if exc is not None:
        import httpx2  # noqa: PLC0415 - only failures need it; keeps discovery light

        if isinstance(exc, httpx2.TimeoutException):
            return Classification(
                kind=ErrorKind.TIMEOUT, retryable=True, message=f"timed out ({type(exc).__name__})"
            )
        if isinstance(exc, httpx2.LocalProtocolError):
            # the request could not even be written (a header the plugin built is illegal):
            # the same request fails the same way, so sending it again only wastes time
            return Classification(
                kind=ErrorKind.TRANSPORT, retryable=False,
                message=f"the request could not be sent as built ({type(exc).__name__}: {exc})",
            )
        return Classification(
            kind=ErrorKind.TRANSPORT,
            retryable=True,
            message=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        )
    status = failure.status or 0
    if failure.in_stream:
        kind, retryable = ErrorKind.SERVER, False
    elif status in _STATUS_KINDS:
        kind, retryable = _STATUS_KINDS[status]
    elif status >= 500:
        kind, retryable = ErrorKind.SERVER, True
    elif 200 <= status < 300:
        kind, retryable = ErrorKind.RESPONSE, False
    else:
        kind, retryable = ErrorKind.BAD_REQUEST, False
    headers = failure.headers
    should = headers.get("x-should-retry")
    if should == "true":
        retryable = True
    elif should == "false":
        retryable = False
    return Classification(
        kind=kind,
        retryable=retryable,
        message=error_message(failure.data, failure.content) or f"HTTP {status}",
        retry_after=parse_retry_after(headers),
    )

"""Anthropic's errors: ``{"type": "error", "error": {"type", "message"}}`` into the core's kinds.

Error bodies are read field by field from the generic decode, never as a Struct: they come
from whatever stands in front of the API (a gateway, a proxy relaying another vendor's
wording, a load balancer) as often as from the API, and classification never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ipfs_accel import (
    Classification,
    ErrorKind,
    Failure,
    default_classification,
    kind_from_message,
)

__all__ = ["ERROR_STATUS", "classify", "error_fields"]


def error_fields(data: Any) -> tuple[str | None, str | None, str | None]:
    """``(type, message, code)`` of ``{"type": "error", "error": {"type", "message"}}``;
    ``code`` is what a proxy may add there (often an HTTP status, ``"429"``), as text."""
    if not isinstance(data, Mapping):
        return None, None, None
    err = data.get("error")
    if not isinstance(err, Mapping):
        return None, None, None
    kind, message, code = err.get("type"), err.get("message"), err.get("code")
    return (kind if isinstance(kind, str) else None,
            message if isinstance(message, str) else None,
            str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None)


# error type -> (kind, retryable); the status decides for types not listed here
_TYPES: dict[str, tuple[ErrorKind, bool]] = {
    "invalid_request_error": (ErrorKind.BAD_REQUEST, False),
    "request_too_large": (ErrorKind.BAD_REQUEST, False),
    "authentication_error": (ErrorKind.AUTH, False),
    "permission_error": (ErrorKind.AUTH, False),
    "billing_error": (ErrorKind.QUOTA_EXCEEDED, False),
    "not_found_error": (ErrorKind.NOT_FOUND, False),
    "rate_limit_error": (ErrorKind.RATE_LIMITED, True),
    "api_error": (ErrorKind.SERVER, True),
    "overloaded_error": (ErrorKind.OVERLOADED, True),
    # a 504 from Anthropic's side: an HTTP answer, so a server error rather than our timeout
    "timeout_error": (ErrorKind.SERVER, True),
}

ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status the API answers each error ``type`` with (its errors page): what a
batch's ``errored`` item, which carries the body but no status, is classified as."""

# a proxy's error code that is an HTTP status, for an error event inside a 200 stream
_STATUS_CODES: dict[str, tuple[ErrorKind, bool]] = {
    "429": (ErrorKind.RATE_LIMITED, True),
    "529": (ErrorKind.OVERLOADED, True),
    "503": (ErrorKind.OVERLOADED, True),
}

# Anthropic's own wordings beyond the core's (kind_from_message)
_CONTEXT = re.compile(r"exceed(?:s|ed)? (?:the )?context (?:limit|window)", re.IGNORECASE)

# where a message saying "too long" is believed: a refused request (a proxy may relay it
# as any 4xx or as a 500), never a 429 or an overload
_REQUEST_KINDS = frozenset({ErrorKind.BAD_REQUEST, ErrorKind.SERVER, ErrorKind.NOT_FOUND})


def classify(failure: Failure) -> Classification:
    """Anthropic's error semantics over the default classification.

    The body's ``error.type`` decides the kind (a 529 ``overloaded_error`` is overloaded,
    a ``billing_error`` is out of quota, an ``error`` event mid-stream keeps its type, so
    a ``rate_limit_error`` or ``overloaded_error`` event before any chunk is retried);
    ``x-should-retry`` from the server has the last word on retrying those. Where the type
    is missing or unknown (a proxy's body, a ``code`` that is an HTTP status) an error event
    in a stream with code ``"429"`` is rate limited and ``"529"``/``"503"`` overloaded.
    Then the message, whatever the type: quota wording ("credit balance is too low",
    "exceeded your current quota") is out of quota, never retried; "prompt is too long",
    "context window"... on a refused request is a context-length error
    (:func:`ipfs_accel.kind_from_message`, relayed upstream wording included).
    """
    c = default_classification(failure)
    kind, message, code = error_fields(failure.data)
    said = kind_from_message(message)
    if kind is not None and kind in _TYPES:
        c.kind, c.retryable = _TYPES[kind]
        should = failure.headers.get("x-should-retry")
        if should in ("true", "false"):
            c.retryable = should == "true"
    elif failure.in_stream and code in _STATUS_CODES:
        c.kind, c.retryable = _STATUS_CODES[code]
    elif failure.in_stream and said is ErrorKind.RATE_LIMITED:
        c.kind, c.retryable = ErrorKind.RATE_LIMITED, True
    if said is ErrorKind.QUOTA_EXCEEDED:
        c.kind, c.retryable = ErrorKind.QUOTA_EXCEEDED, False
    elif c.kind in _REQUEST_KINDS and message and (
        said is ErrorKind.CONTEXT_LENGTH or _CONTEXT.search(message)
    ):
        c.kind, c.retryable = ErrorKind.CONTEXT_LENGTH, False
    c.code = kind or code
    if message:
        c.message = message
    return c

"""The OpenAI wire format's errors, read field by field from any body (re-exported by
``openai_compat``): error bodies come from whatever stands in front of the server as often
as from the API, so classification reads what it can and never raises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._classify import default_classification, kind_from_message
from ._errors import ErrorKind
from ._types import Classification, Failure

__all__ = ["classify_error", "error_fields"]

# where a message saying "context length" is believed: a refused request (a proxy may relay
# it as any 4xx, or as a 500), or an error event in a stream; never a 429 or an overload
_REQUEST_KINDS = frozenset({ErrorKind.BAD_REQUEST, ErrorKind.SERVER, ErrorKind.NOT_FOUND})


def error_fields(data: Any) -> tuple[str | None, str | None, str | None]:
    """``(message, type, code)`` from ``{"error": {...}}`` or ``{"error": "...", ...}``.

    Read field by field from a generic body, and total: a field of another type is ``None``
    and the others are still read (see the module docstring for why error bodies are not
    Structs).
    """
    if not isinstance(data, Mapping):
        return None, None, None
    err = data.get("error")
    if isinstance(err, Mapping):
        message, kind, code = err.get("message"), err.get("type"), err.get("code")
        return (
            message if isinstance(message, str) else None,
            kind if isinstance(kind, str) else None,
            str(code) if code is not None else None,
        )
    if isinstance(err, str):
        kind = data.get("error_type") or data.get("type")
        return err, kind if isinstance(kind, str) else None, None
    return None, None, None


_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_RATE_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "tokens", "requests",
                         "429"})


def classify_error(failure: Failure) -> Classification:
    """OpenAI's error semantics over the default classification.

    ``insufficient_quota`` (429) is not retried: waiting does not fix billing.
    ``context_length_exceeded`` becomes a context-length error. Where the code is missing
    or is only an HTTP status (proxies put ``"400"`` or ``"429"`` there), the message
    decides (:func:`~ipfs_accel.kind_from_message`). An error event inside a 200 stream
    that says rate limit is a retryable ``RateLimitError`` (the core makes it final once
    text reached the caller). The error code is kept.
    """
    c = default_classification(failure)
    message, type_, code = error_fields(failure.data)
    code = code or type_
    said = kind_from_message(message)
    if (code in _QUOTA_CODES or type_ == "insufficient_quota"
            or said is ErrorKind.QUOTA_EXCEEDED):
        return Classification(
            kind=ErrorKind.QUOTA_EXCEEDED, retryable=False, message=c.message, code=code
        )
    if code in _CONTEXT_CODES or (
        said is ErrorKind.CONTEXT_LENGTH and c.kind in _REQUEST_KINDS
    ):
        c.kind = ErrorKind.CONTEXT_LENGTH
        c.retryable = False
    elif failure.in_stream and (
        code in _RATE_CODES or type_ in _RATE_CODES or said is ErrorKind.RATE_LIMITED
    ):
        c.kind = ErrorKind.RATE_LIMITED
        c.retryable = True
    if message and not c.message:
        c.message = message
    c.code = code
    return c



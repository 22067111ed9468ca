"""The OpenAI wire format's errors, read field by field from any body (re-exported by
``openai_compat``): error bodies come from whatever stands in front of the server as often
as from the API, so classification reads what it can and never raises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._classify import default_classification
from ._errors import ErrorKind
from ._types import Classification, Failure

__all__ = ["classify_error", "error_fields"]


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


def classify_error(failure: Failure) -> Classification:
    """OpenAI's error semantics over the default classification.

    ``insufficient_quota`` (429) is not retried: waiting does not fix billing.
    ``context_length_exceeded`` becomes a context-length error. The error code is kept.
    """
    c = default_classification(failure)
    message, type_, code = error_fields(failure.data)
    code = code or type_
    if code in ("insufficient_quota", "billing_hard_limit_reached") or type_ == "insufficient_quota":
        return Classification(
            kind=ErrorKind.QUOTA_EXCEEDED, retryable=False, message=c.message, code=code
        )
    if code in _CONTEXT_CODES:
        c.kind = ErrorKind.CONTEXT_LENGTH
        c.retryable = False
    if message and not c.message:
        c.message = message
    c.code = code
    return c



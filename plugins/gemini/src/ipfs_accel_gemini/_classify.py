"""Classifying Gemini errors: ``{"error": {"code", "message", "status", "details"}}``.

``status`` is the google.rpc code name. ``RESOURCE_EXHAUSTED`` (429) is retried after the
``retryDelay`` of a ``google.rpc.RetryInfo`` entry in ``details`` (a Duration such as
``"37s"``); ``UNAVAILABLE`` (503), ``INTERNAL`` (500) and ``DEADLINE_EXCEEDED`` (504) are
retried; ``INVALID_ARGUMENT`` (400, or an invalid API key when ``details`` says
``API_KEY_INVALID``), ``PERMISSION_DENIED`` (403) and ``NOT_FOUND`` (404) are not.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ipfs_accel import Classification, ErrorKind, Failure, default_classification

__all__ = ["classify", "retry_delay"]

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

# google.rpc status names -> (kind, retryable). Unlisted names keep the HTTP status's class.
_STATUS: dict[str, tuple[ErrorKind, bool]] = {
    "INVALID_ARGUMENT": (ErrorKind.BAD_REQUEST, False),
    "FAILED_PRECONDITION": (ErrorKind.BAD_REQUEST, False),
    "OUT_OF_RANGE": (ErrorKind.BAD_REQUEST, False),
    "UNAUTHENTICATED": (ErrorKind.AUTH, False),
    "PERMISSION_DENIED": (ErrorKind.AUTH, False),
    "NOT_FOUND": (ErrorKind.NOT_FOUND, False),
    "RESOURCE_EXHAUSTED": (ErrorKind.RATE_LIMITED, True),
    "ABORTED": (ErrorKind.SERVER, True),
    "INTERNAL": (ErrorKind.SERVER, True),
    "UNKNOWN": (ErrorKind.SERVER, True),
    "UNAVAILABLE": (ErrorKind.OVERLOADED, True),
    "DEADLINE_EXCEEDED": (ErrorKind.SERVER, True),
}
_AUTH_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}
)
# "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576)."
_CONTEXT = re.compile(r"token.{0,40}exceeds|exceeds.{0,40}(?:token|context)", re.IGNORECASE)
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)s\s*")


def _error(data: Any) -> dict[str, Any] | None:
    """The ``error`` object of a body (also of ``[{"error": ...}]``, the non-SSE stream form)."""
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return error
    return None


def _seconds(value: Any) -> float | None:
    """A google.protobuf.Duration as JSON (``"1.5s"``, or ``{"seconds", "nanos"}``)."""
    seconds: float | None = None
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is not None:
            seconds = float(match.group(1))
    elif isinstance(value, dict):
        whole, nanos = value.get("seconds", 0), value.get("nanos", 0)
        if isinstance(whole, str) and whole.isdigit():
            whole = int(whole)
        if isinstance(whole, int | float) and isinstance(nanos, int | float):
            seconds = float(whole) + float(nanos) / 1e9
    # a long wait is kept as said: the endpoint's max_retry_after decides whether to wait it
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def retry_delay(error: dict[str, Any]) -> float | None:
    """The ``retryDelay`` of the first ``RetryInfo`` in ``error["details"]``, in seconds."""
    details = error.get("details")
    if not isinstance(details, list):
        return None
    for entry in details:
        if isinstance(entry, dict) and entry.get("@type") == RETRY_INFO:
            delay = _seconds(entry.get("retryDelay"))
            if delay is not None:
                return delay
    return None


def _reasons(error: dict[str, Any]) -> set[str]:
    details = error.get("details")
    if not isinstance(details, list):
        return set()
    return {
        entry["reason"]
        for entry in details
        if isinstance(entry, dict) and entry.get("@type") == ERROR_INFO
        and isinstance(entry.get("reason"), str)
    }


def classify(failure: Failure) -> Classification:
    """The classification of a failed Gemini exchange. Never raises."""
    c = default_classification(failure)
    if failure.exception is not None:
        return c
    error = _error(failure.data)
    if error is None:
        return c
    message = error.get("message")
    if isinstance(message, str) and message:
        c.message = message
    status = error.get("status")
    if isinstance(status, str) and status:
        c.code = status
        if status in _STATUS:
            c.kind, c.retryable = _STATUS[status]
    if c.kind is ErrorKind.BAD_REQUEST:
        if _reasons(error) & _AUTH_REASONS:
            c.kind = ErrorKind.AUTH
        elif _CONTEXT.search(c.message):
            c.kind = ErrorKind.CONTEXT_LENGTH
    delay = retry_delay(error)
    if delay is not None:
        c.retry_after = delay
    return c

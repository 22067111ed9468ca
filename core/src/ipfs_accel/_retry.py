"""Backoff arithmetic, Retry-After parsing and the default error classification.

The retry loop itself is stamina's (see ``_attempts.py``); this module decides how long each
wait is, so the rule can be tested on its own: delay n (1-based) is
``min(initial * factor**(n-1), max_delay)`` plus jitter up to ``jitter`` of it, never above
``max_delay``; a server's Retry-After replaces it when longer; and no wait may run past the
call's deadline.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import Any

from ._errors import ErrorKind
from ._types import Classification, Failure

__all__ = [
    "backoff_delay",
    "default_classification",
    "error_message",
    "parse_retry_after",
    "plan_wait",
]


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    factor: float,
    max_delay: float,
    jitter: float = 0.0,
    rand: float | None = None,
) -> float:
    """The wait after failed attempt ``attempt`` (1-based), jitter included.

    ``rand`` in [0, 1) replaces the random draw (for tests).
    """
    try:
        base = min(initial * factor ** (attempt - 1), max_delay)
    except OverflowError:
        base = max_delay
    draw = random.random() if rand is None else rand  # noqa: S311 - jitter, not crypto
    return min(base * (1.0 + jitter * draw), max_delay)


def plan_wait(
    attempt: int,
    *,
    initial: float,
    factor: float,
    max_delay: float,
    jitter: float,
    retry_after: float | None,
    remaining: float | None,
    rand: float | None = None,
    max_retry_after: float | None = None,
) -> float | None:
    """How long to wait before the next attempt, or ``None`` to give up now.

    A server's ``retry_after`` longer than the backoff wins, unless it is longer than
    ``max_retry_after``: then ``None``, since a caller is better told at once than parked
    for hours. ``None`` too when the wait would end past the call's deadline (``remaining``
    seconds left): failing fast beats sleeping into a timeout.
    """
    if retry_after is not None and max_retry_after is not None and retry_after > max_retry_after:
        return None
    wait = backoff_delay(
        attempt, initial=initial, factor=factor, max_delay=max_delay, jitter=jitter, rand=rand
    )
    if retry_after is not None and retry_after > wait:
        wait = retry_after
    if remaining is not None and wait >= remaining:
        return None
    return wait


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, then ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date. Anything unreadable,
    negative or not finite counts as not said; a long wait is returned as it is (the
    endpoint's ``max_retry_after`` decides whether to wait that long).
    """
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if 0 <= ms < math.inf:
            return ms / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        seconds = max(seconds, 0.0)
    if not (0 <= seconds < math.inf):
        return None
    return seconds


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

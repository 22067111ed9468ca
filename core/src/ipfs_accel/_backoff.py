"""Backoff arithmetic and Retry-After parsing: how long each wait between attempts is.

Delay n (1-based) is ``min(initial * factor**(n-1), max_delay)`` plus jitter up to
``jitter`` of it, never above ``max_delay``; a server's Retry-After replaces it when longer
(unless longer than the endpoint's cap); and no wait may run past the call's deadline. The
loop that waits is stamina's, in ``_retry.py``; this module only decides, so the rule can be
tested on its own.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import re
import time
from collections.abc import Mapping

__all__ = ["backoff_delay", "parse_count", "parse_reset", "parse_retry_after", "plan_wait"]


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


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?"
                       r"(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")


def parse_count(value: str | None) -> int | None:
    """A rate-limit count from a header value (``x-ratelimit-remaining-requests: 4999``):
    ASCII digits, spaces around allowed, else ``None``; never raises."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def parse_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from now until a rate-limit budget resets, from a header value.

    Reads the forms APIs send: a duration (``6m0s``, ``1s``, ``20ms``, ``1h2m3.5s``, as
    OpenAI and Groq do), a plain number of seconds, or an RFC 3339 time (``2026-11-30T13:00:
    00Z``, as Anthropic does; ``now`` is the current ``time.time()``, for tests). A time in
    the past is 0; anything unreadable, negative or not finite is ``None``. Never raises.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < math.inf else None
    match = _DURATION.fullmatch(text)
    if match is not None and any(match.groups()):
        h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s + ms / 1000
        return seconds if seconds < math.inf else None
    return _until(text, now)


def _until(text: str, now: float | None) -> float | None:
    """Seconds until an RFC 3339 time (0 when past; ``None`` when unreadable)."""
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)

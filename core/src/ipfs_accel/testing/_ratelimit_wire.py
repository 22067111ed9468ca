"""How the :class:`FaultServer`'s rate limiter speaks: budget headers in a vendor's style,
and the 429 a refused request gets (see ``_ratelimit`` for the limiter itself)."""

from __future__ import annotations

import datetime
import math
from typing import Literal, NamedTuple, TypeAlias

from ._actions import Reply

__all__ = ["HeaderStyle", "Snapshot", "budget_headers", "go_duration", "refusal", "rfc3339"]

HeaderStyle: TypeAlias = Literal["openai", "anthropic"] | None
"""Which headers carry the budgets: OpenAI's (and Groq's), Anthropic's, or none."""

_UNITS = {"requests": ("requests per min (RPM)", "request"),
          "tokens": ("tokens per min (TPM)", "tokens")}


class Snapshot(NamedTuple):
    """One budget as a response reports it: its limit, whole units left, seconds until whole."""

    limit: int
    remaining: int
    reset: float


def _ms(seconds: float) -> int:
    """Whole milliseconds, rounded up (float noise such as 0.1 * 1000 aside)."""
    return max(math.ceil(round(seconds * 1000, 6)), 0)


def go_duration(seconds: float) -> str:
    """A duration as OpenAI writes one (Go's form): ``0s``, ``120ms``, ``7.66s``, ``1m0s``,
    ``1h0m0s``; rounded up to the millisecond, so a client that waits it is never early."""
    ms = _ms(seconds)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rfc3339(wall: float) -> str:
    """A ``time.time()`` value as an RFC 3339 UTC time to the millisecond, rounded up."""
    ms = _ms(wall)
    when = datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC)
    when += datetime.timedelta(milliseconds=ms % 1000)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def budget_headers(
    style: HeaderStyle, wall: float, *, requests: Snapshot | None, tokens: Snapshot | None
) -> dict[str, str]:
    """The headers that report ``requests`` and ``tokens`` (either may be ``None``) in
    ``style``; ``wall`` is the current ``time.time()`` (Anthropic's resets are times)."""
    headers: dict[str, str] = {}
    for name, budget in (("requests", requests), ("tokens", tokens)):
        if budget is None:
            continue
        if style == "openai":
            headers[f"x-ratelimit-limit-{name}"] = str(budget.limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(budget.remaining)
            headers[f"x-ratelimit-reset-{name}"] = go_duration(budget.reset)
        elif style == "anthropic":
            headers[f"anthropic-ratelimit-{name}-limit"] = str(budget.limit)
            headers[f"anthropic-ratelimit-{name}-remaining"] = str(budget.remaining)
            headers[f"anthropic-ratelimit-{name}-reset"] = rfc3339(wall + budget.reset)
    return headers


def refusal(
    style: HeaderStyle,
    headers: dict[str, str],
    *,
    budget: Literal["requests", "tokens"],
    limit: int,
    requested: int,
    wait: float | None,
) -> Reply:
    """The 429 for a request ``budget`` had no room for: ``retry-after`` (whole seconds,
    rounded up) and ``retry-after-ms`` after ``wait`` seconds, or, with ``wait=None`` (a
    request larger than the budget can ever hold), ``x-should-retry: false``. The body is
    OpenAI's error shape, or Anthropic's with the ``"anthropic"`` style."""
    per_min, unit = _UNITS[budget]
    out = dict(headers)
    if wait is None:
        message = (f"FaultServer: request too large for {per_min}: "
                   f"Limit {limit}, Requested {requested} {unit}.")
        out["x-should-retry"] = "false"
    else:
        message = (f"FaultServer: rate limit reached for {per_min}: Limit {limit}, "
                   f"Requested {requested} {unit}. Please try again in {go_duration(wait)}.")
        out["retry-after"] = str(max(math.ceil(_ms(wait) / 1000), 1))
        out["retry-after-ms"] = str(_ms(wait))
    if style == "anthropic":
        body: dict[str, object] = {
            "type": "error", "error": {"type": "rate_limit_error", "message": message}
        }
    else:
        body = {"error": {"message": message, "type": budget, "param": None,
                          "code": "rate_limit_exceeded"}}
    return Reply(429, json=body, headers=out)

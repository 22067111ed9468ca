"""The OpenAI wire format's rate-limit headers (re-exported by ``openai_compat``).

OpenAI, and Groq after it, send on every response (success or error) two budgets as three
headers each::

    x-ratelimit-limit-requests: 5000        x-ratelimit-limit-tokens: 160000
    x-ratelimit-remaining-requests: 4999    x-ratelimit-remaining-tokens: 159976
    x-ratelimit-reset-requests: 12ms        x-ratelimit-reset-tokens: 6m0s

The counts are whole numbers; the resets are durations (``6m0s``, ``1s``, ``20ms``,
``7.66s``) until the budget is whole again. The counts are the API's own: OpenAI's
requests budget is per minute, Groq's is per day (its tokens budget per minute).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._backoff import parse_count, parse_reset
from ._types import RateLimits

__all__ = ["openai_rate_limits"]


def openai_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """The ``x-ratelimit-*`` headers as :class:`~ipfs_accel.RateLimits`, for the
    ``parse_rate_limits`` hook of a backend that sends them.

    ``headers`` is case-insensitive (as the core passes it) or has lower-case names. A value
    that cannot be read (not a whole number, not a duration) leaves its field ``None``;
    when no field can be read at all, the answer is ``None``. Never raises.
    """
    try:
        values = [headers.get(name) for name in _NAMES]
        if values == _NONE:  # a server that sends none of them (a proxy, a local server)
            return None
        rl, rr, rs, tl, tr, ts = values
        limits = RateLimits(
            requests_limit=parse_count(rl),
            requests_remaining=parse_count(rr),
            requests_reset=parse_reset(rs),
            tokens_limit=parse_count(tl),
            tokens_remaining=parse_count(tr),
            tokens_reset=parse_reset(ts),
        )
    except (TypeError, AttributeError):  # a mapping holding something other than text
        return None
    return limits if limits != _NOTHING else None


_NAMES = tuple(f"x-ratelimit-{what}-{budget}" for budget in ("requests", "tokens")
               for what in ("limit", "remaining", "reset"))
_NONE = [None] * len(_NAMES)
_NOTHING = RateLimits()

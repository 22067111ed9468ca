"""The groq plugin's parse_rate_limits: Groq's x-ratelimit-* headers (requests per day)."""

from __future__ import annotations

import math

import httpx2
import ipfs_accel_groq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import RateLimits, Registry
from ipfs_accel.testing import strategies
from ipfs_accel_groq import parse_rate_limits

NAMES = tuple(f"x-ratelimit-{part}-{budget}" for part in ("limit", "remaining", "reset")
              for budget in ("requests", "tokens"))

# The example on Groq's rate-limits page (a 429): requests are counted per day (RPD),
# tokens per minute (TPM).
DOCUMENTED = {
    "retry-after": "2",
    "x-ratelimit-limit-requests": "14400",
    "x-ratelimit-limit-tokens": "18000",
    "x-ratelimit-remaining-requests": "14370",
    "x-ratelimit-remaining-tokens": "17997",
    "x-ratelimit-reset-requests": "2m59.56s",
    "x-ratelimit-reset-tokens": "7.66s",
}


def test_documented_headers() -> None:
    """The documented set: the day's requests budget and the minute's tokens budget, as sent."""
    limits = parse_rate_limits(DOCUMENTED)
    assert limits is not None
    assert (limits.requests_limit, limits.requests_remaining) == (14400, 14370)
    assert (limits.tokens_limit, limits.tokens_remaining) == (18000, 17997)
    assert limits.requests_reset == pytest.approx(179.56)
    assert limits.tokens_reset == pytest.approx(7.66)


def test_case_insensitive_and_partial() -> None:
    """Case-insensitive headers; a budget not sent stays None."""
    headers = httpx2.Headers({"X-RateLimit-Remaining-Tokens": "0", "X-RateLimit-Reset-Tokens": "1s"})
    assert parse_rate_limits(headers) == RateLimits(tokens_remaining=0, tokens_reset=1.0)


def test_no_headers_and_garbage() -> None:
    """No rate-limit headers, or only unreadable ones, is None; one bad value skips its field."""
    assert parse_rate_limits({"retry-after": "2"}) is None
    assert parse_rate_limits(dict.fromkeys(NAMES, "soon")) is None
    limits = parse_rate_limits({**DOCUMENTED, "x-ratelimit-reset-tokens": "7.66 s",
                                "x-ratelimit-limit-requests": "14,400"})
    assert limits is not None
    assert limits.tokens_reset is None and limits.requests_limit is None
    assert limits.requests_remaining == 14370


def test_registered_hook() -> None:
    """The registry sees the hook and reads the headers through it."""
    hooks = Registry(plugins=[ipfs_accel_groq], entry_points=False).hooks("groq")
    assert hooks.reads_rate_limits
    assert hooks.parse_rate_limits(DOCUMENTED) == parse_rate_limits(DOCUMENTED)


@settings(max_examples=300, deadline=None)
@given(strategies.headers(names=NAMES, max_size=8)
       | st.dictionaries(st.sampled_from(NAMES), st.text(), max_size=6))
def test_any_headers_never_raise(headers: dict[str, str]) -> None:
    """Any header dict gives None or RateLimits of non-negative counts and finite resets."""
    limits = parse_rate_limits(headers)
    assert limits is None or isinstance(limits, RateLimits)
    if limits is not None:
        assert limits != RateLimits()
        for reset in (limits.requests_reset, limits.tokens_reset):
            assert reset is None or (math.isfinite(reset) and reset >= 0)
        for count in (limits.requests_limit, limits.requests_remaining,
                      limits.tokens_limit, limits.tokens_remaining):
            assert count is None or count >= 0

"""The openai plugin's parse_rate_limits: OpenAI's x-ratelimit-* headers into RateLimits."""

from __future__ import annotations

import math

import httpx2
import ipfs_accel_openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import RateLimits, Registry
from ipfs_accel.openai_compat import openai_rate_limits
from ipfs_accel.testing import strategies
from ipfs_accel_openai import parse_rate_limits

NAMES = tuple(f"x-ratelimit-{part}-{budget}" for part in ("limit", "remaining", "reset")
              for budget in ("requests", "tokens"))

# The example on OpenAI's rate-limits guide: 60 RPM, 150k TPM.
DOCUMENTED = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}


def test_documented_headers() -> None:
    """The rate-limit guide's example headers become every field, resets in seconds."""
    assert parse_rate_limits(DOCUMENTED) == RateLimits(
        requests_limit=60, requests_remaining=59, requests_reset=1.0,
        tokens_limit=150000, tokens_remaining=149984, tokens_reset=360.0,
    )


def test_millisecond_resets_and_extra_headers() -> None:
    """Resets in ms (``12ms``) and fractional seconds (``7.66s``) are read; OpenAI's other
    ``x-ratelimit-*`` variants (``*-tokens_usage_based``) are not taken for the budgets."""
    headers = {
        "x-ratelimit-limit-requests": "5000", "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-reset-requests": "12ms", "x-ratelimit-limit-tokens": "160000",
        "x-ratelimit-remaining-tokens": "159976", "x-ratelimit-reset-tokens": "7.66s",
        "x-ratelimit-limit-tokens_usage_based": "1", "x-ratelimit-remaining-tokens_usage_based": "0",
        "x-ratelimit-reset-tokens_usage_based": "9ms",
    }
    limits = parse_rate_limits(headers)
    assert limits is not None
    assert limits.requests_reset == pytest.approx(0.012)
    assert limits.tokens_reset == pytest.approx(7.66)
    assert (limits.tokens_limit, limits.tokens_remaining) == (160000, 159976)


def test_case_insensitive_headers() -> None:
    """Read from a case-insensitive mapping (as the core passes httpx's headers), whatever
    case the server wrote the names in."""
    headers = httpx2.Headers({"X-RateLimit-Remaining-Requests": "0",
                              "X-RateLimit-Reset-Requests": "20ms"})
    assert parse_rate_limits(headers) == RateLimits(requests_remaining=0, requests_reset=0.02)


def test_partial_headers() -> None:
    """Only some headers (a proxy that forwards the tokens budget only): the rest is None."""
    assert parse_rate_limits({"x-ratelimit-remaining-tokens": "10",
                              "content-type": "application/json"}) == RateLimits(
        tokens_remaining=10)


def test_no_headers_is_none() -> None:
    """A response without x-ratelimit-* headers (a local server) says nothing: None."""
    assert parse_rate_limits({}) is None
    assert parse_rate_limits({"retry-after": "1", "x-request-id": "req_1"}) is None


@pytest.mark.parametrize("value", ["", " ", "abc", "-1", "1.5", "nan", "inf", "1e3", "0x10",
                                   "6m0x", "ms", "-5s", "1e400s", "9" * 400 + "h", "١٢"])
def test_garbage_values_are_skipped(value: str) -> None:
    """A value that is not a whole number (counts) or a duration (resets) leaves its field
    None; with nothing readable at all, the answer is None."""
    headers = dict.fromkeys(NAMES, value)
    limits = parse_rate_limits(headers)
    if limits is not None:  # some garbage counts still read as a reset ("1.5" seconds)
        assert limits.requests_limit is None and limits.tokens_remaining is None
        assert limits.requests_reset is not None and math.isfinite(limits.requests_reset)
    garbled = {**DOCUMENTED, "x-ratelimit-remaining-requests": value}
    assert parse_rate_limits(garbled) == RateLimits(
        requests_limit=60, requests_reset=1.0, tokens_limit=150000,
        tokens_remaining=149984, tokens_reset=360.0,
    )


def test_registered_hook_and_shared_function() -> None:
    """The plugin implements the hook, and reads the headers as openai_compat does."""
    hooks = Registry(plugins=[ipfs_accel_openai], entry_points=False).hooks("openai")
    assert hooks.reads_rate_limits
    assert hooks.parse_rate_limits(DOCUMENTED) == openai_rate_limits(DOCUMENTED)


@settings(max_examples=300, deadline=None)
@given(strategies.headers(names=NAMES, max_size=8)
       | st.dictionaries(st.sampled_from(NAMES), st.text(), max_size=6))
def test_any_headers_never_raise(headers: dict[str, str]) -> None:
    """Any header dict gives None or RateLimits of non-negative counts and finite resets."""
    limits = parse_rate_limits(headers)
    assert limits is None or isinstance(limits, RateLimits)
    if limits is not None:
        for name in ("requests_limit", "requests_remaining", "tokens_limit", "tokens_remaining"):
            value = getattr(limits, name)
            assert value is None or (isinstance(value, int) and value >= 0)
        for reset in (limits.requests_reset, limits.tokens_reset):
            assert reset is None or (math.isfinite(reset) and reset >= 0)

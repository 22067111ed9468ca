"""The claude plugin's parse_rate_limits: anthropic-ratelimit-* headers, resets as RFC 3339
times, tokens from the binding budget."""

from __future__ import annotations

import datetime
import math

import httpx2
import ipfs_accel_claude
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import RateLimits, Registry
from ipfs_accel.testing import strategies
from ipfs_accel_claude import parse_rate_limits
from ipfs_accel_claude._limits import rate_limits

NOW = datetime.datetime(2025, 8, 21, 12, 40, 0, tzinfo=datetime.UTC).timestamp()
NAMES = tuple(f"anthropic-ratelimit-{budget}-{part}"
              for budget in ("requests", "tokens", "input-tokens", "output-tokens")
              for part in ("limit", "remaining", "reset"))

# The headers a Messages response carries, as Anthropic's rate-limits page lists them.
DOCUMENTED = {
    "anthropic-ratelimit-requests-limit": "1000",
    "anthropic-ratelimit-requests-remaining": "999",
    "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-tokens-limit": "96000",
    "anthropic-ratelimit-tokens-remaining": "96000",
    "anthropic-ratelimit-tokens-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-input-tokens-limit": "80000",
    "anthropic-ratelimit-input-tokens-remaining": "80000",
    "anthropic-ratelimit-input-tokens-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-output-tokens-limit": "16000",
    "anthropic-ratelimit-output-tokens-remaining": "15000",
    "anthropic-ratelimit-output-tokens-reset": "2025-08-21T12:41:00Z",
    "request-id": "req_011CSLsW7mFqvHHnzrKdKjAE",
}


def test_documented_headers() -> None:
    """Requests as sent; tokens from the budget with the least left (output here), its
    limit and reset with it; resets are seconds from now until the RFC 3339 times."""
    assert rate_limits(DOCUMENTED, now=NOW) == RateLimits(
        requests_limit=1000, requests_remaining=999, requests_reset=59.0,
        tokens_limit=16000, tokens_remaining=15000, tokens_reset=60.0,
    )


def test_binding_budget_is_the_least_remaining() -> None:
    """Input tokens spent: they bind, with their reset; a tie goes to the later reset."""
    spent = {**DOCUMENTED, "anthropic-ratelimit-input-tokens-remaining": "0",
             "anthropic-ratelimit-input-tokens-reset": "2025-08-21T12:40:30.5Z"}
    limits = rate_limits(spent, now=NOW)
    assert limits is not None
    assert (limits.tokens_limit, limits.tokens_remaining, limits.tokens_reset) == (80000, 0, 30.5)
    tie = {**DOCUMENTED, "anthropic-ratelimit-tokens-remaining": "15000",
           "anthropic-ratelimit-tokens-reset": "2025-08-21T12:42:00Z"}
    limits = rate_limits(tie, now=NOW)
    assert limits is not None
    assert (limits.tokens_limit, limits.tokens_reset) == (96000, 120.0)


def test_only_combined_tokens() -> None:
    """An organization without per-direction budgets sends tokens-* only: those are read."""
    headers = {"anthropic-ratelimit-tokens-limit": "40000",
               "anthropic-ratelimit-tokens-remaining": "39000",
               "anthropic-ratelimit-tokens-reset": "2025-08-21T12:40:10+00:00"}
    assert rate_limits(headers, now=NOW) == RateLimits(
        tokens_limit=40000, tokens_remaining=39000, tokens_reset=10.0)


def test_past_reset_is_zero_and_case_insensitive() -> None:
    """A reset time already past is 0 s; header names in any case (httpx's mapping)."""
    headers = httpx2.Headers({"Anthropic-RateLimit-Requests-Remaining": "0",
                              "Anthropic-RateLimit-Requests-Reset": "2020-01-01T00:00:00Z"})
    assert parse_rate_limits(headers) == RateLimits(requests_remaining=0, requests_reset=0.0)


def test_no_headers_and_garbage() -> None:
    """Nothing readable is None; a bad value skips only its field."""
    assert parse_rate_limits({}) is None
    assert parse_rate_limits({"request-id": "req_1", "retry-after": "3"}) is None
    assert parse_rate_limits(dict.fromkeys(NAMES, "tomorrow")) is None
    bad = {**DOCUMENTED, "anthropic-ratelimit-requests-reset": "2025-08-21 noon",
           "anthropic-ratelimit-requests-limit": "-1",
           "anthropic-ratelimit-output-tokens-remaining": "lots"}
    limits = rate_limits(bad, now=NOW)
    assert limits is not None
    assert (limits.requests_limit, limits.requests_remaining, limits.requests_reset) == (
        None, 999, None)
    # output's remainder unreadable: it can no longer be shown to bind; the others are compared
    assert (limits.tokens_limit, limits.tokens_remaining) == (80000, 80000)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
                                   "2025-13-01T00:00:00Z", "2025-08-21T12:40:59", "1e400"])
def test_odd_times(value: str) -> None:
    """Times at datetime's edges, out of range or without a zone: a reset or None, no error."""
    limits = rate_limits({"anthropic-ratelimit-requests-reset": value}, now=NOW)
    assert limits is None or (limits.requests_reset is not None
                              and math.isfinite(limits.requests_reset))


def test_registered_hook() -> None:
    """The registry sees the hook and reads the headers through it."""
    hooks = Registry(plugins=[ipfs_accel_claude], entry_points=False).hooks("claude")
    assert hooks.reads_rate_limits
    limits = hooks.parse_rate_limits(DOCUMENTED)
    assert limits is not None and limits.requests_remaining == 999


@settings(max_examples=300, deadline=None)
@given(strategies.headers(names=NAMES, max_size=10)
       | st.dictionaries(st.sampled_from(NAMES),
                         st.text() | st.datetimes(timezones=st.timezones()).map(
                             lambda d: d.isoformat()), max_size=12))
def test_any_headers_never_raise(headers: dict[str, str]) -> None:
    """Any header dict gives None or RateLimits of non-negative counts and finite resets."""
    limits = parse_rate_limits(headers)
    assert limits is None or isinstance(limits, RateLimits)
    if limits is not None:
        for reset in (limits.requests_reset, limits.tokens_reset):
            assert reset is None or (math.isfinite(reset) and reset >= 0)
        for count in (limits.requests_limit, limits.requests_remaining,
                      limits.tokens_limit, limits.tokens_remaining):
            assert count is None or count >= 0

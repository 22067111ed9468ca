"""Property tests of the backoff rule and Retry-After parsing."""

from __future__ import annotations

import datetime
import email.utils
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import backoff_delay, parse_count, parse_reset, parse_retry_after
from ipfs_accel._backoff import plan_wait

delays = st.floats(min_value=0.001, max_value=100, allow_nan=False)
factors = st.floats(min_value=1, max_value=10, allow_nan=False)
attempts = st.integers(min_value=1, max_value=200)
jitters = st.floats(min_value=0, max_value=1)
rands = st.floats(min_value=0, max_value=0.999999)


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, factors, delays, jitters, rands)
def test_backoff_never_exceeds_max(n, initial, factor, max_delay, jitter, rand):
    """No delay is above max_retry_delay, whatever the attempt and jitter."""
    d = backoff_delay(n, initial=initial, factor=factor, max_delay=max_delay, jitter=jitter, rand=rand)
    assert 0 < d <= max_delay


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, factors, delays)
def test_backoff_without_jitter_is_the_formula(n, initial, factor, max_delay):
    """Without jitter, delay n is min(initial * factor**(n-1), max)."""
    d = backoff_delay(n, initial=initial, factor=factor, max_delay=max_delay, jitter=0, rand=0.5)
    try:
        expected = min(initial * factor ** (n - 1), max_delay)
    except OverflowError:
        expected = max_delay
    assert d == expected


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, factors, delays, jitters, rands)
def test_backoff_grows_monotonically(n, initial, factor, max_delay, jitter, rand):
    """Delay n+1 is never shorter than delay n (same jitter draw)."""
    kw = {"initial": initial, "factor": factor, "max_delay": max_delay, "jitter": jitter, "rand": rand}
    assert backoff_delay(n + 1, **kw) >= backoff_delay(n, **kw)


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, factors, delays, jitters, rands)
def test_jitter_is_bounded(n, initial, factor, max_delay, jitter, rand):
    """Jitter adds at most `jitter` of the base delay."""
    base = backoff_delay(n, initial=initial, factor=factor, max_delay=max_delay, jitter=0, rand=0)
    d = backoff_delay(n, initial=initial, factor=factor, max_delay=max_delay, jitter=jitter, rand=rand)
    assert base <= d <= base * (1 + jitter) + 1e-9


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, delays, st.floats(min_value=0, max_value=1000), rands)
def test_retry_after_longer_than_backoff_wins(n, initial, max_delay, retry_after, rand):
    """A server's Retry-After longer than the backoff is what the core waits."""
    w = plan_wait(n, initial=initial, factor=2, max_delay=max_delay, jitter=0.1,
                  retry_after=retry_after, remaining=None, rand=rand)
    assert w is not None
    assert w >= retry_after
    assert w == max(retry_after, backoff_delay(n, initial=initial, factor=2, max_delay=max_delay,
                                               jitter=0.1, rand=rand))


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, delays, st.one_of(st.none(), st.floats(0, 1000)),
       st.floats(min_value=0, max_value=1000), rands)
def test_never_waits_past_the_deadline(n, initial, max_delay, retry_after, remaining, rand):
    """A wait that would end past the call's deadline is refused (fail fast)."""
    w = plan_wait(n, initial=initial, factor=2, max_delay=max_delay, jitter=0.1,
                  retry_after=retry_after, remaining=remaining, rand=rand)
    if w is not None:
        assert w < remaining


def test_retry_after_forms():
    """retry-after-ms wins; seconds and HTTP dates are read; junk is ignored."""
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    now = 1_000_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    assert parse_retry_after({"retry-after-ms": "nan?", "retry-after": "2"}) == 2.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "86400"}) == 86_400.0  # kept: the cap decides
    assert parse_retry_after({"retry-after": "inf"}) is None


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(attempts, delays, delays, st.floats(min_value=0, max_value=1e6), st.floats(0, 1e6), rands)
def test_retry_after_past_the_cap_gives_up(n, initial, max_delay, retry_after, cap, rand):
    """A server-requested wait longer than max_retry_after is refused; up to it, it is waited."""
    w = plan_wait(n, initial=initial, factor=2, max_delay=max_delay, jitter=0.1,
                  retry_after=retry_after, remaining=None, rand=rand, max_retry_after=cap)
    if retry_after > cap:
        assert w is None
    else:
        assert w is not None and w >= retry_after


@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms", "x"]), st.text()))
def test_retry_after_parser_is_total(headers):
    """Any header text gives a finite non-negative number or None, never an exception."""
    value = parse_retry_after(headers)
    assert value is None or 0 <= value < math.inf


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("6m0s", 360.0), ("1s", 1.0), ("20ms", 0.02), ("7.66s", 7.66), ("1h2m3.5s", 3723.5),
        ("1m", 60.0), ("0.5", 0.5), (" 2 ", 2.0), ("0s", 0.0),
        ("", None), ("soon", None), ("-1", None), ("1e400", None), ("9" * 400 + "h", None),
        ("2026-11-30T13:00:00", None),  # a time with no zone cannot be placed
        (None, None),
    ],
)
def test_parse_reset_reads_durations_and_numbers(value: str | None, seconds: float | None) -> None:
    """The reset forms rate-limit headers use; anything else is not said."""
    assert parse_reset(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_reset_reads_rfc3339_times() -> None:
    """Anthropic's resets are RFC 3339 times: seconds from now, 0 once past."""
    now = datetime.datetime(2026, 11, 30, 13, 0, 0, tzinfo=datetime.UTC).timestamp()
    assert parse_reset("2026-11-30T13:00:10Z", now=now) == pytest.approx(10.0)
    assert parse_reset("2026-11-30T14:00:10+01:00", now=now) == pytest.approx(10.0)
    assert parse_reset("2026-11-30T12:59:00Z", now=now) == 0.0


@settings(deadline=None)
@given(st.text(max_size=40))
def test_parse_reset_never_raises(value: str) -> None:
    """Whatever a server sends, the answer is a finite wait >= 0 or None."""
    out = parse_reset(value)
    assert out is None or 0 <= out < math.inf


@pytest.mark.parametrize(("value", "count"), [
    ("4999", 4999), (" 0 ", 0), ("", None), ("-1", None), ("1.5", None), ("١٢", None),
    ("12ms", None), (None, None),
])
def test_parse_count_reads_whole_numbers_only(value: str | None, count: int | None) -> None:
    """A rate-limit count is plain ASCII digits; anything else is not said."""
    assert parse_count(value) == count

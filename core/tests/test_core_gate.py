"""The endpoint gate on its own, with explicit times: rpm and tpm budgets (smooth, no
burst), pauses (extended, never shortened), what headers say, health (unhealthy after
consecutive failures, a doubling cooldown, one probe), disabling on an auth failure."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from ipfs_accel import EndpointSettings, ErrorKind, RateLimits
from ipfs_accel._limits import Gate

STATES = {"ready", "paused", "unhealthy", "probing", "disabled"}


def gate(**settings: Any) -> Gate:
    return Gate(EndpointSettings(**settings))


def starts(g: Gate, now: float, n: int, tokens: float = 0.0) -> list[float]:
    return [g.reserve(now, tokens).at for _ in range(n)]


# -- rpm ---------------------------------------------------------------------------------


def test_rpm_spaces_reservations_made_at_once():
    """rpm=60: five calls at the same moment start 1 s apart, the first at once."""
    g = gate(rpm=60)
    assert starts(g, 100.0, 5) == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_rpm_first_is_not_held_and_the_rest_are_counted_as_paced():
    """Only the calls that wait count as paced, with the time they wait."""
    g = gate(rpm=120)  # one every 0.5 s
    first, second, third = (g.reserve(10.0, 0) for _ in range(3))
    assert (first.held, second.held, third.held) == (None, "pace", "pace")
    assert g.paced == 2
    assert g.paced_seconds == pytest.approx(0.5 + 1.0)


def test_rpm_idle_time_does_not_build_a_burst():
    """After a long idle spell only one call goes at once: no minute's worth of burst."""
    g = gate(rpm=60)
    g.reserve(0.0, 0)
    assert starts(g, 1000.0, 3) == [1000.0, 1001.0, 1002.0]


def test_rpm_calls_spread_out_in_time_are_not_held():
    """Calls arriving slower than the rate go at once."""
    g = gate(rpm=60)
    assert [g.reserve(t, 0).at for t in (0.0, 1.0, 2.5, 7.0)] == [0.0, 1.0, 2.5, 7.0]
    assert g.paced == 0


# -- tpm ---------------------------------------------------------------------------------


def test_tpm_books_tokens_and_spaces_by_their_cost():
    """tpm=600 is 0.1 s a token: a 10-token call holds the next one back 1 s."""
    g = gate(tpm=600)
    a = g.reserve(0.0, 10)
    b = g.reserve(0.0, 5)
    c = g.reserve(0.0, 1)
    assert (a.at, b.at, c.at) == pytest.approx((0.0, 1.0, 1.5))
    assert (a.tokens, b.tokens) == (10, 5)


def test_tpm_settle_gives_back_what_was_not_used():
    """A call that used fewer tokens than booked gives the rest back to the budget."""
    g = gate(tpm=600)
    a = g.reserve(0.0, 10)
    g.settle(a, 4)
    assert a.tokens == 4
    assert g.reserve(0.0, 1).at == pytest.approx(0.4)


def test_tpm_settle_books_what_was_used_beyond_the_estimate():
    """A call that used more than its estimate holds the next call back for the excess."""
    g = gate(tpm=600)
    a = g.reserve(0.0, 10)
    g.settle(a, 30)
    assert g.reserve(0.0, 1).at == pytest.approx(3.0)


def test_settle_twice_with_the_same_usage_changes_nothing():
    """Settling is idempotent: the reservation remembers what it now holds."""
    g = gate(tpm=600)
    a = g.reserve(0.0, 10)
    g.settle(a, 4)
    g.settle(a, 4)
    assert g.reserve(0.0, 0).at == pytest.approx(0.4)


def test_no_tpm_reservation_holds_no_tokens():
    """Without tpm the reservation holds no tokens, whatever was estimated."""
    g = gate(rpm=60)
    assert g.reserve(0.0, 500).tokens == 0.0


def test_rpm_and_tpm_book_one_start():
    """A call held by tpm books its request at the time it really starts: the next call
    is still a full rpm interval behind it."""
    g = gate(rpm=60, tpm=60)  # 1 s a request, 1 s a token
    a = g.reserve(0.0, 10)  # tokens busy until 10
    b = g.reserve(0.0, 0)  # held by tpm until 10
    c = g.reserve(10.5, 0)
    assert (a.at, b.at) == (0.0, 10.0)
    assert c.at >= b.at + 1.0


# -- cancel ----------------------------------------------------------------------------


def test_cancel_returns_the_request_and_tokens():
    """A booked attempt that never went gives its request and its tokens back."""
    g = gate(rpm=60, tpm=600)
    g.reserve(0.0, 10)
    b = g.reserve(0.0, 10)
    assert b.at == 1.0
    g.cancel(b)
    assert g.reserve(0.0, 10).at == 1.0


def test_cancel_then_rebook_keeps_the_spacing():
    """Cancelling a booking that others follow never lets two calls start together."""
    g = gate(rpm=60)
    a, b, c = (g.reserve(0.0, 0) for _ in range(3))
    g.cancel(b)
    d = g.reserve(0.0, 0)
    kept = sorted(r.at for r in (a, c, d))
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(kept))


def test_cancel_everything_makes_the_budget_whole():
    """Cancelling every booking, newest first, leaves the budget as it was."""
    g = gate(rpm=60)
    booked = [g.reserve(5.0, 0) for _ in range(4)]
    for res in reversed(booked):
        g.cancel(res)
    assert g.reserve(5.0, 0).at == 5.0


# -- pauses ----------------------------------------------------------------------------


def test_pause_holds_new_reservations_until_it_ends():
    """A paused endpoint books new attempts at the pause's end."""
    g = gate()
    assert g.pause(12.0, "the server asked to wait")
    res = g.reserve(10.0, 0)
    assert (res.at, res.held) == (12.0, "pause")
    assert g.paced == 1 and g.paced_seconds == pytest.approx(2.0)
    assert g.reserve(12.0, 0).held is None


def test_pause_extends_and_never_shortens():
    """A later, longer pause extends it; a shorter one changes nothing."""
    g = gate()
    assert g.pause(10.0, "first")
    assert not g.pause(5.0, "shorter")
    assert (g.paused_until, g.pause_reason) == (10.0, "first")
    assert not g.pause(10.0, "same")
    assert g.pause(20.0, "longer")
    assert (g.paused_until, g.pause_reason) == (20.0, "longer")


def test_pacing_after_a_pause_is_smooth():
    """Calls held by a pause do not all go at its end: rpm spaces them after it."""
    g = gate(rpm=60)
    g.pause(50.0, "x")
    assert starts(g, 0.0, 3) == [50.0, 51.0, 52.0]


def test_a_pause_holds_even_when_pacing_adds_to_it():
    """A call behind a pause is held by the pause, though pacing may add to its wait
    (so a pause too long to wait for refuses it, see ``_pace``)."""
    g = gate(rpm=6)  # 10 s a request
    g.reserve(0.0, 0)
    g.reserve(0.0, 0)  # requests booked until 20
    g.pause(15.0, "x")
    res = g.reserve(1.0, 0)
    assert res.at >= 20.0 and res.held == "pause"


def test_pause_turns_the_gate_on():
    """An endpoint with no budgets skips the gate until it is first paused."""
    g = gate()
    assert not g.active
    g.pause(1.0, "x")
    assert g.active
    assert gate(rpm=1).active and gate(tpm=1).active


# -- what the headers say ---------------------------------------------------------------


def test_learn_spent_request_budget_paces_one_reset_apart():
    """remaining 0 with a reset (for an attempt sent at 100): the next attempt waits for
    the reset, and those after it go one reset apart, not all at once at its end."""
    g = gate()
    g.learn(RateLimits(requests_limit=10, requests_remaining=0, requests_reset=2.5), 100.0)
    assert g.paused_until == 0.0 and g.held_until(101.0) == 102.5  # a pace, not a pause
    assert g.state(101.0) == "paused" and g.ready_at(101.0) == 101.0  # takes, and holds
    assert g.pace_at(101.0) == 102.5 and g.interval() == 2.5
    starts = [g.reserve(101.0, 0).at for _ in range(3)]
    assert starts == [102.5, 105.0, 107.5]


def test_learn_requests_left_let_that_many_go_then_the_pace_holds():
    """A report of requests left lets that many attempts go at once; once a report says
    none is left, they are spaced; a later report of some left frees them again."""
    g = gate()
    g.learn(RateLimits(requests_remaining=2, requests_reset=1.0), 0.0)
    assert [g.reserve(0.0, 0).at for _ in range(3)] == [0.0, 0.0, 0.0]  # spent: no pace known
    g.learn(RateLimits(requests_remaining=0, requests_reset=1.0), 0.5)
    assert [g.reserve(0.6, 0).at for _ in range(2)] == [1.5, 2.5]
    g.learn(RateLimits(requests_remaining=4, requests_reset=0.1), 0.7)
    assert g.reserve(0.8, 0).at == 0.8 and g.pace_at(0.8) == 0.8


def test_learn_paces_with_a_configured_rpm_by_the_slower():
    """With an rpm of its own, an endpoint whose server says its budget is spent goes at
    the later of the two: the rpm's spacing and the server's reset (from when its answer
    came, so a request the server counted late is not followed too closely)."""
    g = gate(rpm=60)  # 1 s apart
    g.learn(RateLimits(requests_remaining=0, requests_reset=0.5), 0.0)
    assert [g.reserve(0.0, 0).at for _ in range(3)] == [0.5, 1.5, 2.5]
    g.learn(RateLimits(requests_remaining=0, requests_reset=5.0), 2.0)  # slower: it holds
    assert g.pace_at(2.0) == 7.0


def test_a_paced_attempt_moves_after_a_later_answer_keeping_the_gap():
    """An answer that comes after an attempt was booked, saying the budget is back only
    later, moves that attempt there; the next one keeps a whole reset after it."""
    g = gate()
    g.learn(RateLimits(requests_remaining=0, requests_reset=1.0), 0.0)
    a, b = g.reserve(0.0, 0), g.reserve(0.0, 0)
    assert (a.at, b.at) == (1.0, 2.0)
    assert g.recheck(a) == 1.0  # a goes at 1.0
    g.learn(RateLimits(requests_remaining=0, requests_reset=1.0), 1.3)  # a's answer, late
    assert g.recheck(b) == 2.3  # moved: the server's budget is back at 2.3
    assert g.recheck(b) == 2.3  # and stays there (its own start is no reason to move)
    c = g.reserve(2.0, 0)
    assert c.at >= 3.3


def test_recheck_books_again_behind_a_pause():
    """A pause set while an attempt waited sends it back to book again."""
    g = gate()
    res = g.reserve(0.0, 0)
    g.pause(5.0, "x")
    assert g.recheck(res) is None


def test_cancel_gives_back_the_latest_paced_place():
    """A paced booking cancelled while it is the latest frees its place in the pace."""
    g = gate()
    g.learn(RateLimits(requests_remaining=0, requests_reset=1.0), 0.0)
    first = g.reserve(0.0, 0)
    second = g.reserve(0.0, 0)
    assert (first.at, second.at) == (1.0, 2.0)
    g.cancel(second)
    assert g.reserve(0.0, 0).at == 2.0


def test_learn_spent_token_budget_pauses_until_reset():
    """The same for the token budget."""
    g = gate()
    g.learn(RateLimits(tokens_remaining=0, tokens_reset=7.0), 100.0)
    assert g.paused_until == 107.0 and "tokens" in g.pause_reason


def test_learn_both_budgets_spent_holds_until_the_later():
    """Both budgets spent: the token pause and the requests pace, the later wins."""
    g = gate()
    g.learn(RateLimits(requests_remaining=0, requests_reset=3.0,
                       tokens_remaining=0, tokens_reset=1.0), 0.0)
    assert g.paused_until == 1.0
    assert g.reserve(0.0, 0).at == 3.0


@pytest.mark.parametrize("limits", [
    RateLimits(requests_remaining=0),
    RateLimits(requests_remaining=0, requests_reset=0.0),
    RateLimits(tokens_remaining=1, tokens_reset=60.0),
    RateLimits(),
], ids=["no-reset", "reset-now", "tokens-left", "empty"])
def test_learn_budget_not_spent_changes_nothing(limits):
    """No time to wait, or tokens left: no pause, no pace."""
    g = gate()
    g.learn(limits, 10.0)
    assert g.paused_until == 0.0 and g.state(10.0) == "ready" and g.pace_at(10.0) == 10.0
    assert g.reserve(10.0, 0).at == 10.0


def test_learn_never_shortens_a_pause():
    """A reset sooner than the current pause leaves the pause as it is."""
    g = gate()
    g.pause(50.0, "the server asked to wait")
    g.learn(RateLimits(requests_remaining=0, requests_reset=1.0), 10.0)
    assert g.paused_until == 50.0


# -- health ----------------------------------------------------------------------------


def unwell(**settings: Any) -> Gate:
    return gate(unhealthy_after=3, cooldown=1.0, max_cooldown=4.0, **settings)


@pytest.mark.parametrize("kind", [ErrorKind.TRANSPORT, ErrorKind.TIMEOUT, ErrorKind.SERVER,
                                  ErrorKind.STREAM_INTERRUPTED])
def test_consecutive_failures_mark_unhealthy_at_the_threshold(kind):
    """Two failures: still ready; the third: unhealthy for the cooldown."""
    g = unwell()
    g.failed(kind, None, 0.0)
    g.failed(kind, None, 0.0)
    assert (g.state(0.0), g.failures) == ("ready", 2)
    g.failed(kind, None, 10.0)
    assert (g.state(10.0), g.failures, g.unhealthy_until) == ("unhealthy", 3, 11.0)
    assert g.ready_at(10.0) == 11.0


def test_cooldown_doubles_while_probes_fail_up_to_the_cap():
    """Each failed probe doubles the cooldown, up to max_cooldown."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    now, seen = 0.0, []
    for _ in range(5):
        cooling = g.unhealthy_until - now
        seen.append(cooling)
        now = g.unhealthy_until
        assert g.take(now) and g.state(now) == "probing"
        g.failed(ErrorKind.TRANSPORT, None, now)
        assert g.state(now) == "unhealthy" and not g.probing
    seen.append(g.unhealthy_until - now)
    assert seen == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_cooldown_is_never_above_max_cooldown():
    """A base cooldown above max_cooldown is capped."""
    g = gate(unhealthy_after=1, cooldown=10.0, max_cooldown=3.0)
    g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.unhealthy_until == 3.0


def test_failures_already_in_flight_do_not_stretch_the_cooldown():
    """Calls sent before the endpoint went unhealthy, failing during its cooldown, neither
    push the probe back nor double the cooldown: five concurrent failures cool down as
    long as three."""
    g = unwell()
    for _ in range(5):
        g.failed(ErrorKind.TRANSPORT, None, 0.0)
    assert g.failures == 5
    assert g.unhealthy_until == 1.0
    assert g.take(1.0)
    g.failed(ErrorKind.TRANSPORT, None, 1.0)
    assert g.unhealthy_until == 3.0  # the probe failed: doubled once


def test_failures_after_the_cooldown_start_a_longer_one():
    """An endpoint still failing after its cooldown (calls made without a pool) cools
    down again, for twice as long."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    g.failed(ErrorKind.SERVER, None, 1.5)
    assert g.unhealthy_until == 3.5


def test_probe_success_makes_the_endpoint_ready_and_resets_the_cooldown():
    """A probe that gets an answer: ready, no failures, the next cooldown back at base."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.take(1.0)
    g.failed(ErrorKind.SERVER, None, 1.0)  # probe failed: cooldown 2 s
    assert g.take(3.0)
    g.succeeded()
    assert (g.state(3.0), g.failures, g.probing, g.unhealthy_until) == ("ready", 0, False, 0.0)
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 10.0)
    assert g.unhealthy_until == 11.0


def test_only_one_probe_goes_out():
    """After the cooldown the first taker is the probe; no one else until it ends."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert not g.take(0.5)  # cooling down
    assert g.take(1.0)
    assert not g.take(1.0) and not g.take(100.0)
    assert g.ready_at(1.0) == math.inf


def test_a_released_probe_lets_another_probe_go():
    """A probe cancelled without an outcome frees the probe for the next taker."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.take(1.0)
    g.released()
    assert g.state(1.0) == "unhealthy" and g.ready_at(1.0) == 1.0
    assert g.take(1.0) and g.state(1.0) == "probing"


def test_take_on_a_well_endpoint_is_no_probe():
    """A ready endpoint is taken without becoming a probe, any number of times."""
    g = unwell()
    assert g.take(0.0) and g.take(0.0)
    assert not g.probing and g.state(0.0) == "ready"


@pytest.mark.parametrize("kind", [ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED])
def test_a_limit_refusal_counts_as_alive(kind):
    """A 429 or an overload is an answer: failures reset, a probe succeeds, it is counted
    as rate_limited and its Retry-After pauses the endpoint."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.take(1.0)
    g.failed(kind, 2.0, 1.0)
    assert (g.failures, g.probing, g.unhealthy_until, g.rate_limited) == (0, False, 0.0, 1)
    assert g.paused_until == 3.0 and g.state(1.0) == "paused" and g.state(3.0) == "ready"
    assert "asked to wait" in g.pause_reason


def test_a_limit_refusal_without_retry_after_does_not_pause():
    """No Retry-After: counted, not paused."""
    g = gate()
    g.failed(ErrorKind.RATE_LIMITED, None, 5.0)
    g.failed(ErrorKind.OVERLOADED, 0.0, 5.0)
    assert g.rate_limited == 2 and g.paused_until == 0.0 and g.state(5.0) == "ready"


def test_a_429_without_retry_after_is_alive_and_an_overload_without_is_unwell():
    """A 429 that names no wait still answered; a 503 that names none is a 5xx like
    others, and three in a row make the endpoint unhealthy."""
    g = unwell()
    g.failed(ErrorKind.SERVER, None, 0.0)
    g.failed(ErrorKind.RATE_LIMITED, None, 0.0)
    assert g.failures == 0
    for _ in range(3):
        g.failed(ErrorKind.OVERLOADED, None, 0.0)
    assert (g.failures, g.state(0.0), g.rate_limited) == (3, "unhealthy", 4)


@pytest.mark.parametrize("kind", [ErrorKind.BAD_REQUEST, ErrorKind.NOT_FOUND,
                                  ErrorKind.CONTEXT_LENGTH, ErrorKind.RESPONSE,
                                  ErrorKind.QUOTA_EXCEEDED])
def test_an_answer_about_the_call_resets_failures(kind):
    """A 400, 404...: the server answered, so it is well."""
    g = unwell()
    g.failed(ErrorKind.SERVER, None, 0.0)
    g.failed(ErrorKind.SERVER, None, 0.0)
    g.failed(kind, None, 0.0)
    assert g.failures == 0
    g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.state(0.0) == "ready"


def test_succeeded_resets_failures():
    """A success in between breaks the run of failures."""
    g = unwell()
    g.failed(ErrorKind.TIMEOUT, None, 0.0)
    g.failed(ErrorKind.TIMEOUT, None, 0.0)
    g.succeeded()
    g.failed(ErrorKind.TIMEOUT, None, 0.0)
    assert (g.failures, g.state(0.0)) == (1, "ready")


def test_auth_failure_disables_until_enabled():
    """A 401/403 disables the endpoint: no taker, never ready; enable() brings it back."""
    g = unwell()
    g.failed(ErrorKind.AUTH, None, 0.0)
    assert g.state(0.0) == "disabled" and g.disabled
    assert not g.take(1e9) and g.ready_at(0.0) == math.inf
    g.enable()
    assert g.state(0.0) == "ready" and g.take(0.0) and g.ready_at(0.0) == 0.0


def test_auth_failure_of_a_probe_disables():
    """A probe answered 401: disabled, no probe out."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.take(1.0)
    g.failed(ErrorKind.AUTH, None, 1.0)
    assert g.state(1.0) == "disabled" and not g.probing
    g.enable()
    assert g.state(1.0) == "ready" and g.failures == 0


# -- state, ready_at -------------------------------------------------------------------


def test_state_names_the_strongest_condition():
    """disabled > probing > unhealthy > paused > ready."""
    g = unwell()
    assert g.state(0.0) == "ready"
    g.pause(100.0, "x")
    assert g.state(0.0) == "paused"
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.state(0.0) == "unhealthy"
    assert g.state(50.0) == "unhealthy"  # cooled down, due a probe: still unhealthy
    assert g.take(50.0) and g.state(50.0) == "probing"
    g.failed(ErrorKind.AUTH, None, 50.0)
    assert g.state(50.0) == "disabled"


def test_ready_at_is_the_latest_of_now_pause_and_cooldown():
    """ready_at: when the endpoint takes attempts again; pacing holds an attempt it took,
    so it is in pace_at, not here."""
    g = gate(rpm=60, unhealthy_after=1, cooldown=3.0)
    assert g.ready_at(5.0) == 5.0
    g.reserve(5.0, 0)
    assert g.ready_at(5.0) == 5.0 and g.pace_at(5.0) == 6.0
    g.pause(8.0, "x")
    assert g.ready_at(5.0) == 8.0
    g.failed(ErrorKind.SERVER, None, 7.0)
    assert g.ready_at(5.0) == 10.0
    assert g.ready_at(20.0) == 20.0


def test_pace_at_counts_the_token_budget():
    """An endpoint whose tokens are booked ahead paces its next attempt after them."""
    g = gate(tpm=600)
    g.reserve(0.0, 50)  # 5 s of tokens
    assert g.pace_at(0.0) == pytest.approx(5.0)
    assert g.reserve(0.0, 1).at == pytest.approx(5.0)


# -- settings and counters -------------------------------------------------------------


def test_configure_keeps_a_budget_whose_rate_is_unchanged():
    """New settings with the same rpm keep its bookings; a new rate starts afresh;
    None removes it."""
    g = gate(rpm=60)
    g.reserve(0.0, 0)
    g.configure(EndpointSettings(rpm=60, timeout=5.0))
    assert g.reserve(0.0, 0).at == 1.0
    g.configure(EndpointSettings(rpm=30))
    assert g.reserve(0.0, 0).at == 0.0
    g.configure(EndpointSettings())
    assert g.requests is None and g.reserve(0.0, 0).at == 0.0


def test_configure_keeps_health():
    """Changing an unrelated setting keeps failures, the cooldown and its growth."""
    g = unwell()
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    assert g.take(1.0)
    g.failed(ErrorKind.SERVER, None, 1.0)  # cooldown now 2 s, next 4 s
    g.configure(EndpointSettings(unhealthy_after=3, cooldown=1.0, max_cooldown=4.0, timeout=9.0))
    assert (g.state(1.0), g.failures, g.unhealthy_until) == ("unhealthy", 4, 3.0)
    assert g.take(3.0)
    g.failed(ErrorKind.SERVER, None, 3.0)
    assert g.unhealthy_until == 7.0


def test_reset_counts_keeps_the_state():
    """reset_counts zeroes paced and rate_limited; pauses and health stay."""
    g = gate(rpm=60)
    g.reserve(0.0, 0)
    g.reserve(0.0, 0)
    g.failed(ErrorKind.RATE_LIMITED, 5.0, 0.0)
    g.reset_counts()
    assert (g.paced, g.paced_seconds, g.rate_limited) == (0, 0.0, 0)
    assert g.state(0.0) == "paused"


def test_every_state_is_one_of_five():
    """The state strings are exactly the documented five."""
    seen = set()
    g = unwell()
    seen.add(g.state(0.0))
    g.pause(1.0, "x")
    seen.add(g.state(0.0))
    for _ in range(3):
        g.failed(ErrorKind.SERVER, None, 0.0)
    seen.add(g.state(0.0))
    g.take(2.0)
    seen.add(g.state(2.0))
    g.failed(ErrorKind.AUTH, None, 2.0)
    seen.add(g.state(2.0))
    assert seen == STATES



def test_cancel_takes_back_the_paced_count():
    """A booking cancelled before it went (refused, interrupted) was not held back: it
    leaves paced and paced_seconds as they were; a wait already sat out (wait set to 0)
    stays counted."""
    g = gate(rpm=60)
    g.reserve(0.0, 0)
    b = g.reserve(0.0, 0)
    assert (g.paced, g.paced_seconds) == (1, 1.0)
    g.cancel(b)
    assert (g.paced, g.paced_seconds) == (0, 0.0)
    g.cancel(b)  # twice changes nothing
    assert (g.paced, g.paced_seconds) == (0, 0.0)
    c = g.reserve(0.0, 0)
    c.wait = 0.0
    g.cancel(c)
    assert (g.paced, g.paced_seconds) == (0, 1.0)

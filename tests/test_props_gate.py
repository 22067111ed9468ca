"""Property tests of the endpoint gate: whatever the sequence of bookings, settlements,
cancels, pauses, headers, failures and successes (time only moving forward), the request
budget never lets more than ``rpm * window / 60 + 1`` calls start in any window, a pause
never gets shorter, the state is one of five, and a success leaves no failure counted."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from ipfs_accel import EndpointSettings, ErrorKind, RateLimits
from ipfs_accel._limits import Gate, Reservation

STATES = {"ready", "paused", "unhealthy", "probing", "disabled"}
UNWELL = {ErrorKind.TRANSPORT, ErrorKind.TIMEOUT, ErrorKind.SERVER,
          ErrorKind.STREAM_INTERRUPTED}
TOL = 1e-9

seconds = st.floats(0, 30, allow_nan=False, allow_infinity=False)
maybe_seconds = st.none() | seconds
maybe_count = st.none() | st.integers(0, 5)


def fits_rate(starts: list[float], rpm: float) -> bool:
    """In every window [a, b] holding calls that start at a and at b, at most
    rpm * (b - a) / 60 + 1 calls start."""
    starts = sorted(starts)
    interval = 60.0 / rpm
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            window = starts[j] - starts[i]
            if j - i + 1 > window / interval + 1 + TOL * (1 + abs(starts[j])):
                return False
    return True


class GateModel(RuleBasedStateMachine):
    """Drives one Gate through random operations at increasing times."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 100.0
        self.gate = Gate(EndpointSettings())  # replaced by start()
        self.rpm = 60.0
        self.booked: list[Reservation] = []  # not yet sent
        self.sent: list[float] = []  # starts of attempts that went
        self.last_paused = 0.0

    @initialize(rpm=st.sampled_from([6.0, 60.0, 600.0, 7.5]),
                tpm=st.none() | st.sampled_from([60, 600, 6000]),
                after=st.integers(1, 4), cooldown=st.floats(0.1, 10), cap=st.floats(0.1, 60))
    def start(self, rpm: float, tpm: int | None, after: int, cooldown: float, cap: float) -> None:
        self.rpm = rpm
        self.gate = Gate(EndpointSettings(rpm=rpm, tpm=tpm, unhealthy_after=after,
                                          cooldown=cooldown, max_cooldown=cap))

    @rule(dt=st.floats(0, 5, allow_nan=False))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(tokens=st.floats(0, 500))
    def reserve(self, tokens: float) -> None:
        paused_until = self.gate.paused_until
        res = self.gate.reserve(self.now, tokens)
        assert res.at >= self.now and res.at >= paused_until
        assert (res.held is None) == (res.at == self.now)
        self.booked.append(res)

    @rule(index=st.integers(0, 20), used=st.floats(0, 800))
    @precondition(lambda self: self.booked)
    def send_and_settle(self, index: int, used: float) -> None:
        """The booked attempt goes (at its start) and settles with its usage."""
        res = self.booked.pop(index % len(self.booked))
        self.sent.append(res.at)
        self.now = max(self.now, res.at)
        self.gate.settle(res, used)

    @rule(index=st.integers(0, 20))
    @precondition(lambda self: self.booked)
    def cancel(self, index: int) -> None:
        self.gate.cancel(self.booked.pop(index % len(self.booked)))

    @rule(wait=seconds)
    def pause(self, wait: float) -> None:
        self.gate.pause(self.now + wait, "asked")

    @rule(req=maybe_count, req_reset=maybe_seconds, tok=maybe_count, tok_reset=maybe_seconds)
    def learn(self, req: int | None, req_reset: float | None, tok: int | None,
              tok_reset: float | None) -> None:
        self.gate.learn(RateLimits(requests_remaining=req, requests_reset=req_reset,
                                   tokens_remaining=tok, tokens_reset=tok_reset), self.now)

    @rule(kind=st.sampled_from(list(ErrorKind)), retry_after=maybe_seconds)
    def failed(self, kind: ErrorKind, retry_after: float | None) -> None:
        g = self.gate
        before = g.failures
        g.failed(kind, retry_after, self.now)
        if kind in UNWELL or (kind is ErrorKind.OVERLOADED and not retry_after):
            assert g.failures == before + 1
        elif kind is ErrorKind.AUTH:
            assert g.disabled and g.state(self.now) == "disabled"
        else:  # the server answered: a success as far as health goes
            assert g.failures == 0

    @rule()
    def succeeded(self) -> None:
        self.gate.succeeded()
        assert self.gate.failures == 0 and not self.gate.probing
        assert self.gate.unhealthy_until == 0.0

    @rule()
    def take(self) -> None:
        g = self.gate
        was = g.state(self.now)
        took = g.take(self.now)
        if was in {"disabled", "probing"}:
            assert not took
        if took and was == "unhealthy":
            assert g.state(self.now) == "probing"

    @rule()
    def released(self) -> None:
        self.gate.released()

    @rule()
    def enable(self) -> None:
        self.gate.enable()
        assert self.gate.state(self.now) in {"ready", "paused"}

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def starts_fit_the_rate(self) -> None:
        booked = [r.at for r in self.booked]
        assert fits_rate(self.sent + booked, self.rpm)

    @invariant()
    def pauses_never_shorten(self) -> None:
        assert self.gate.paused_until >= self.last_paused
        self.last_paused = self.gate.paused_until

    @invariant()
    def state_is_one_of_five(self) -> None:
        assert self.gate.state(self.now) in STATES

    @invariant()
    def counters_are_sane(self) -> None:
        g = self.gate
        assert g.paced >= 0 and g.paced_seconds >= -TOL and g.rate_limited >= 0
        assert g.failures >= 0 and g.cooldown <= max(g.max_cooldown, g._base_cooldown)
        ready = g.ready_at(self.now)
        assert ready >= self.now
        assert (ready == math.inf) == (g.disabled or g.probing)

    @invariant()
    def cooldowns_are_capped(self) -> None:
        g = self.gate
        if g.unhealthy_until > 0:
            assert g.unhealthy_until <= self.now + g.max_cooldown + TOL


GateModel.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestGateModel = GateModel.TestCase


@settings(max_examples=300, deadline=None)
@given(rpm=st.floats(1, 6000), gaps=st.lists(st.floats(0, 2), min_size=1, max_size=40),
       cancels=st.lists(st.booleans(), max_size=40))
def test_request_budget_never_bursts(rpm: float, gaps: list[float], cancels: list[bool]) -> None:
    """Calls at any times, some cancelled as soon as booked: the ones that go never start
    more than one per interval (no burst beyond one call)."""
    g = Gate(EndpointSettings(rpm=rpm))
    now, starts = 0.0, []
    for i, gap in enumerate(gaps):
        now += gap
        res = g.reserve(now, 0)
        assert res.at >= now
        if i < len(cancels) and cancels[i]:
            g.cancel(res)
        else:
            starts.append(res.at)
    assert fits_rate(starts, rpm)


@settings(max_examples=200, deadline=None)
@given(pauses=st.lists(st.tuples(st.floats(0, 5), st.floats(0, 60)), min_size=1, max_size=30))
def test_paused_until_is_the_latest_pause_asked(pauses: list[tuple[float, float]]) -> None:
    """After any pauses asked at increasing times, paused_until is the latest end asked."""
    g = Gate(EndpointSettings())
    now, latest = 0.0, 0.0
    for gap, wait in pauses:
        now += gap
        g.pause(now + wait, "x")
        latest = max(latest, now + wait)
        assert g.paused_until == latest

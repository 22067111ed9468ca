"""What an endpoint knows of its limits: pacing budgets, pauses, health.

The :class:`Gate` of an endpoint answers one question before each attempt: when may it go?
Its answer is the latest of: now, the end of a pause (a 429 or an overload with
Retry-After, or a token budget the server's headers say is spent), the next free moment of
the ``rpm`` and ``tpm`` budgets, and the pace the server's headers set. Those headers
(``parse_rate_limits``) report the requests left: while some are, attempts go; once the
server says none is, attempts go one reset apart (the reset it reported, counted from when
its answer came: the server may have counted the request a moment after it was sent)
until it reports some left again; an attempt booked before an answer said the budget is
back only later books again behind it. That is a pace,
not a pause: the attempts waiting at the end of a pause would all go at once into the
next refusal. The budgets are GCRA (the generic cell rate algorithm):
each budget keeps one number, the theoretical arrival time of the next unit, so a
reservation is O(1), tells the exact wait, and never lets a burst through that the smooth
rate would refuse (servers enforce per-minute limits over shorter windows, so pacing is
smooth, not a minute's worth at once).

Health is separate from pacing: consecutive transport failures, timeouts and 5xx mark the
endpoint unhealthy for a cooldown that doubles while failures continue; after it, one probe
decides. An authentication failure disables the endpoint until its key changes.

Every method runs under the endpoint's lock (the caller holds it) and takes ``now`` on
``time.monotonic``; nothing here sleeps or does I/O. This is the in-process limiter; the
interface (reserve before an attempt, settle after, learn from what the server says) is
what a shared one implements too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ._errors import ErrorKind

if TYPE_CHECKING:
    from ._settings import EndpointSettings
    from ._types import RateLimits

__all__ = ["READY", "Budget", "Gate", "Reservation"]

READY, PAUSED, UNHEALTHY, PROBING, DISABLED = "ready", "paused", "unhealthy", "probing", "disabled"

# Failures that say the endpoint itself is unwell (not the call, not a limit).
_UNWELL = frozenset({ErrorKind.TRANSPORT, ErrorKind.TIMEOUT, ErrorKind.SERVER,
                     ErrorKind.STREAM_INTERRUPTED})
_PAUSING = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED})


class Budget:
    """One GCRA budget: ``per_minute`` units, spaced evenly (no burst beyond one call)."""

    __slots__ = ("interval", "per_minute", "tat")

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute  # seconds one unit occupies
        self.tat = 0.0  # theoretical arrival time of the next unit

    def free_at(self, now: float) -> float:
        """When the next unit may be used, ``now`` or later."""
        return max(now, self.tat)

    def book(self, start: float, units: float) -> None:
        """Book ``units`` from ``start`` (never before :meth:`free_at`)."""
        self.tat = start + units * self.interval

    def reserve(self, now: float, units: float) -> float:
        """Book ``units`` now or as soon as they fit; return when they may be used."""
        start = self.free_at(now)
        self.book(start, units)
        return start

    def give_back(self, units: float) -> None:
        """Return ``units`` booked but not used (or, negative, book units used beyond the
        estimate)."""
        self.tat -= units * self.interval

    def unbook(self, start: float, units: float) -> None:
        """Undo a booking of ``units`` from ``start`` if none was made after it. One made
        after it keeps the hole: the state is one number, and giving the units back would
        let the next booking start together with that later one (a burst)."""
        if self.tat == start + units * self.interval:
            self.tat = start


class Reservation:
    """What one attempt booked: when it may start, the units it holds, what holds it back
    (``"pause"``, ``"spent"`` for the server's pace, ``"pace"`` or ``None``) and for how
    long (``wait``, counted in the gate's ``paced_seconds``; a cancel takes back what is
    still in it)."""

    __slots__ = ("at", "held", "lease", "spaced", "tokens", "wait")

    def __init__(self, at: float, tokens: float, held: str | None, wait: float = 0.0) -> None:
        self.at = at
        self.tokens = tokens
        self.held = held
        self.wait = wait
        self.spaced = False  # booked one reset after the last, the server's budget spent
        self.lease: str | None = None  # the shared concurrency slot it holds (``_shared``)


class Gate:
    """Pacing, pauses and health of one endpoint (see the module docstring)."""

    __slots__ = (
        "_base_cooldown",
        "active",
        "cooldown",
        "disabled",
        "failures",
        "left",
        "max_cooldown",
        "paced",
        "paced_seconds",
        "pause_reason",
        "paused_until",
        "probing",
        "rate_limited",
        "requests",
        "spent_from",
        "spent_gap",
        "spent_next",
        "spent_went",
        "tokens",
        "unhealthy_after",
        "unhealthy_until",
    )

    def __init__(self, settings: EndpointSettings) -> None:
        self.requests: Budget | None = None
        self.tokens: Budget | None = None
        self.paused_until = 0.0
        self.pause_reason = ""
        self.left: int | None = None  # requests left, as the server last reported (None: never)
        self.spent_from = 0.0  # while none is left: when the server said some is back
        self.spent_next = 0.0  # and when the next attempt paced after the last may go
        self.spent_went = 0.0  # the start of the latest paced attempt that went
        self.spent_gap = 0.0  # and how far apart they go (the reset the server reported)
        self.failures = 0
        self.unhealthy_until = 0.0
        self.probing = False
        self.disabled = False
        self.paced = 0  # attempts held back by pacing or a pause
        self.paced_seconds = 0.0
        self.rate_limited = 0  # answers refusing for a limit (429, overload)
        self.active = False
        self._base_cooldown = self.cooldown = 0.0
        self.configure(settings)

    def configure(self, settings: EndpointSettings) -> None:
        """Take new settings; budgets whose rate is unchanged keep their state."""
        rpm, tpm = settings.rpm, settings.tpm
        if rpm is None:
            self.requests = None
        elif self.requests is None or self.requests.per_minute != rpm:
            self.requests = Budget(rpm)
        if tpm is None:
            self.tokens = None
        elif self.tokens is None or self.tokens.per_minute != tpm:
            self.tokens = Budget(tpm)
        self.unhealthy_after = settings.unhealthy_after
        self.max_cooldown = settings.max_cooldown
        if settings.cooldown != self._base_cooldown:  # another setting's change keeps
            self._base_cooldown = self.cooldown = settings.cooldown  # the cooldown's growth
        self._refresh()

    def _refresh(self) -> None:
        # the fast path: an endpoint with no budget and never paused skips the reservation
        self.active = self.requests is not None or self.tokens is not None or (
            self.paused_until > 0) or self.left is not None

    # -- before and after an attempt -------------------------------------------------

    def reserve(self, now: float, tokens: float) -> Reservation:
        """Book one request and ``tokens`` tokens; the reservation says when to start.

        Both budgets are booked from one start, the latest of now, the pause's end and
        each budget's next free moment: a budget booked earlier than the attempt really
        starts would let the next attempt follow it closer than its rate allows.
        """
        at, held = now, None
        if self.paused_until > now:
            at, held = self.paused_until, "pause"
        requests, budget = self.requests, self.tokens
        start = at
        if requests is not None:
            start = requests.free_at(start)
        if budget is not None:
            start = budget.free_at(start)
        spaced = self.left is not None and self.left <= 0
        paced = "pace"
        if spaced:
            server = max(self.spent_from, self.spent_next)
            if server > start:
                start, paced = server, "spent"  # the server's own pace holds it
        if start > at:
            at, held = start, held or paced  # a pause that holds it stays what holds it
        if requests is not None:
            requests.book(at, 1)
        if budget is not None:
            budget.book(at, tokens)
        if spaced:
            self.spent_next = at + self.spent_gap
            if at <= now:
                self.spent_went = max(self.spent_went, at)
        elif self.left is not None:
            self.left -= 1
        if held is not None:
            self.paced += 1
            self.paced_seconds += at - now
        res = Reservation(at, tokens if budget is not None else 0.0, held,
                          at - now if held is not None else 0.0)
        res.spaced = spaced
        return res

    def cancel(self, res: Reservation) -> None:
        """An attempt booked but never sent: give its request (unless a booking followed
        it) and its tokens back. It no longer counts as paced, nor its ``wait`` as paced
        time (set ``wait`` to 0 first to keep a wait it did sit out)."""
        if self.requests is not None:
            self.requests.unbook(res.at, 1)
        if res.spaced and self.spent_next == res.at + self.spent_gap:
            self.spent_next = res.at  # the latest spaced booking: its place is free again
        if res.held is not None:
            self.paced = max(self.paced - 1, 0)
            self.paced_seconds = max(self.paced_seconds - res.wait, 0.0)
            res.held, res.wait = None, 0.0
        self.settle(res, 0)

    def settle(self, res: Reservation, used: float) -> None:
        """An attempt used ``used`` tokens where it booked ``res.tokens``."""
        if self.tokens is not None and res.tokens != used:
            self.tokens.give_back(res.tokens - used)
            res.tokens = used

    # -- what the server says --------------------------------------------------------

    def pause(self, until: float, reason: str) -> bool:
        """Hold new attempts until ``until``; a shorter pause never shortens a longer one.
        True if this extended the pause."""
        if until <= self.paused_until:
            return False
        self.paused_until = until
        self.pause_reason = reason
        self.active = True
        return True

    def learn(self, limits: RateLimits, now: float) -> None:
        """A response's rate-limit headers, read at ``now``.

        Requests: the count left lets that many attempts go; none left paces attempts one
        reported reset apart, from the later of now + reset and the last paced booking.
        Tokens: a spent budget pauses until its reset.
        """
        remaining, reset = limits.requests_remaining, limits.requests_reset
        if remaining is not None:
            if remaining > 0:
                self.left = remaining
            elif reset is not None and reset > 0:
                self.left = 0
                self.spent_gap = reset
                self.spent_from = max(self.spent_from, now + reset)
            self._refresh()
        remaining, reset = limits.tokens_remaining, limits.tokens_reset
        if remaining is not None and remaining <= 0 and reset is not None and reset > 0:
            self.pause(now + reset, "the server's tokens budget is spent")

    def recheck(self, res: Reservation) -> float | None:
        """``res`` waited until its start: when may it go now? ``None`` if a pause set or
        extended meanwhile holds it (it must book again, behind the pause and paced after
        it). A paced attempt moves later (keeping its place in the pace) if an answer since
        said the spent budget is back only later, or if the paced attempt before it went
        later than booked: the gap the server asks for is between the requests it sees."""
        if self.paused_until > res.at:
            return None
        if res.spaced and self.left is not None and self.left <= 0:
            went = self.spent_went  # another attempt's (this one's own, once it is set)
            at = max(res.at, self.spent_from,
                     went + self.spent_gap if went < res.at else res.at)
            if at > res.at:
                self.paced_seconds += at - res.at
                res.wait += at - res.at
                res.at = at
                self.spent_next = max(self.spent_next, at + self.spent_gap)
            self.spent_went = max(self.spent_went, at)
        return res.at

    def succeeded(self) -> None:
        """An attempt got an answer from the server (any answer but a failure of the
        server itself): the endpoint is well."""
        self.failures = 0
        self.probing = False
        self.unhealthy_until = 0.0
        self.cooldown = self._base_cooldown

    def failed(self, kind: ErrorKind | None, retry_after: float | None, now: float) -> None:
        """An attempt failed with an error of ``kind``: update pause, health, disabling."""
        if kind in _PAUSING:
            self.rate_limited += 1
            if retry_after is not None and retry_after > 0:
                self.pause(now + retry_after, f"the server asked to wait ({kind.value})")
                self.succeeded()  # it answered, and said when to come back: alive
                return
            if kind is ErrorKind.RATE_LIMITED:
                self.succeeded()
                return
            # an overload (503, 529) that names no time to come back is a 5xx like others
        if kind is ErrorKind.AUTH:
            self.disabled = True
            self.probing = False
        elif kind in _UNWELL or kind is ErrorKind.OVERLOADED:
            self.failures += 1
            # A failure during a cooldown is a call sent before it began: it neither
            # pushes the probe back nor doubles the next cooldown.
            if self.probing or (self.failures >= self.unhealthy_after
                                and self.unhealthy_until <= now):
                self.unhealthy_until = now + min(self.cooldown, self.max_cooldown)
                self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self.probing = False
        else:
            self.succeeded()  # the server answered about the call itself (400, 404...)

    def released(self) -> None:
        """The probe a pool took ended without an outcome (cancelled, refused before it was
        sent): the endpoint may be probed again."""
        self.probing = False

    def reset_counts(self) -> None:
        """Zero the counters (``paced``, ``rate_limited``); the state stays."""
        self.paced = self.rate_limited = 0
        self.paced_seconds = 0.0

    def enable(self) -> None:
        """The key changed: an endpoint disabled by an authentication failure is back."""
        self.disabled = False
        self.succeeded()

    # -- state -------------------------------------------------------------------------

    def state(self, now: float) -> str:
        """``ready``, ``paused``, ``unhealthy``, ``probing`` or ``disabled``."""
        if self.disabled:
            return DISABLED
        if self.probing:
            return PROBING
        if self.unhealthy_until > 0:  # cooling down, or cooled down and due a probe
            return UNHEALTHY
        if self.held_until(now) > now:
            return PAUSED
        return READY

    def held_until(self, now: float) -> float:
        """The end of the pause, or of the server's pace while its budget is spent (an
        attempt booked now would wait that long, whatever pacing of our own adds)."""
        if self.left is not None and self.left <= 0 and self.spent_from > self.paused_until:
            return self.spent_from
        return self.paused_until

    def ready_at(self, now: float) -> float:
        """When the endpoint takes attempts again: now, the end of its pause or cooldown
        (``math.inf``: disabled, or its probe is out). Pacing is not in it: a paced
        endpoint takes an attempt and holds it (see :meth:`pace_at`)."""
        if self.disabled or self.probing:
            return math.inf
        return max(now, self.paused_until, self.unhealthy_until)

    def pace_at(self, now: float) -> float:
        """When an attempt booked now would go, as far as pacing says: the budgets' next
        free moment and the server's pace while its budget is spent."""
        at = now
        for budget in (self.requests, self.tokens):
            if budget is not None:
                at = max(at, budget.tat)
        if self.left is not None and self.left <= 0:
            at = max(at, self.spent_from, self.spent_next)
        return at

    def interval(self) -> float:
        """How far apart pacing spaces attempts now (0: not at all)."""
        if self.requests is not None:
            return self.requests.interval
        if self.left is not None and self.left <= 0:
            return self.spent_gap
        return 0.0

    def take(self, now: float) -> str:
        """A pool wants to send here now: ``""`` if the endpoint is out (disabled, cooling
        down, or its one probe already out), ``"probe"`` if its cooldown ended and this
        attempt is the probe (the pool releases it if it ends without an outcome), else
        ``"go"``."""
        if self.disabled or self.probing or self.unhealthy_until > now:
            return ""
        if self.unhealthy_until > 0:  # cooled down: this attempt is the probe
            self.probing = True
            return "probe"
        return "go"

"""What an endpoint knows of its limits: pacing budgets, pauses, health.

The :class:`Gate` of an endpoint answers one question before each attempt: when may it go?
Its answer is the latest of: now, the end of a pause (a 429 or an overload with
Retry-After, or a budget the server's headers say is spent), and the next free moment of
the ``rpm`` and ``tpm`` budgets. The budgets are GCRA (the generic cell rate algorithm):
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

    def reserve(self, now: float, units: float) -> float:
        """Book ``units`` now or as soon as they fit; return when they may be used."""
        start = max(now, self.tat)
        self.tat = start + units * self.interval
        return start

    def give_back(self, units: float) -> None:
        """Return ``units`` booked but not used (or, negative, book units used beyond the
        estimate)."""
        self.tat -= units * self.interval


class Reservation:
    """What one attempt booked: when it may start and the units it holds."""

    __slots__ = ("at", "held", "tokens")

    def __init__(self, at: float, tokens: float, held: str | None) -> None:
        self.at = at
        self.tokens = tokens
        self.held = held  # what holds it back: "pause", "pace", or None


class Gate:
    """Pacing, pauses and health of one endpoint (see the module docstring)."""

    __slots__ = (
        "_base_cooldown",
        "active",
        "cooldown",
        "disabled",
        "failures",
        "max_cooldown",
        "paced",
        "paced_seconds",
        "pause_reason",
        "paused_until",
        "probing",
        "rate_limited",
        "requests",
        "tokens",
        "unhealthy_after",
        "unhealthy_until",
    )

    def __init__(self, settings: EndpointSettings) -> None:
        self.requests: Budget | None = None
        self.tokens: Budget | None = None
        self.paused_until = 0.0
        self.pause_reason = ""
        self.failures = 0
        self.unhealthy_until = 0.0
        self.probing = False
        self.disabled = False
        self.paced = 0  # attempts held back by pacing or a pause
        self.paced_seconds = 0.0
        self.rate_limited = 0  # answers refusing for a limit (429, overload)
        self.active = False
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
        self._base_cooldown = settings.cooldown
        self.max_cooldown = settings.max_cooldown
        self.cooldown = settings.cooldown
        self._refresh()

    def _refresh(self) -> None:
        # the fast path: an endpoint with no budget and never paused skips the reservation
        self.active = self.requests is not None or self.tokens is not None or (
            self.paused_until > 0)

    # -- before and after an attempt -------------------------------------------------

    def reserve(self, now: float, tokens: float) -> Reservation:
        """Book one request and ``tokens`` tokens; the reservation says when to start."""
        at, held = now, None
        if self.paused_until > now:
            at, held = self.paused_until, "pause"
        if self.requests is not None:
            start = self.requests.reserve(at, 1)
            if start > at:
                at, held = start, "pace"
        if self.tokens is not None:
            start = self.tokens.reserve(at, tokens)
            if start > at:
                at, held = start, "pace"
        if held is not None:
            self.paced += 1
            self.paced_seconds += at - now
        return Reservation(at, tokens if self.tokens is not None else 0.0, held)

    def cancel(self, res: Reservation) -> None:
        """An attempt booked but never sent: give its request and tokens back."""
        if self.requests is not None:
            self.requests.give_back(1)
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
        """A response's rate-limit headers: a spent budget pauses until its reset."""
        for remaining, reset, what in (
            (limits.requests_remaining, limits.requests_reset, "requests"),
            (limits.tokens_remaining, limits.tokens_reset, "tokens"),
        ):
            if remaining is not None and remaining <= 0 and reset is not None and reset > 0:
                self.pause(now + reset, f"the server's {what} budget is spent")

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
            self.succeeded()  # it answered: alive
        elif kind is ErrorKind.AUTH:
            self.disabled = True
            self.probing = False
        elif kind in _UNWELL:
            self.failures += 1
            if self.probing or self.failures >= self.unhealthy_after:
                self.unhealthy_until = now + self.cooldown
                self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self.probing = False
        else:
            self.succeeded()  # the server answered about the call itself (400, 404...)

    def released(self) -> None:
        """An attempt ended without an outcome (cancelled): a probe it was is free again."""
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
        if self.paused_until > now:
            return PAUSED
        return READY

    def ready_at(self, now: float) -> float:
        """When a new attempt could start here (``math.inf``: disabled, or a probe is out)."""
        if self.disabled or self.probing:
            return math.inf
        at = max(now, self.paused_until, self.unhealthy_until)
        if self.requests is not None:
            at = max(at, self.requests.tat)
        return at

    def take(self, now: float) -> bool:
        """A pool wants to send here now: False if the endpoint is out (disabled, cooling
        down, or its one probe already out); an endpoint whose cooldown ended is taken as
        the probe."""
        if self.disabled or self.probing or self.unhealthy_until > now:
            return False
        if self.unhealthy_until > 0:  # cooled down: this attempt is the probe
            self.probing = True
        return True

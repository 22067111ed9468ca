"""One endpoint: its settings, resolved key and URL, queue and counters."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._errors import ErrorKind
from ._limits import Gate, Reservation
from ._queue import Limiter, QueueFull, Waiter
from ._settings import EndpointConfig
from ._stats import Counted, Stats, StatsCounter

if TYPE_CHECKING:
    from ._errors import CallError
    from ._observe import Observation
    from ._shared_endpoint import SharedEndpoint
    from ._types import RateLimits, Usage

_monotonic = time.monotonic
_time = time.time

__all__ = ["Endpoint"]


class Endpoint:
    """The live state of one endpoint. Created and owned by a :class:`Backend`.

    The queue and the counters share one lock, so admitting a call and counting it is a
    single step; the call's :class:`Counted` observation counts the rest of its way (out of
    the queue, its retries, its end) under the same lock, so a snapshot never sees a call
    half-way.
    """

    __slots__ = ("_lock", "batches_counted", "config", "endpoint_id", "gate", "limiter",
                 "shared", "stats")

    def __init__(self, config: EndpointConfig, shared: SharedEndpoint | None = None) -> None:
        self.shared = shared  # its limits shared with other processes (``_shared``), if any
        self.endpoint_id = config.endpoint_id
        self.config = config
        s = config.settings
        self.limiter = Limiter(s.max_concurrent_requests, s.queue_size)
        self._lock = self.limiter.lock
        self.stats = StatsCounter(self._lock)
        self.limiter.on_dead_locked = self._dead_locked
        self.gate = Gate(s)
        # provider batches whose results' tokens these stats have, by whichever job object
        # read them: reading the same batch again in this process counts nothing twice
        self.batches_counted: set[str] = set()

    def admit(self) -> Waiter | None:
        """Count a new call and take a slot (``None``) or a place in the queue (the waiter).

        Raises :class:`~ipfs_accel._queue.QueueFull` (the call counted as rejected).
        """
        with self._lock:
            try:
                waiter = self.limiter.admit_locked()
            except QueueFull:
                self.stats.rejected_locked()
                raise
            self.stats.admitted_locked(queued=waiter is not None)
            return waiter

    def counted(self, start: float, waiter: Waiter | None, obs: Observation | None, *,
                ends: bool) -> Counted:
        """The stats' observation of a call just admitted (``obs``: the observers', which
        it passes every event on to; ``ends``: and the call's end)."""
        return Counted(self.stats, start, waiter, obs, ends=ends)

    def wait(self, waiter: Waiter, timeout: float | None = None) -> None:
        """Block the calling thread until ``waiter`` holds a slot (``TimeoutError`` when
        ``timeout`` passes first; the place is given back whatever ends the wait)."""
        self.limiter.wait(waiter, timeout)

    async def await_slot(self, waiter: Waiter) -> None:
        """Wait on the running loop until ``waiter`` holds a slot (cancel to stop waiting)."""
        await self.limiter.await_slot(waiter)

    def release(self, *, holding: bool, waiter: Waiter | None = None) -> None:
        """A call ended (its :class:`Counted` told so): if it held a slot, hand the slot on.

        ``waiter``: the call's place in the queue, if it had one; a waiter found dead (its
        loop closed while it waited) was let go of then.
        """
        if not holding or (waiter is not None and waiter.dead):
            return
        with self._lock:
            waiter = self.limiter.leave_locked()
        if waiter is not None:
            self.limiter.hand_over(waiter)

    def batch_used(self, usage: Usage) -> None:
        """A provider batch's answer was read: its tokens count here."""
        with self._lock:
            self.stats.batch_used_locked(usage)

    def _dead_locked(self) -> None:
        # a call that waited on an event loop closed under it: it will never finish itself
        self.stats.dead_locked()

    # -- limits: pacing, pauses, health (see ``_limits``) ---------------------------------

    def reserve(self, tokens: float) -> Reservation:
        """Book an attempt with the endpoint's budgets (callers skip it while
        ``gate.active`` is false: nothing limits the endpoint)."""
        with self._lock:
            return self.gate.reserve(_monotonic(), tokens)

    def cancel(self, res: Reservation) -> None:
        """An attempt booked but never sent gives its budget back."""
        with self._lock:
            self.gate.cancel(res)

    def recheck(self, res: Reservation) -> float | None:
        """After waiting for ``res``: when it may go (``None``: book again); see
        :meth:`Gate.recheck`."""
        with self._lock:
            return self.gate.recheck(res)

    def settle(self, res: Reservation, used: float) -> None:
        """An attempt used ``used`` tokens of what it booked."""
        if res.tokens != used:
            with self._lock:
                self.gate.settle(res, used)

    def learn(self, limits: RateLimits) -> None:
        """What the headers of an answer just received say of the budgets
        (``parse_rate_limits``)."""
        with self._lock:
            self.gate.learn(limits, _monotonic())

    def answered(self) -> None:
        """An attempt got its answer: the endpoint is well (no lock when it already was)."""
        gate = self.gate
        if gate.failures or gate.probing or gate.unhealthy_until:
            with self._lock:
                gate.succeeded()

    def failed(self, exc: CallError) -> None:
        """An attempt failed with ``exc``: pause, health or disabling as it says. The
        call's own deadline running out says nothing of the endpoint."""
        if exc.kind is ErrorKind.TIMEOUT and not exc.retryable:
            self.released()
            return
        retry_after = exc.retry_after if self.config.settings.honor_retry_after else None
        with self._lock:
            self.gate.failed(exc.kind, retry_after, _monotonic())

    def shared_health(self, health: str) -> None:
        """What the shared state says of the endpoint's health (``"off"``: its key refused;
        else the seconds left of a cooldown another worker started): taken in as if this
        process had seen it, so a pool skips the endpoint meanwhile."""
        gate = self.gate
        with self._lock:
            if health == "off":
                gate.disabled = True
                return
            until = _monotonic() + float(health)
            if until > gate.unhealthy_until:
                gate.unhealthy_until = until
                gate.failures = max(gate.failures, gate.unhealthy_after)

    def released(self) -> None:
        """A pool's probe ended without an outcome (cancelled, or refused unsent)."""
        if self.gate.probing:
            with self._lock:
                self.gate.released()

    def take(self) -> str:
        """For a pool: may an attempt go here now? ``""`` no, ``"go"``, or ``"probe"``:
        a cooled-down endpoint's first taker is its probe (see :meth:`Gate.take`)."""
        with self._lock:
            return self.gate.take(_monotonic())

    def eta(self, now: float) -> float:
        """When a call sent here now would go, by pacing: its next free moment, plus one
        interval for each call queued ahead of it."""
        gate = self.gate
        if not gate.active:
            return now
        return gate.pace_at(now) + self.limiter.waiting * gate.interval()

    def unsent(self) -> None:
        """A call that waited here ends without sending (the endpoint closed meanwhile);
        its end is counted by its :class:`Counted` as any other."""
        with self._lock:
            self.stats.unsent += 1

    def closed_reason(self) -> str | None:
        """Why a pool should not send here now (disabled, or cooling down), else ``None``."""
        gate = self.gate
        if gate.disabled:
            return "disabled by an authentication failure"
        if gate.unhealthy_until > _monotonic() and not gate.probing:
            return f"unhealthy ({gate.failures} failures in a row; cooling down)"
        return None

    def ready_at(self, now: float) -> float:
        """When an attempt could start here (``math.inf``: disabled or its probe is out)."""
        return self.gate.ready_at(now)

    @property
    def load(self) -> float:
        """Calls in flight and queued, relative to the endpoint's concurrency."""
        limiter = self.limiter
        return (limiter.in_flight + limiter.waiting) / limiter.limit

    @property
    def has_room(self) -> bool:
        """A call admitted now would start at once (no queue)."""
        limiter = self.limiter
        return limiter.in_flight < limiter.limit and not limiter.waiting

    def snapshot(self) -> Stats:
        """The endpoint's stats now, with the queue's own counts of waiting and running."""
        with self._lock:
            gate = self.gate
            now = _monotonic()
            return self.stats.snapshot_locked(
                state=gate.state(now),
                paused_until=(_time() + held - now if (held := gate.held_until(now)) > now
                              else None),
                consecutive_failures=gate.failures,
                rate_limited=gate.rate_limited,
                paced=gate.paced,
                paced_seconds=gate.paced_seconds,
            )

    def reset_stats(self) -> None:
        """Zero the finished-call counters; calls queued or in flight stay counted."""
        with self._lock:
            self.stats.reset_locked()
            self.gate.reset_counts()

    def reconfigure(self, config: EndpointConfig) -> None:
        """Swap in new settings; calls already running keep the ones they started with.

        A new key brings back an endpoint disabled by an authentication failure.
        """
        key_changed = config.api_key != self.config.api_key
        self.config = config
        if self.shared is not None:
            self.shared = self.shared.configured(config)
        s = config.settings
        with self._lock:
            self.gate.configure(s)
            if key_changed:
                self.gate.enable()
        self.limiter.resize(s.max_concurrent_requests, s.queue_size)

    def __repr__(self) -> str:
        return f"<Endpoint {self.endpoint_id} {self.config.base_url}>"

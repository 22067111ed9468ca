"""One endpoint: its settings, resolved key and URL, queue and counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._queue import Limiter, QueueFull, Waiter
from ._settings import EndpointConfig
from ._stats import Stats, StatsCounter

if TYPE_CHECKING:
    from ._types import Usage

__all__ = ["Endpoint"]


class Endpoint:
    """The live state of one endpoint. Created and owned by a :class:`Backend`.

    The queue and the counters share one lock, so admitting a call and counting it, or
    finishing it and handing its slot to the next, is a single step: a snapshot never sees
    a call half-way, and a call costs two lock round trips, not four.
    """

    __slots__ = ("_lock", "config", "endpoint_id", "limiter", "stats")

    def __init__(self, config: EndpointConfig) -> None:
        self.endpoint_id = config.endpoint_id
        self.config = config
        s = config.settings
        self.limiter = Limiter(s.max_concurrent_requests, s.queue_size)
        self._lock = self.limiter.lock
        self.stats = StatsCounter(self._lock)
        self.limiter.on_dead_locked = self._dead_locked

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
            self.stats.admitted_locked()
            return waiter

    def wait(self, waiter: Waiter, timeout: float | None = None) -> None:
        """Block the calling thread until ``waiter`` holds a slot (``TimeoutError`` when
        ``timeout`` passes first; the place is given back whatever ends the wait)."""
        self.limiter.wait(waiter, timeout)

    async def await_slot(self, waiter: Waiter) -> None:
        """Wait on the running loop until ``waiter`` holds a slot (cancel to stop waiting)."""
        await self.limiter.await_slot(waiter)

    def finish(
        self, *, holding: bool, ok: bool, latency: float, usage: Usage | None,
        cancelled: bool = False, waiter: Waiter | None = None,
    ) -> None:
        """Count a call's end and, if it held a slot, hand the slot on.

        ``cancelled``: the call ended by cancellation, ``KeyboardInterrupt`` or a stream
        closed before its end; it counts as failed and as cancelled. ``waiter``: the call's
        place in the queue, if it had one; a waiter found dead (its loop closed while it
        waited) was counted then, so its late end counts nothing again.
        """
        if waiter is not None and waiter.dead:
            return
        with self._lock:
            self.stats.finished_locked(ok=ok, latency=latency, usage=usage, cancelled=cancelled)
            waiter = self.limiter.leave_locked() if holding else None
        if waiter is not None:
            self.limiter.hand_over(waiter)

    def _dead_locked(self) -> None:
        # a call that waited on an event loop closed under it: it will never finish itself
        self.stats.finished_locked(ok=False, latency=0.0, usage=None, cancelled=True)

    def snapshot(self) -> Stats:
        """The endpoint's stats now, with the queue's own counts of waiting and running."""
        with self._lock:
            return self.stats.snapshot_locked(
                queued=self.limiter.waiting, in_flight=self.limiter.in_flight
            )

    def reset_stats(self) -> None:
        """Zero the finished-call counters; calls queued or in flight stay counted."""
        with self._lock:
            self.stats.reset_locked(live=self.limiter.waiting + self.limiter.in_flight)

    def reconfigure(self, config: EndpointConfig) -> None:
        """Swap in new settings; calls already running keep the ones they started with."""
        self.config = config
        s = config.settings
        self.limiter.resize(s.max_concurrent_requests, s.queue_size)

    def __repr__(self) -> str:
        return f"<Endpoint {self.endpoint_id} {self.config.base_url}>"

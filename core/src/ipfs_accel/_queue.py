"""The per-endpoint queue: a FIFO concurrency limiter shared by threads and coroutines.

One lock guards a count of calls in flight and a deque of waiters. A waiter is either a
thread (woken through a pre-acquired lock) or a coroutine (woken through a future on its
own event loop), so the same limits hold across the sync and async APIs, and the async
path never hops threads. A released slot is handed straight to the oldest waiter, which
keeps start order FIFO and stops late arrivals from overtaking the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["Limiter", "QueueFull", "Waiter"]

_WAITING, _GRANTED, _ABANDONED, _DEAD = 0, 1, 2, 3


class QueueFull(Exception):
    """Raised by :meth:`Limiter.enter` when ``queue_size`` calls are already waiting."""


class Waiter:
    """A call's place in the queue: a thread's lock or a coroutine's future to wake."""

    __slots__ = ("future", "lock", "loop", "state", "thread")

    def __init__(self) -> None:
        self.state = _WAITING
        self.lock: threading.Lock | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[None] | None = None
        self.thread = 0

    @property
    def dead(self) -> bool:
        """Its event loop closed while it waited; the queue counted its call as ended."""
        return self.state == _DEAD

    def wake(self) -> bool:
        """Tell the waiter it holds a slot. False when nobody can hear it any more: its
        event loop was closed while it waited, so the slot must go to the next waiter."""
        if self.lock is not None:
            self.lock.release()
            return True
        loop, future = self.loop, self.future
        assert loop is not None and future is not None
        try:
            if threading.get_ident() == self.thread:
                loop.call_soon(_resolve, future)
            else:
                loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # the loop is closed: the task that waited will never run again
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Limiter:
    """At most ``limit`` holders at once and at most ``queue_size`` waiting, FIFO.

    ``enter``/``aenter`` return once the caller holds a slot (or raise :class:`QueueFull`
    at once, or ``TimeoutError`` when ``timeout`` runs out while waiting); every successful
    enter must be paired with exactly one :meth:`leave`.
    """

    __slots__ = ("_lock", "_waiters", "in_flight", "limit", "on_dead_locked", "queue_size")

    def __init__(self, limit: int, queue_size: int) -> None:
        self._lock = threading.Lock()  # shared with the endpoint's counters (see ``lock``)
        self._waiters: deque[Waiter] = deque()
        self.limit = limit
        self.queue_size = queue_size
        self.in_flight = 0
        # Called under the lock for each waiter found dead (its loop closed while it
        # waited): the endpoint counts that call as ended, since it will never end itself.
        self.on_dead_locked: Callable[[], None] | None = None

    @property
    def lock(self) -> threading.Lock:
        """The lock guarding the queue; the endpoint's counters change under it too, so a
        call's admission and its counting (and its end and the hand-over) are one step."""
        return self._lock

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        return len(self._waiters)

    def resize(self, limit: int, queue_size: int) -> None:
        """Change the limits; raising ``limit`` starts waiters at once."""
        wake: list[Waiter] = []
        with self._lock:
            self.limit = limit
            self.queue_size = queue_size
            while self._waiters and self.in_flight < self.limit:
                waiter = self._waiters.popleft()
                waiter.state = _GRANTED
                self.in_flight += 1
                if waiter.lock is not None or waiter.future is not None:
                    wake.append(waiter)
        for waiter in wake:
            self.hand_over(waiter)

    def admit(self) -> Waiter | None:
        """Take a slot now (returns ``None``) or a place in the queue (returns the waiter).

        Raises :class:`QueueFull` at once when ``queue_size`` calls already wait. A waiter
        must then be passed to :meth:`wait` or :meth:`await_slot`.
        """
        with self._lock:
            return self.admit_locked()

    def admit_locked(self) -> Waiter | None:
        """:meth:`admit` for a caller that holds :attr:`lock`."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return None
        if len(self._waiters) >= self.queue_size:
            raise QueueFull
        waiter = Waiter()
        self._waiters.append(waiter)
        return waiter

    def _abandon(self, waiter: Waiter) -> bool:
        """Leave the queue. False if the slot was already granted (the caller holds it)."""
        with self._lock:
            if waiter.state == _GRANTED:
                return False
            if waiter.state == _WAITING:
                waiter.state = _ABANDONED
                self._waiters.remove(waiter)
            return True  # (a dead waiter left the queue when it was found dead)

    def wait(self, waiter: Waiter, timeout: float | None = None) -> None:
        """Block the calling thread until ``waiter`` holds a slot.

        Raises ``TimeoutError`` (and leaves the queue) if ``timeout`` seconds pass first.
        """
        with self._lock:
            if waiter.state == _GRANTED:
                return
            waiter.lock = lock = threading.Lock()
            lock.acquire()
        try:
            if lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
                return
        except BaseException:
            # KeyboardInterrupt or SystemExit while blocked: leave the queue, or pass on a
            # slot granted in that same moment, so the endpoint never loses it.
            if not self._abandon(waiter):
                self.leave()
            raise
        if self._abandon(waiter):
            raise TimeoutError("timed out waiting in the endpoint's queue")
        lock.acquire()  # granted while timing out: the grant's release is on its way

    async def await_slot(self, waiter: Waiter) -> None:
        """Wait on the running event loop until ``waiter`` holds a slot.

        Cancel the task (``asyncio.timeout`` does) to stop waiting: the place is freed, and
        a slot granted in that same moment is passed on.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if waiter.state == _GRANTED:
                return
            waiter.loop = loop
            waiter.thread = threading.get_ident()
            waiter.future = future = loop.create_future()
        try:
            await future
        except BaseException:
            if not self._abandon(waiter):
                self.leave()
            raise

    def enter(self, timeout: float | None = None) -> None:
        """Admit and wait (sync): return holding a slot."""
        waiter = self.admit()
        if waiter is not None:
            self.wait(waiter, timeout)

    async def aenter(self) -> None:
        """Admit and wait (async): return holding a slot."""
        waiter = self.admit()
        if waiter is not None:
            await self.await_slot(waiter)

    def leave(self) -> None:
        """Give the slot back: to the oldest waiter that can still take it, if any."""
        with self._lock:
            waiter = self.leave_locked()
        self.hand_over(waiter)

    def hand_over(self, waiter: Waiter | None) -> None:
        """Wake ``waiter``, granted a slot by :meth:`leave_locked` (call outside the lock).

        A waiter whose event loop was closed while it waited can never take the slot: it is
        counted as dead (``on_dead_locked``) and the slot goes on to the next waiter.
        """
        while waiter is not None and not waiter.wake():
            with self._lock:
                waiter.state = _DEAD
                if self.on_dead_locked is not None:
                    self.on_dead_locked()
                waiter = self.leave_locked()

    def leave_locked(self) -> Waiter | None:
        """:meth:`leave` for a caller that holds :attr:`lock`; it must then pass the waiter
        returned (if any) to :meth:`hand_over`, outside the lock."""
        if self.in_flight > self.limit or not self._waiters:
            self.in_flight -= 1
            return None
        waiter = self._waiters.popleft()
        waiter.state = _GRANTED
        if waiter.lock is None and waiter.future is None:
            return None  # granted before it started waiting: wait()/await_slot() will see it
        return waiter

"""Attempt timeouts on an event loop: one timer per loop and timeout length, not one per call.

``asyncio.timeout_at`` gives every scope its own ``TimerHandle`` in the loop's heap (pushed,
then cancelled and left for the loop to sift out, each comparison a Python ``__lt__``):
about 5 us a scope with 64 calls in flight, a measurable share of a call on a fast
transport. But every attempt of one endpoint's timeout length that starts on one loop ends
in the order it started (``now + length``, ``now`` never going back), so a FIFO of expiries
with a single handle at its head does the same job: arming is an append, disarming a flag,
and the handle moves on to the next live expiry when it fires.

What a scope promises is ``asyncio.timeout``'s: when the time is up the task is cancelled;
leaving, the cancellation is taken back (``Task.uncancel``) and the caller is told the
attempt ran out only if nothing else cancelled the task meanwhile. Usage::

    expiry = arm(at, length)
    try:
        ... await the attempt ...
    except asyncio.CancelledError:
        if expiry.leave():
            raise <the attempt's timeout error> from None
        raise
    finally:
        expiry.leave()
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import weakref

__all__ = ["Expiry", "arm"]

_monotonic = time.monotonic
# The loop runs a handle due within its clock's resolution: an expiry that near is due.
_EARLY = time.get_clock_info("monotonic").resolution
_ARMED, _LEFT, _FIRED, _TAKEN = range(4)
_COMPACT = 64  # below this length a lane's queue is never rebuilt


class Expiry:
    """One armed attempt: its task is cancelled at ``at`` (``time.monotonic``) unless it
    leaves first."""

    __slots__ = ("_cancelling", "_lane", "_state", "at", "task")

    def __init__(self, lane: _Lane, task: asyncio.Task[object], at: float) -> None:
        self._lane = lane
        self.task = task
        self.at = at
        self._cancelling = task.cancelling()
        self._state = _ARMED

    @property
    def fired(self) -> bool:
        """Whether the time ran out (and the task was cancelled for it)."""
        return self._state in (_FIRED, _TAKEN)

    def leave(self) -> bool:
        """Disarm. The first call after the time ran out takes the cancellation back and
        answers whether the attempt ended for it (nothing else cancelled the task);
        every other call answers ``False``."""
        state = self._state
        if state == _ARMED:
            self._state = _LEFT
            self._lane.left(self)
            return False
        if state == _FIRED:
            self._state = _TAKEN
            return self.task.uncancel() <= self._cancelling
        return False


class _Lane:
    """The expiries of one timeout length on one loop, in the order they end."""

    __slots__ = ("live", "queue", "timed")

    def __init__(self) -> None:
        # No reference to its loop, not even through its TimerHandle: the loop's lanes are
        # values of a weak mapping keyed by the loop, and go with it.
        self.queue: collections.deque[Expiry] = collections.deque()
        self.timed = False  # a handle of the loop will call _fire
        self.live = 0

    def add(self, task: asyncio.Task[object], at: float) -> Expiry:
        queue = self.queue
        if queue and at < queue[-1].at:  # never with one length on a monotonic clock
            at = queue[-1].at
        expiry = Expiry(self, task, at)
        queue.append(expiry)
        self.live += 1
        if not self.timed:
            self._schedule(at)
        return expiry

    def left(self, expiry: Expiry) -> None:
        self.live -= 1
        queue = self.queue
        while queue and queue[0]._state != _ARMED:
            queue.popleft()
        if len(queue) > _COMPACT and len(queue) > 2 * self.live:
            # a slow attempt at the head holds back the ones that ended after it
            self.queue = collections.deque(e for e in queue if e._state == _ARMED)

    def _schedule(self, at: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + (at - _monotonic()), self._fire)
        self.timed = True

    def _fire(self) -> None:
        self.timed = False
        queue = self.queue
        due = _monotonic() + _EARLY
        while queue:
            expiry = queue[0]
            if expiry._state == _ARMED:
                if expiry.at > due:
                    self._schedule(expiry.at)
                    return
                expiry._state = _FIRED
                self.live -= 1
                expiry.task.cancel()
            queue.popleft()


_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Lane]] = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()
# the last loop's lanes: a weak reference, so the cache never keeps a loop alive
_last: tuple[weakref.ref[asyncio.AbstractEventLoop] | None, dict[float, _Lane]] = (None, {})


def arm(at: float, length: float) -> Expiry:
    """Cancel the running task at ``at`` (``time.monotonic``), which is ``length`` seconds
    after now: every attempt of one length shares its loop's lane (and its one timer)."""
    global _last  # noqa: PLW0603 - a one-entry cache of the last loop's lanes
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("an attempt's timeout needs a task")
    last, lanes = _last
    if last is None or last() is not loop:
        with _lock:  # loops on several threads: the mapping is changed by one at a time
            found = _lanes.get(loop)
            if found is None:
                found = _lanes[loop] = {}
        lanes = found
        _last = (weakref.ref(loop), lanes)
    lane = lanes.get(length)
    if lane is None:
        lane = lanes[length] = _Lane()
    return lane.add(task, at)

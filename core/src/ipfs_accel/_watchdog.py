"""Bounding blocking reads in time: one thread that cuts a sync response off at its limit.

httpx2's timeouts bound each socket operation, not a whole response: a server that sends a
byte every half second keeps a thread reading for ever. An event loop can cancel a read; a
thread cannot, so a sync read that must end by some moment is registered here, and when the
moment passes the watchdog shuts the response's socket down. The blocked ``recv`` returns at
once, and the reader, seeing :attr:`Guard.fired`, raises its timeout instead of the
transport error that follows.

One daemon thread serves the whole process (started on first use, again after a fork); a
guard costs a lock round trip and a heap push, and ``cancel`` only sets a flag.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import socket
import threading
import time
from typing import Any

__all__ = ["Guard", "watch"]

_monotonic = time.monotonic


class Guard:
    """One registered read: cut ``response`` off at ``at`` (``time.monotonic``) unless
    cancelled first. ``at`` may be moved while registered (:meth:`extend`)."""

    __slots__ = ("at", "cancelled", "fired", "response")

    def __init__(self, response: Any, at: float) -> None:
        self.response = response
        self.at = at
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        """The read finished in time: the watchdog forgets it."""
        self.cancelled = True
        self.response = None
        _WATCHDOG.cancelled += 1  # a hint for compaction; a lost update does no harm

    def extend(self, at: float) -> None:
        """Move the limit. A later limit takes effect when the earlier one comes due; an
        earlier one is re-registered so the watchdog wakes for it."""
        earlier = at < self.at
        self.at = at
        if earlier and not self.cancelled:
            _WATCHDOG.push(self, at)

    def _fire(self) -> None:
        response = self.response
        if response is None or self.cancelled or response.is_closed:
            return
        self.fired = True
        _shutdown(response)


def _shutdown(response: Any) -> None:
    """Shut the socket under an httpx2 response down (both ways), waking a blocked read."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    __slots__ = ("_cond", "_heap", "_seq", "_thread", "cancelled")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.cancelled = 0

    def push(self, guard: Guard, at: float) -> None:
        with self._cond:
            heap = self._heap
            if len(heap) > 256 and self.cancelled * 2 > len(heap):
                # most entries are reads that ended in time: drop them rather than let the
                # heap grow with the call rate times the timeout
                heap[:] = [entry for entry in heap if not entry[2].cancelled]
                heapq.heapify(heap)
                self.cancelled = 0
            heapq.heappush(heap, (at, next(self._seq), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ipfs-accel-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._cond.notify()

    def _run(self) -> None:
        heap, cond = self._heap, self._cond
        while True:
            due: list[Guard] = []
            with cond:
                now = _monotonic()
                while heap and (heap[0][2].cancelled or heap[0][0] <= now):
                    at, _, guard = heapq.heappop(heap)
                    if guard.cancelled:
                        continue
                    if guard.at > at:  # extended: come back at the new limit
                        heapq.heappush(heap, (guard.at, next(self._seq), guard))
                        continue
                    due.append(guard)
                if not due:
                    # a paused guard waits at infinity, which no timed wait accepts
                    at = heap[0][0] if heap else math.inf
                    cond.wait(None if at == math.inf else at - now)
                    continue
            for guard in due:
                guard._fire()

    def reset(self) -> None:
        """After a fork: the thread did not come along, nor did the reads it watched."""
        self._cond = threading.Condition(threading.Lock())
        self._heap = []
        self._thread = None
        self.cancelled = 0


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG.reset)


def watch(response: Any, at: float) -> Guard:
    """Cut ``response`` (an httpx2 response being read) off at ``at`` unless the guard is
    cancelled first."""
    guard = Guard(response, at)
    _WATCHDOG.push(guard, at)
    return guard

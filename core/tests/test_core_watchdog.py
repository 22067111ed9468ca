"""The watchdog that bounds sync reads: it cuts a response off at its limit, never one
that finished or was paused, and it does not grow with the call rate."""

from __future__ import annotations

import math
import socket
import time

from ipfs_accel import _watchdog
from ipfs_accel._watchdog import watch


class _Stream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None


class _Response:
    """What the watchdog reads of an httpx2 response: its socket and whether it closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.extensions = {"network_stream": _Stream(sock)}
        self.is_closed = False


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.settimeout(30)  # a watchdog that never fires fails the test instead of hanging it
    return a, b


def test_a_guard_cuts_a_blocked_read_at_its_limit():
    """A read blocked past the guard's limit returns at once (end of stream), and the guard
    says it fired."""
    a, b = _pair()
    guard = watch(_Response(a), time.monotonic() + 0.05)
    assert a.recv(1) == b""
    assert guard.fired
    a.close(), b.close()


def test_cancelled_and_closed_reads_are_left_alone():
    """A guard cancelled before its limit, or whose response closed, never fires; a later
    guard firing proves their time came and went."""
    now = time.monotonic()
    a1, b1 = _pair()
    a2, b2 = _pair()
    a3, b3 = _pair()
    cancelled = watch(_Response(a1), now + 0.05)
    cancelled.cancel()
    closed_response = _Response(a2)
    closed = watch(closed_response, now + 0.05)
    closed_response.is_closed = True
    watch(_Response(a3), now + 0.1)
    assert a3.recv(1) == b""
    assert not cancelled.fired and not closed.fired
    b1.send(b"x")
    assert a1.recv(1) == b"x"  # still open both ways
    for s in (a1, b1, a2, b2, a3, b3):
        s.close()


def test_a_paused_guard_can_be_rearmed():
    """A guard paused at infinity (a stream's consumer holding a chunk) does not stop the
    watchdog, and re-armed to a near limit it fires."""
    a, b = _pair()
    guard = watch(_Response(a), math.inf)
    other_a, other_b = _pair()
    watch(_Response(other_a), time.monotonic() + 0.05)
    assert other_a.recv(1) == b""  # the watchdog still serves other guards
    guard.extend(time.monotonic() + 0.05)
    assert a.recv(1) == b""
    assert guard.fired
    for s in (a, b, other_a, other_b):
        s.close()


def test_guards_that_ended_in_time_do_not_pile_up():
    """Reads that finish long before their limit are dropped from the watchdog's heap, so
    it does not grow with calls per second times the timeout."""
    a, b = _pair()
    far = time.monotonic() + 3600
    for _ in range(2000):
        watch(_Response(a), far).cancel()
    watch(_Response(a), far).cancel()
    assert len(_watchdog._WATCHDOG._heap) < 1100
    a.close(), b.close()

"""The per-endpoint queue: a stateful model test and real threads/coroutines against it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from ipfs_accel._queue import _GRANTED, _WAITING, Limiter, QueueFull


class LimiterModel(RuleBasedStateMachine):
    """Admit, leave and abandon in any order; the limiter must match a simple model, and at
    the end every admitted call has ended exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.limiter: Limiter | None = None
        self.holders: list[int] = []  # call ids holding a slot
        self.waiting: list[tuple[int, object]] = []  # (call id, waiter), oldest first
        self.granted_order: list[int] = []
        self.admitted: list[int] = []
        self.ended: list[int] = []

    @precondition(lambda self: self.limiter is None)
    @rule(limit=st.integers(1, 4), queue_size=st.integers(0, 4))
    def setup(self, limit: int, queue_size: int) -> None:
        self.limiter = Limiter(limit, queue_size)
        self.limit, self.queue_size = limit, queue_size

    @precondition(lambda self: self.limiter is not None)
    @rule()
    def admit(self) -> None:
        assert self.limiter is not None
        immediate = len(self.holders) < self.limit and not self.waiting
        full = not immediate and len(self.waiting) >= self.queue_size
        try:
            waiter = self.limiter.admit()
        except QueueFull:
            assert full, "rejected although there was room"
            return
        assert not full, "admitted although the queue was full"
        call_id = len(self.admitted)
        self.admitted.append(call_id)
        if waiter is None:
            assert immediate
            self.holders.append(call_id)
            self.granted_order.append(call_id)
        else:
            self.waiting.append((call_id, waiter))

    @precondition(lambda self: self.limiter is not None and bool(self.holders))
    @rule(index=st.integers(0, 10))
    def leave(self, index: int) -> None:
        assert self.limiter is not None
        self._end(self.holders.pop(index % len(self.holders)))
        self.limiter.leave()
        if self.waiting:
            call_id, waiter = self.waiting.pop(0)
            assert waiter.state == _GRANTED  # type: ignore[attr-defined]
            self.holders.append(call_id)
            self.granted_order.append(call_id)

    @precondition(lambda self: self.limiter is not None and bool(self.waiting))
    @rule(index=st.integers(0, 10))
    def abandon(self, index: int) -> None:
        assert self.limiter is not None
        call_id, waiter = self.waiting.pop(index % len(self.waiting))
        assert self.limiter._abandon(waiter)  # type: ignore[arg-type]
        self._end(call_id)

    def _end(self, call_id: int) -> None:
        assert call_id not in self.ended, f"call {call_id} ended twice"
        self.ended.append(call_id)

    @invariant()
    def matches_model(self) -> None:
        if self.limiter is None:
            return
        assert self.limiter.in_flight == len(self.holders) <= self.limit
        assert self.limiter.waiting == len(self.waiting) <= self.queue_size
        assert all(w.state == _WAITING for _, w in self.waiting)  # type: ignore[attr-defined]

    @invariant()
    def starts_are_fifo(self) -> None:
        assert self.granted_order == sorted(self.granted_order)

    def teardown(self) -> None:
        """Drain: every admitted call must end exactly once and the limiter be empty."""
        if self.limiter is None:
            return
        while self.holders:
            self.leave(0)
        assert sorted(self.ended) == self.admitted
        assert self.limiter.in_flight == 0 and self.limiter.waiting == 0


LimiterModel.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLimiterModel = LimiterModel.TestCase


def _until(predicate, timeout: float = 10.0) -> None:
    """Wait for a state the limiter reaches without notifying anyone (its queue length)."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the limiter never reached the expected state"
        time.sleep(0.001)


def test_threads_never_exceed_limit_and_start_fifo():
    """Real threads: at most `limit` inside at once, and they start in arrival order."""
    limiter = Limiter(2, 100)
    inside = 0
    peak = 0
    changed = threading.Condition()
    started: list[int] = []
    gates = [threading.Event() for _ in range(30)]

    def worker(i: int) -> None:
        nonlocal inside, peak
        limiter.enter()
        with changed:
            started.append(i)
            inside += 1
            peak = max(peak, inside)
            changed.notify_all()
        gates[i].wait(30)
        with changed:
            inside -= 1
        limiter.leave()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
    for i, t in enumerate(threads):
        t.start()
        if i < 2:
            with changed:
                assert changed.wait_for(lambda n=i + 1: len(started) == n, 10)
        else:  # known arrival order: thread i is the (i-1)th in the queue before i+1 starts
            _until(lambda n=i - 1: limiter.waiting == n)
    for k in range(30):  # free one slot at a time: exactly one waiter may start
        gates[started[k]].set()
        if k + 2 < 30:
            with changed:
                assert changed.wait_for(lambda n=k + 3: len(started) == n, 10)
    for t in threads:
        t.join()
    assert peak == 2
    assert started[2:] == list(range(2, 30))
    assert limiter.in_flight == 0 and limiter.waiting == 0


def test_thread_timeout_leaves_the_queue():
    """A thread that times out waiting is gone from the queue and holds nothing."""
    limiter = Limiter(1, 5)
    limiter.enter()
    with pytest.raises(TimeoutError):
        limiter.enter(timeout=0.01)
    assert limiter.waiting == 0
    limiter.leave()
    assert limiter.in_flight == 0


@pytest.mark.asyncio
async def test_async_and_threads_share_the_limit():
    """Coroutines and threads together never exceed the limit; all finish; nothing leaks."""
    limiter = Limiter(3, 1000)
    inside = 0
    peak = 0
    lock = threading.Lock()

    def enter_leave_thread() -> None:
        nonlocal inside, peak
        limiter.enter()
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.002)
        with lock:
            inside -= 1
        limiter.leave()

    async def enter_leave_task() -> None:
        nonlocal inside, peak
        await limiter.aenter()
        with lock:
            inside += 1
            peak = max(peak, inside)
        await asyncio.sleep(0.002)
        with lock:
            inside -= 1
        limiter.leave()

    threads = [threading.Thread(target=enter_leave_thread) for _ in range(20)]
    for t in threads:
        t.start()
    await asyncio.gather(*(enter_leave_task() for _ in range(40)))
    for t in threads:
        t.join()
    assert peak <= 3
    assert limiter.in_flight == 0 and limiter.waiting == 0


@pytest.mark.asyncio
async def test_cancelled_waiters_free_their_place():
    """Cancelling waiting tasks frees their places; a slot granted at cancel time is passed on."""
    limiter = Limiter(1, 10)
    await limiter.aenter()
    tasks = [asyncio.create_task(limiter.aenter()) for _ in range(5)]
    await asyncio.sleep(0)
    assert limiter.waiting == 5
    for t in tasks[:3]:
        t.cancel()
    limiter.leave()  # grants tasks[0]'s slot while it is being cancelled
    await asyncio.gather(*tasks[:3], return_exceptions=True)
    await asyncio.sleep(0)
    await tasks[3]
    assert limiter.in_flight == 1 and limiter.waiting == 1
    limiter.leave()
    await tasks[4]
    limiter.leave()
    assert limiter.in_flight == 0 and limiter.waiting == 0


@pytest.mark.asyncio
async def test_resize_wakes_waiters():
    """Raising the limit starts waiting calls at once."""
    limiter = Limiter(1, 10)
    await limiter.aenter()
    waiting = [asyncio.create_task(limiter.aenter()) for _ in range(2)]
    await asyncio.sleep(0)
    limiter.resize(3, 10)
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert limiter.in_flight == 3

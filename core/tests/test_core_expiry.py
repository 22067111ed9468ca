"""The attempt timer of the async engine (``_expiry``): one handle per loop and timeout
length, with ``asyncio.timeout``'s promises (cancel at the time, take the cancellation back
on leaving, say it ran out only when nothing else cancelled the task)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref

import pytest
from ipfs_accel import _expiry
from ipfs_accel._expiry import arm


def _lane(length: float) -> _expiry._Lane:
    return _expiry._lanes[asyncio.get_running_loop()][length]


async def _hold(length: float, entered: asyncio.Event | None = None) -> str:
    """An attempt that never ends by itself: what ended it."""
    expiry = arm(time.monotonic() + length, length)
    try:
        if entered is not None:
            entered.set()
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        if expiry.leave():
            assert time.monotonic() >= expiry.at - _expiry._EARLY  # never before its time
            return "ran out"
        raise
    finally:
        expiry.leave()
    raise AssertionError("unreachable")


def test_the_task_is_cancelled_when_the_time_runs_out_and_told_so() -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert await _hold(0.001) == "ran out"
        assert task is not None and task.cancelling() == 0  # taken back

    asyncio.run(main())


def test_a_cancel_from_outside_is_not_a_timeout() -> None:
    async def main() -> None:
        entered = asyncio.Event()
        task = asyncio.create_task(_hold(60.0, entered))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        lane = _lane(60.0)
        assert lane.live == 0 and not lane.queue  # nothing left armed

    asyncio.run(main())


def test_ran_out_and_cancelled_from_outside_too_stays_a_cancel() -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        expiry = arm(time.monotonic() - 1.0, 123.0)  # due already
        _lane(123.0)._fire()  # the timer's turn: the task is cancelled for its time...
        task.cancel()  # ...and by someone else in the same turn
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(0)
        assert expiry.fired
        assert not expiry.leave()  # not ours alone to take back: it stays a cancel
        assert task.cancelling() == 1
        task.uncancel()

    asyncio.run(main())


def test_leaving_in_time_never_cancels_and_is_idempotent() -> None:
    async def main() -> None:
        expiry = arm(time.monotonic() + 60.0, 60.0)
        await asyncio.sleep(0)
        assert not expiry.leave()
        assert not expiry.leave()
        assert not expiry.fired
        lane = _lane(60.0)
        assert lane.live == 0 and not lane.queue

    asyncio.run(main())


def test_one_timer_serves_the_lane_and_moves_to_the_next_live_expiry() -> None:
    async def main() -> None:
        length = 0.002
        loop = asyncio.get_running_loop()
        timers = len(loop._scheduled)  # type: ignore[attr-defined]
        first = arm(time.monotonic() + length, length)
        assert _lane(length).timed
        assert len(loop._scheduled) == timers + 1  # type: ignore[attr-defined]
        second_task = asyncio.create_task(_hold(length))
        await asyncio.sleep(0)  # the second arms: no second handle
        assert len(loop._scheduled) == timers + 1  # type: ignore[attr-defined]
        first.leave()  # the first leaves in time; the timer still ends the second
        assert await second_task == "ran out"
        assert not first.fired

    asyncio.run(main())


def test_many_attempts_in_flight_each_runs_out() -> None:
    async def main() -> None:
        results = await asyncio.gather(*(_hold(0.001) for _ in range(64)))
        assert results == ["ran out"] * 64
        lane = _lane(0.001)
        assert lane.live == 0 and not lane.queue

    asyncio.run(main())


def test_a_slow_attempt_at_the_head_does_not_hold_every_later_one_in_memory() -> None:
    async def main() -> None:
        slow = arm(time.monotonic() + 600.0, 600.0)
        for _ in range(10_000):
            arm(time.monotonic() + 600.0, 600.0).leave()
        lane = _lane(600.0)
        assert lane.live == 1
        assert len(lane.queue) <= 2 * _expiry._COMPACT + 1
        slow.leave()
        assert lane.live == 0 and not lane.queue

    asyncio.run(main())


def test_loops_on_two_threads_keep_their_own_lanes() -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        async def main() -> str:
            await asyncio.to_thread(barrier.wait)  # both loops arm at once
            return await _hold(0.001)

        outcomes.append(asyncio.run(main()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["ran out", "ran out"]


def test_a_loop_with_lanes_is_let_go_of() -> None:
    """The lanes are kept per loop in a weak mapping: nothing in them may hold the loop."""
    async def main() -> None:
        expiry = arm(time.monotonic() + 60.0, 60.0)  # a timer handle stays scheduled
        expiry.leave()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.close()
    ref = weakref.ref(loop)
    del loop
    gc.collect()
    assert ref() is None


def test_arming_outside_a_task_is_refused() -> None:
    loop = asyncio.new_event_loop()
    try:
        def outside() -> None:
            with pytest.raises(RuntimeError, match="needs a task"):
                arm(time.monotonic() + 1.0, 1.0)

        loop.call_soon(outside)
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()

"""The queue check: the concurrency limit holds at the server, a full queue refuses, FIFO order."""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable

from .._backend import Backend
from .._errors import QueueFullError
from ._actions import Hold
from ._run import CheckFailed, CheckRun, expect, serving
from ._server import FaultServer

__all__ = ["check_queue"]


def _poll(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait until ``cond()`` holds (the endpoint offers no event to wait on)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def _queued(backend: Backend, endpoint_id: str, count: int) -> bool:
    return backend.get_stats(endpoint_id).queued == count


def _queued_or_sent(backend: Backend, endpoint_id: str, server: FaultServer, count: int) -> bool:
    return _queued(backend, endpoint_id, count) or len(server.requests) > 2


def _refused(run: CheckRun, backend: Backend, endpoint_id: str) -> float:
    """A call on a full queue fails at once: how long it took to be refused."""
    start = time.monotonic()
    try:
        run.call(backend, endpoint_id)
    except QueueFullError:
        refused = time.monotonic() - start
    else:
        raise CheckFailed("a 5th call with 2 running and 2 queued was not refused")
    expect(refused < 1.0, f"the 5th call was refused only after {refused:.3f}s")
    return refused


def check_queue(run: CheckRun) -> str:
    """2 slots, 2 queue places: the server never sees 3 at once, a 5th call is refused at
    once, and queued calls start in the order they arrived."""
    case = run.case
    backend = run.backend()
    gates = [threading.Event() for _ in range(4)]  # one per request, in arrival order
    outcomes: dict[int, str] = {}
    done: queue.Queue[int] = queue.Queue()  # calls, in the order they ended

    def finished() -> int:
        try:
            return done.get(timeout=10)
        except queue.Empty:
            raise CheckFailed(f"a released call did not end: {backend.get_stats(eid)}") from None

    try:
        with serving(*[Hold(release=gate, then=case.success) for gate in gates]) as server:
            eid = run.endpoint(backend, server, max_concurrent_requests=2, queue_size=2,
                               max_retries=0)

            def one(n: int) -> None:
                try:
                    run.call(backend, eid)
                    outcomes[n] = "ok"
                except Exception as exc:  # reported below, with its type
                    outcomes[n] = f"{type(exc).__name__}: {run.scrub(str(exc))}"
                done.put(n)

            threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(4)]
            for n in (0, 1):
                threads[n].start()
            expect(server.wait_for(2, 10), "2 calls on 2 free slots did not reach the server")
            for n in (2, 3):  # one at a time, so the queue's order is known
                threads[n].start()
                # Waiting in the queue, or (no limit) already at the server: stop looking.
                _poll(functools.partial(_queued_or_sent, backend, eid, server, n - 1))
                expect(_queued(backend, eid, n - 1),
                        f"call {n + 1} did not wait in the queue with 2 calls running: "
                        f"{backend.get_stats(eid)}, the server saw {len(server.requests)}")
            refused = _refused(run, backend, eid)
            # Free one slot at a time; the call that takes it ends when its request is let go.
            order = []
            for running, queued in ((0, 2), (1, 3)):
                gates[running].set()
                finished()
                expect(server.wait_for(queued + 1, 10),
                        f"a slot was freed, but no queued call reached the server: "
                        f"{backend.get_stats(eid)}")
                gates[queued].set()
                order.append(finished() + 1)
            expect(order == [3, 4],
                    "queued calls did not start in the order they arrived (FIFO): call "
                    f"{order[0]} took the first free slot, while call 3 had waited longer")
            for t in threads:
                t.join(10)
            peak = server.peak_concurrency
            seen = len(server.requests)
    finally:
        for gate in gates:  # a failed expectation must not leave calls held
            gate.set()
    expect([outcomes.get(n) for n in range(4)] == ["ok"] * 4,
            f"queued calls did not all succeed: {outcomes}")
    expect(seen == 4, f"the server saw {seen} requests for 4 admitted calls")
    expect(peak == 2, f"the server saw {peak} requests at once with max_concurrent_requests=2")
    rejected = backend.get_stats(eid).rejected
    expect(rejected == 1, f"stats count {rejected} rejected calls, expected 1")
    return (f"peak concurrency at the server 2 of 4 calls; queued calls started first in, "
            f"first out; 5th call refused in {refused * 1000:.0f} ms with QueueFullError")

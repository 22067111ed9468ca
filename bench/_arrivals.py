"""N processes calling one shared endpoint against a loopback server that counts arrivals
(``shared.py``, section 2).

:class:`Counting` answers every request after a delay and records each arrival (when, from
which process) and the most requests it served at once; :func:`run` starts the processes
(:func:`worker`, each a loop of async calls through ``Registry(shared=...)``) from a common
start and returns a :class:`Run`: what the server saw within the run's window (the most
arrivals in any window of a given length, the smallest gap, the calls of each process).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from _server import CLOSED, OPENAI_OK, read_request
from ipfs_accel import Registry

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say ok"}]
KEY = "sk-bench-shared-0001"
END_WAIT = 10.0  # seconds a worker waits for its calls under way to end after a run


class Counting:
    """A loopback server (an event loop in a thread of its own) that answers every request
    with an OpenAI chat completion after ``delay``, written in one piece; it records each
    arrival (time, the process that sent it) and the most requests it served at once
    (from the arrival until just before the answer is written, so strictly within the
    client's hold of the call)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: list[tuple[float, str]] = []
        self.peak = 0
        self._active = 0
        self._handlers: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.base_url = ""

    def __enter__(self) -> Counting:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024), self._loop,
        ).result(10)
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await read_request(reader)
                arrived, who = time.monotonic(), "?"
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"x-client-request-id":
                        who = value.strip().decode().split("-", 1)[0]
                self.arrivals.append((arrived, who))
                self._active += 1
                self.peak = max(self.peak, self._active)
                if self.delay:
                    await asyncio.sleep(self.delay)
                self._active -= 1
                writer.write(OPENAI_OK)
        except CLOSED:
            pass
        finally:
            writer.close()
            self._handlers.discard(task)


def worker(index: int, url: str, redis_url: str, settings: dict[str, Any], concurrency: int,
           ready: Any, go: Any, start: Any, seconds: float, results: Any) -> None:
    """One process: ``concurrency`` async loops of chat calls from ``start`` until
    ``seconds`` later (a loop starts no call after that, and the calls under way end as they
    would); puts (index, ok, failed, stuck) on ``results``: calls answered, failed, and
    not ended ``END_WAIT`` seconds after the run (then cancelled, and left)."""
    reg = Registry(shared=redis_url)
    oa = reg.get("openai")
    eid = oa.create_endpoint(endpoint_id="bench-shared", base_url=url + "/v1", api_key=KEY,
                             model=MODEL, **settings)
    ready.put(index)
    go.wait()
    counts = Counter[str]()
    end = start.value + seconds

    async def calls(j: int) -> None:
        i = 0
        while time.monotonic() < end:
            try:
                await oa.achat(MESSAGES, endpoint_id=eid, request_id=f"p{index}-{j}-{i}")
                counts["ok"] += 1
            except Exception:  # counted
                counts["failed"] += 1
            i += 1

    async def run() -> None:
        await asyncio.sleep(max(start.value - time.monotonic(), 0))
        tasks = [asyncio.create_task(calls(j)) for j in range(concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=end + END_WAIT - time.monotonic())
        counts["stuck"] = len(pending)
        if pending:  # calls that do not end: say where one waits, and leave them
            print(f"process {index}: {len(pending)} calls had not ended {END_WAIT:g} s after "
                  "the run; one of them waits at:", file=sys.stderr)
            next(iter(pending)).print_stack(file=sys.stderr)
            for task in pending:
                task.cancel()
            return
        await oa.aclose()

    event_loop = asyncio.new_event_loop()
    event_loop.run_until_complete(run())
    if not counts["stuck"]:  # else the loop is left as it is (closing it would wait on them)
        event_loop.close()
        oa.close()
    results.put((index, counts["ok"], counts["failed"], counts["stuck"]))


class Run:
    """What the server saw of one run, within its window."""

    def __init__(self, counting: Counting, start: float, seconds: float, processes: int,
                 out: dict[int, tuple[int, int, int]], scripts: int) -> None:
        self.seen = [(t, who) for t, who in counting.arrivals if start <= t < start + seconds]
        self.times = [t for t, _ in self.seen]
        self.per = [sum(1 for _, who in self.seen if who == f"p{i}") for i in range(processes)]
        self.peak = counting.peak
        self.failed = sum(v[1] for v in out.values())
        self.stuck = sum(v[2] for v in out.values())
        self.scripts = scripts / max(len(counting.arrivals), 1)

    def most_in(self, window: float) -> int:
        """The most arrivals in any window of ``window`` seconds."""
        most, first = 0, 0
        for last, t in enumerate(self.times):
            while t - self.times[first] >= window:
                first += 1
            most = max(most, last - first + 1)
        return most

    def min_gap(self) -> float:
        return min((b - a for a, b in itertools.pairwise(self.times)), default=0.0)

    def calls(self) -> str:
        per = self.per
        text = str(per) if len(per) > 1 else str(per[0])
        if len(per) > 1 and max(per):
            text += f" min/max {min(per) / max(per):.2f}"
        return text

    def problems(self) -> str:
        return ((f" {self.failed} failed" if self.failed else "")
                + (f" {self.stuck} calls had not ended {END_WAIT:g} s after the run"
                   if self.stuck else ""))


def run(redis_url: str, settings: dict[str, Any], delay: float, processes: int,
        concurrency: int, seconds: float, scripts_run: Callable[[], int]) -> Run:
    """Run ``processes`` workers of ``concurrency`` loops each for ``seconds`` against a
    counting server answering after ``delay``, from a common start; ``scripts_run`` tells
    how many scripts Redis has run so far (read as the workers are about to start, and
    after they have ended)."""
    ctx = multiprocessing.get_context("spawn")
    with Counting(delay) as counting:
        ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        start = ctx.Value("d", 0.0)
        procs = [ctx.Process(target=worker, args=(
            i, counting.base_url, redis_url, settings, concurrency, ready, go, start,
            seconds, results), daemon=True) for i in range(processes)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=60)
        before = scripts_run()
        start.value = time.monotonic() + 0.2
        go.set()
        out = {}
        for _ in procs:
            index, ok, failed, stuck = results.get(timeout=seconds + END_WAIT + 30)
            out[index] = (ok, failed, stuck)
        for p in procs:
            p.join(10)
        scripts = scripts_run() - before
    return Run(counting, start.value, seconds, processes, out, scripts)

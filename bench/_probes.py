"""ipfs-accel probes, each run in a fresh process by ``compare.py``; each prints one JSON line.

- ``memory URL N tracemalloc|rss``: N calls on one endpoint whose only slot is taken by a
  call the server never answers (``/hold/``), so N-1 wait in the queue. Reports bytes per
  waiting call (tracemalloc delta or RSS delta, divided by the waiting count), next to
  the floor: N bare asyncio tasks each awaiting a future.
- ``scale URL CALLS ROUNDS C``: per-call CPU on one backend with 1, 100 and 10,000
  endpoints, calls spread round-robin, rounds interleaved between the three sizes.
- ``import WHAT``: seconds for ``import ipfs_accel`` + ``Registry().names()`` (``names``),
  for ``Registry().get("openai")`` from a fresh interpreter (``get``), or to import a
  peer library (``openai``, ``anthropic``, ``litellm``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any

from _clients import MESSAGES, accel_backend, drive_async


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _memory(url: str, n: int, method: str) -> dict[str, Any]:
    backend, (warm, held) = accel_backend("openai", url, 1, n + 10, endpoints=2)
    await drive_async(lambda: backend.achat(MESSAGES, endpoint_id=warm), 200, 1)
    backend.update_endpoint(held, base_url=url + "/hold/v1")

    def used() -> int:
        return tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss_bytes()

    async def floor_call(fut: asyncio.Future[None], messages: Any) -> None:
        await fut

    if method == "tracemalloc":
        tracemalloc.start()
    loop = asyncio.get_running_loop()
    # the floor: what N waiting asyncio tasks cost with no client at all
    before = used()
    fut: asyncio.Future[None] = loop.create_future()
    floor = [asyncio.ensure_future(floor_call(fut, MESSAGES)) for _ in range(n)]
    await asyncio.sleep(0.05)
    floor_bytes = (used() - before) / n
    fut.set_result(None)
    await asyncio.gather(*floor)
    del floor

    before = used()
    tasks = [asyncio.ensure_future(backend.achat(MESSAGES, endpoint_id=held)) for _ in range(n)]
    for _ in range(200):
        await asyncio.sleep(0.02)
        stats = backend.get_stats(held)
        if stats.queued >= n - 1 and stats.in_flight == 1:
            break
    stats = backend.get_stats(held)
    waiting = stats.queued
    per_call = (used() - before) / max(waiting, 1)
    return {"per_call": per_call, "floor": floor_bytes, "waiting": waiting, "calls": len(tasks),
            "in_flight": stats.in_flight, "method": method}


async def _scale(url: str, calls: int, rounds: int, concurrency: int) -> dict[str, Any]:
    sizes = (1, 100, 10_000)
    setups = {}
    for size in sizes:
        backend, eids = accel_backend("openai", url, concurrency, calls + 1000, endpoints=size)
        setups[size] = (backend, eids)
    results: dict[int, list[float]] = {size: [] for size in sizes}

    def caller(size: int) -> Any:
        backend, eids = setups[size]
        count = len(eids)
        i = 0

        async def call() -> None:
            nonlocal i
            eid = eids[i % count]
            i += 1
            r = await backend.achat(MESSAGES, endpoint_id=eid)
            assert r.text == "ok"
        return call

    callers = {size: caller(size) for size in sizes}
    for size in sizes:  # warm up each (and open its connections)
        await drive_async(callers[size], max(200, concurrency * 4), concurrency)
    for _ in range(rounds):
        for size in sizes:
            results[size].append((await drive_async(callers[size], calls, concurrency))[1])
    for backend, _ in setups.values():
        await backend.aclose()
    return {str(size): statistics.median(v) for size, v in results.items()}


_IMPORTS = {
    "names": "import ipfs_accel\nn = ipfs_accel.Registry().names()\nassert len(n) >= 1, n",
    "get": "import ipfs_accel\nipfs_accel.Registry().get('openai')",
    "openai": "import openai",
    "anthropic": "import anthropic",
    "litellm": "import litellm",
}


def main() -> None:
    what = sys.argv[1]
    if what == "memory":
        out = asyncio.run(_memory(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    elif what == "scale":
        out = asyncio.run(_scale(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                 int(sys.argv[5])))
    elif what == "import":
        code = _IMPORTS[sys.argv[2]]
        t0 = time.perf_counter()
        exec(code, {})
        out = {"seconds": time.perf_counter() - t0}
        if sys.argv[2] == "names":
            import ipfs_accel  # noqa: PLC0415 - per-client imports keep RSS per client

            out["plugins"] = len(ipfs_accel.Registry().names())
    else:
        raise SystemExit(f"unknown probe {what!r}")
    print(json.dumps(out), flush=True)
    os._exit(0)  # held calls never finish: leave without waiting for them


if __name__ == "__main__":
    main()

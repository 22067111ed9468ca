"""The core's per-request cost against raw httpx2, measured in one run.

A minimal HTTP/1.1 keep-alive server runs in its own process (pinned to another core where
the OS allows) and answers every POST with the same OpenAI-shaped chat completion. The
client process then alternates between

- raw: ``httpx2.AsyncClient.post`` + JSON encode/decode (the floor), and
- core: ``Backend.achat`` through the full path (queue, stamina retry loop, stats,
  request IDs, plugin translation via the shared OpenAI helper),

at concurrency 1 and 64, and prints calls/s, client CPU microseconds per call (process
time of the client alone) and the ratio core/raw. Run: ``python bench/core_overhead.py``
(``--calls N``, ``--rounds R``: the median of R rounds is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from typing import Any

import httpx2
import ipfs_accel
from _server import CLOSED, read_request  # this folder: the script's own
from ipfs_accel import BackendInfo, Call, EndpointConfig, Exchange, Registry, openai_compat

BODY = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: srv\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
MESSAGES = [{"role": "user", "content": "Say ok"}]


def _serve(port_pipe: Any, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_request(reader)
                writer.write(RESPONSE)
        except CLOSED:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, reuse_address=True)
        port_pipe.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class _BenchPlugin:
    """An OpenAI-compatible backend built from the core's shared helper."""

    @ipfs_accel.hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="bench", operations=frozenset({"chat"}), default_model="bench")

    @ipfs_accel.hookimpl
    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        return openai_compat.exchange(call, endpoint)

    @ipfs_accel.hookimpl
    def parse_usage(self, operation: str, data: Any) -> ipfs_accel.Usage | None:
        return openai_compat.parse_usage(data)


async def _drive(fn: Any, calls: int, concurrency: int) -> tuple[float, float]:
    per_worker = calls // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await fn()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_worker * concurrency
    return done / wall, cpu / done * 1e6


async def _measure(url: str, calls: int, concurrency: int) -> dict[str, tuple[float, float]]:
    client = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=None,
                                                     max_keepalive_connections=256))
    payload = {"model": "bench", "messages": MESSAGES}

    async def raw() -> None:
        resp = await client.post(url + "/chat/completions", content=json.dumps(payload).encode(),
                                 headers={"content-type": "application/json",
                                          "authorization": "Bearer k"})
        data = resp.json()
        assert data["choices"][0]["message"]["content"] == "ok"

    backend = Registry(plugins=[_BenchPlugin()], entry_points=False).get("bench")
    eid = backend.create_endpoint(base_url=url, api_key="k", max_concurrent_requests=concurrency,
                                  queue_size=calls)

    async def core() -> None:
        r = await backend.achat(MESSAGES, endpoint_id=eid)
        assert r.text == "ok"

    for fn in (raw, core):  # warm up connections and code paths
        await _drive(fn, concurrency * 20, concurrency)
    out = {"raw": await _drive(raw, calls, concurrency), "core": await _drive(core, calls, concurrency)}
    stats = backend.get_stats(eid)
    assert stats.failed_requests == 0
    await client.aclose()
    await backend.aclose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[-1] if len(cpus) > 1 else None
    if server_cpu is not None:
        os.sched_setaffinity(0, set(cpus[:-1]))
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_serve, args=(child, server_cpu), daemon=True)
    proc.start()
    port = parent.recv()
    url = f"http://127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    version = getattr(httpx2, "__version__", "?")
    print(f"python {sys.version.split()[0]}, httpx2 {version}, "
          f"client cpus {cpus[:-1] or 'all'}, server cpu {server_cpu}")
    print(f"{'concurrency':>11} {'client':>6} {'calls/s':>9} {'cpu us/call':>12} {'ratio':>6}")
    try:
        for concurrency in (1, 64):
            rounds = [asyncio.run(_measure(url, args.calls, concurrency)) for _ in range(args.rounds)]
            med = {
                name: (statistics.median(r[name][0] for r in rounds),
                       statistics.median(r[name][1] for r in rounds))
                for name in ("raw", "core")
            }
            for name in ("raw", "core"):
                rps, cpu = med[name]
                ratio = cpu / med["raw"][1]
                print(f"{concurrency:>11} {name:>6} {rps:>9.0f} {cpu:>12.0f} {ratio:>6.2f}")
    finally:
        proc.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The core's own CPU per async call, with no I/O: what ipfs-accel adds on top of a transport.

The openai plugin's ``achat`` runs its whole path (queue, retry, pacing, stats, request IDs,
request building, typed decoding, checks) against a client that answers at once, from a
response prepared once: the async transport's interface (``build_request`` / ``send``), its
``send`` suspending once as a real answer does. So the figure is the core's and the
plugin's own microseconds, which ``bench/transport.py`` sees only mixed with a transport's.

Run: ``python bench/core_path.py`` (``--calls``, ``--rounds``). Prints the median CPU us per
call at async c=1 and c=64. Noisy on a shared machine: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

import ipfs_accel
from _server import OPENAI_BODY

MESSAGES = [{"role": "user", "content": "Say ok."}]
HEADERS = {  # lower-case names: the core reads a response's headers case-insensitively
    "content-type": "application/json", "x-request-id": "srv-req-1",
    "content-length": str(len(OPENAI_BODY)),
}


class _Answer:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self) -> None:
        self.status_code = 200
        self.headers = HEADERS
        self.content = OPENAI_BODY


class _Request:
    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: str, content: Any, headers: Any) -> None:
        self.method, self.url, self.content, self.headers = method, url, content, headers


class _AtOnce:
    """The async transport's interface, answering at once (one suspension, as an answer
    read off a socket takes)."""

    def build_request(self, method: str, url: str, *, content: Any = None,
                      params: Any = None, headers: Any = None, timeout: Any = None) -> Any:
        return _Request(method, url, content, headers)

    async def send(self, request: Any, *, stream: bool = False) -> _Answer:
        await asyncio.sleep(0)
        return _Answer()


def _stand_in(http: Any, client: _AtOnce) -> None:
    """Every async call of ``http`` (one backend's) goes to ``client``."""
    cls = type(http)
    on_loop = getattr(cls, "on_loop", None)
    for_loop = cls.for_loop

    def mine(self: Any) -> Any:
        return client if self is http else on_loop(self) if on_loop else None

    async def mine_for(self: Any, loop: asyncio.AbstractEventLoop) -> Any:
        return client if self is http else await for_loop(self, loop)

    if on_loop is not None:
        cls.on_loop = mine
    cls.for_loop = mine_for


async def _drive(backend: Any, eid: str, calls: int, concurrency: int) -> float:
    per = max(1, calls // concurrency)

    async def worker() -> None:
        for _ in range(per):
            result = await backend.achat(MESSAGES, endpoint_id=eid)
            if result.text != "ok":
                raise AssertionError(f"unexpected answer {result.text!r}")

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / (per * concurrency) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="median of this many rounds")
    args = parser.parse_args()
    backend = ipfs_accel.Registry().get("openai")
    eid = backend.create_endpoint(base_url="http://127.0.0.1:9/v1", api_key="k",
                                  max_concurrent_requests=64, queue_size=args.calls)
    _stand_in(backend._engine.x.http, _AtOnce())
    figures: dict[int, list[float]] = {1: [], 64: []}

    async def run() -> None:
        await _drive(backend, eid, 2000, 64)  # warm up
        for _ in range(args.rounds):
            for concurrency, values in figures.items():  # interleaved: drift hits both
                values.append(await _drive(backend, eid, args.calls, concurrency))

    asyncio.run(run())
    print(f"python {sys.version.split()[0]}, ipfs-accel-core "
          f"{ipfs_accel.__version__}; {args.calls} calls x {args.rounds} rounds, "
          "a client answering at once")
    for concurrency, values in figures.items():
        print(f"async c={concurrency:<3} core + openai plugin: "
              f"{statistics.median(values):6.1f} us CPU per call "
              f"(rounds {min(values):.1f}-{max(values):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

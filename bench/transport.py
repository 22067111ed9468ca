"""ipfs-accel's async transports against raw httpx2 and raw aiohttp, measured in one run.

The loopback server of ``_server.py`` (OpenAI-shaped replies written whole from bytes
prepared once, in its own process on its own core where there are two or more, so the
client's CPU is what is measured) answers four clients, each run by ``_clients.py`` in a
fresh subprocess that warms up and then makes the same chat call, async, at concurrency 1
and 64:

- ``raw httpx2``: ``httpx2.AsyncClient.post`` + JSON (the baseline, ratio 1.00),
- ``raw aiohttp``: ``aiohttp.ClientSession.post`` + JSON, the same request,
- ``ipfs-accel on httpx2``: the openai plugin's ``achat`` through the full core path
  (queue, retry, stats, request IDs), the default transport,
- ``ipfs-accel on aiohttp``: the same with ``Registry(http="aiohttp")``; shown as n/a
  while the core has no such transport (``TypeError`` or ``ConfigurationError``).

Rounds are interleaved across the clients (the order rotating each round), and a ratio is
the median of its per-round ratios, so drift on a shared machine hits both sides alike.
Then each client's peak RSS (``ru_maxrss`` of its c=64 process: warm-up plus the round's
calls) and its import time (a fresh interpreter each, median of several). The targets of
the aiohttp transport are printed beside the ratios, met or not met, never asserted:
figures of a busy or small machine are noisy.

Run: ``python bench/transport.py`` (``--quick`` for a short run, ``--calls``/``--rounds``)
or ``nox -s bench``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import pathlib
import statistics
import sys
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _server import fast_server  # noqa: E402

# compare.py's subprocess runners: one client (or one import line) in a fresh interpreter
from compare import _import_seconds, _run  # noqa: E402

COLUMNS = (  # client of _clients.py, label
    ("raw-openai", "raw httpx2"),
    ("raw-aiohttp", "raw aiohttp"),
    ("accel-openai", "ipfs-accel on httpx2"),
    ("accel-openai-aiohttp", "ipfs-accel on aiohttp"),
)
BASE, RAW_AIOHTTP, ACCEL_AIOHTTP = "raw-openai", "raw-aiohttp", "accel-openai-aiohttp"
LABELS = dict(COLUMNS)
# issue 15: ipfs-accel on aiohttp against raw httpx2 (per concurrency) and raw aiohttp
TARGET_VS_HTTPX2 = {1: 0.60, 64: 0.45}
TARGET_VS_AIOHTTP = 1.5
NOT_AVAILABLE = "n/a (transport not available)"
# What each client costs to be ready to call: the trailing import is free when the line
# before it already imported the library, and otherwise counts what the first call would.
IMPORTS = {
    "raw-openai": "import httpx2",
    "raw-aiohttp": "import aiohttp",
    "accel-openai": "import ipfs_accel\nipfs_accel.Registry().get('openai')\nimport httpx2",
    ACCEL_AIOHTTP: ("import ipfs_accel\nipfs_accel.Registry(http='aiohttp').get('openai')\n"
                    "import aiohttp"),
}


def _unavailable(reason: str) -> bool:
    """Whether a skip says the core has no aiohttp transport (yet), not that it broke."""
    return "TypeError" in reason or "ConfigurationError" in reason


def _skip_text(client: str, reason: str) -> str:
    return NOT_AVAILABLE if client == ACCEL_AIOHTTP and _unavailable(reason) else (
        f"skipped: {reason}")


def _median_ratio(mine: list[dict[str, Any]], base: list[dict[str, Any]]) -> float:
    ratios = [m["cpu_us"] / b["cpu_us"] for m, b in zip(mine, base, strict=False)]
    return statistics.median(ratios) if ratios else float("nan")


def _verdict(ratio: float, target: float) -> str:
    if ratio != ratio:  # nan: a side was not measured
        return "n/a"
    return "met" if ratio <= target else "not met"


def _cpu_table(url: str, args: argparse.Namespace) -> tuple[dict[str, str], dict[str, list[Any]]]:
    """Print the CPU table and the targets; return the skipped clients (with the text to
    show) and every client's c=64 runs (for their RSS)."""
    clients = [client for client, _ in COLUMNS]
    skipped: dict[str, str] = {}
    wide: dict[str, list[Any]] = {}
    for concurrency in (1, 64):
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        for round_ in range(args.rounds):
            shift = round_ % len(clients)
            for client in clients[shift:] + clients[:shift]:
                if client in skipped:
                    continue
                r = _run("_clients.py", client, "async", concurrency, url, args.calls, 1)
                if "skip" in r:
                    skipped[client] = _skip_text(client, r["skip"])
                else:
                    runs[client].append(r)
        print(f"\n{f'async c={concurrency}':<11}{'client':<22} {'calls/s':>8} "
              f"{'cpu us/call':>11} {'x raw httpx2':>12}")
        for client, label in COLUMNS:
            mine = runs[client]
            if client in skipped or not mine:
                print(f"{'':<11}{label:<22} {skipped.get(client, 'no runs')}")
                continue
            rps = statistics.median(m["rps"] for m in mine)
            cpu = statistics.median(m["cpu_us"] for m in mine)
            ratio = _median_ratio(mine, runs[BASE])
            print(f"{'':<11}{label:<22} {rps:>8.0f} {cpu:>11.1f} {ratio:>12.2f}", flush=True)
        _targets(concurrency, runs, skipped)
        wide = runs
    return skipped, wide


def _targets(concurrency: int, runs: dict[str, list[Any]], skipped: dict[str, str]) -> None:
    label = LABELS[ACCEL_AIOHTTP]
    if ACCEL_AIOHTTP in skipped:
        print(f"  target {label} <= {TARGET_VS_HTTPX2[concurrency]:.2f}x raw httpx2 and "
              f"<= {TARGET_VS_AIOHTTP:.2f}x raw aiohttp: {skipped[ACCEL_AIOHTTP]}")
        return
    mine = runs[ACCEL_AIOHTTP]
    for base, target in ((BASE, TARGET_VS_HTTPX2[concurrency]),
                         (RAW_AIOHTTP, TARGET_VS_AIOHTTP)):
        ratio = _median_ratio(mine, runs[base])
        print(f"  target {label} <= {target:.2f}x {LABELS[base]}: {ratio:.2f}x, "
              f"{_verdict(ratio, target)}")


def _footprint(args: argparse.Namespace, skipped: dict[str, str],
               wide: dict[str, list[Any]]) -> None:
    repeats = 3 if args.quick else 7
    warmup = 64 * 4  # _clients.measure's warm-up at c=64
    print(f"\npeak RSS: ru_maxrss of each c=64 process ({warmup} warm-up + "
          f"{args.calls // 64 * 64} calls), median over its rounds; import: a fresh interpreter "
          f"each, interpreter start excluded, median of {repeats}")
    print(f"  {'client':<22} {'peak RSS MB':>11} {'x':>5} {'import ms':>10} {'x':>5}")
    base_rss = base_ms = None
    for client, label in COLUMNS:
        rss_text = skipped.get(client, "")
        if client not in skipped and wide.get(client):
            rss = statistics.median(r["rss_kb"] for r in wide[client]) / 1024
            base_rss = rss if client == BASE else base_rss
            rss_text = f"{rss:>11.1f} {rss / base_rss if base_rss else float('nan'):>5.2f}"
        times = [_import_seconds(IMPORTS[client]) for _ in range(repeats)]
        ok = [t["seconds"] for t in times if "seconds" in t]
        if ok:
            ms = statistics.median(ok) * 1000
            base_ms = ms if client == BASE else base_ms
            import_text = f"{ms:>10.1f} {ms / base_ms if base_ms else float('nan'):>5.2f}"
        else:
            import_text = _skip_text(client, times[0]["skip"])
        if client in skipped:  # one reason is enough for both columns
            print(f"  {label:<22} {skipped[client]}")
        else:
            print(f"  {label:<22} {rss_text} {import_text}")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="median of this many rounds")
    parser.add_argument("--quick", action="store_true", help="300 calls, 3 rounds")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 300, 3
    started = time.perf_counter()
    with fast_server() as (url, server_cpu):
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        print(f"python {sys.version.split()[0]}, httpx2 {_version('httpx2')}, aiohttp "
              f"{_version('aiohttp')}, {os.cpu_count()} cpus, client cpus {cpus or 'all'}, "
              f"server cpu {server_cpu}; {args.calls} calls x {args.rounds} interleaved rounds "
              "per cell")
        print("cpu = client process time per call (us), median; x raw httpx2 = median of the "
              "per-round ratios. Noisy on a shared machine: compare ratios.")
        skipped, wide = _cpu_table(url, args)
    _footprint(args, skipped, wide)
    live = skipped.get(ACCEL_AIOHTTP, "live")
    print(f"\nipfs-accel on aiohttp: {live}; total {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

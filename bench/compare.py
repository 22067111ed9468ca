"""ipfs-accel against the libraries users would pick instead, measured in one run.

A loopback server (``_server.py``: OpenAI- and Anthropic-shaped replies with usage and
request-ID headers, optionally a share of 429s with Retry-After) runs in its own process
on its own core where there are two or more. Each client then runs in a fresh subprocess
(so peak RSS is its own), warms up, and makes the same chat calls at concurrency 1 and 64,
(rounds interleaved across clients; a ratio is the median of per-round ratios),
async (coroutines) and sync (threads):

- ``raw-openai`` / ``raw-anthropic``: bare ``httpx2`` post + JSON (the floor),
- ``openai-sdk`` / ``anthropic-sdk``: ``AsyncOpenAI`` / ``AsyncAnthropic`` (and the sync
  clients), ``max_retries=2``,
- ``litellm-acompletion`` / ``litellm-router``: ``litellm.acompletion`` and ``Router``,
- ``accel-openai`` / ``accel-claude``: the installed plugins through ``Registry().get``
  and the full core path (queue, retry wrapper, stats, request IDs), ``max_retries=2``.

It prints calls/s, client CPU microseconds per call, peak RSS and the CPU ratio to the raw
httpx2 client of the same response shape, mode and concurrency; then import times, memory
per queued call (10,000 calls on one endpoint), and per-call cost against the number of
endpoints (1, 100, 10,000), and checks the targets. A client whose library is missing or
fails is skipped with its reason. Figures are CPU time of the client process only, but on
a busy or small machine they are still noisy: compare ratios, not absolute numbers.

Run: ``python bench/compare.py`` (``--quick`` for fewer calls, ``--share-429 0.01`` to mix
in 429s, ``--clients a,b`` to choose clients, ``--imports-only`` for the import times alone,
in seconds) or ``nox -s bench``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _clients import ANTHROPIC_SHAPED, CLIENTS  # noqa: E402
from _server import serve  # noqa: E402

ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
       "PYTHONWARNINGS": "ignore"}
TARGET_CPU = 1.15
TARGET_NAMES_S = 0.100
TARGET_GET_S = 0.150
TARGET_QUEUED_BYTES = 2048
TARGET_SCALE = 1.10


def _run(script: str, *args: object, timeout: float = 300) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / script), *map(str, args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"skip": f"timed out after {timeout:.0f}s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skip": f"exit {proc.returncode}: {tail[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _raw_of(client: str) -> str:
    return "raw-anthropic" if client in ANTHROPIC_SHAPED else "raw-openai"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument("--quick", action="store_true", help="300 calls, 1 round, fewer repeats")
    parser.add_argument("--share-429", type=float, default=0.0,
                        help="share of requests answered 429 with Retry-After")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--skip-extras", action="store_true",
                        help="only the client table (no import/memory/endpoint probes)")
    parser.add_argument("--imports-only", action="store_true",
                        help="only the import times (seconds, no server)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 300, 1
    if args.imports_only:
        failures: list[str] = []
        _imports(args, failures)
        return _verdict(failures)
    clients = [c for c in args.clients.split(",") if c]
    for needed in {_raw_of(c) for c in clients}:
        if needed not in clients:
            clients.insert(0, needed)
    clients.sort(key=CLIENTS.index)

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[-1] if len(cpus) > 1 else None
    if server_cpu is not None:
        os.sched_setaffinity(0, set(cpus[:-1]))  # subprocesses inherit the client cores
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=serve, args=(child, server_cpu, args.share_429),
                                   daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{parent.recv()}"
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5):
        pass
    started = time.perf_counter()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, client cpus "
          f"{cpus[:-1] if server_cpu is not None else 'all (shared with server)'}, server cpu "
          f"{server_cpu}; {args.calls} calls x {args.rounds} rounds per cell, "
          f"429 share {args.share_429}")
    print("CPU = client process time per call (us); ratio = CPU / raw httpx2 CPU of the same "
          "shape, mode and concurrency. Noisy on a shared machine.\n")
    failures = []
    try:
        _table(url, clients, args, failures)
        if not args.skip_extras:
            _imports(args, failures)
            _memory(url, failures)
            _scaling(url, args, failures)
    finally:
        proc.terminate()
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return _verdict(failures)


def _verdict(failures: list[str]) -> int:
    if failures:
        print("targets missed:\n  " + "\n  ".join(failures))
    else:
        print("all targets met")
    return 0


def _table(url: str, clients: list[str], args: argparse.Namespace, failures: list[str]) -> None:
    # Rounds are interleaved across clients (round 1 of every client, then round 2...), and a
    # client's ratio is the median of its per-round ratios to the raw client measured next to
    # it: drift on a shared machine then hits both sides of a ratio alike.
    print(f"{'mode':>5} {'c':>3} {'client':<20} {'calls/s':>8} {'cpu us/call':>11} "
          f"{'peak RSS MB':>11} {'ratio':>6}")
    skipped: dict[str, str] = {}
    for mode in ("async", "sync"):
        for concurrency in (1, 64):
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
            for _ in range(args.rounds):
                for client in clients:
                    if client in skipped:
                        continue
                    r = _run("_clients.py", client, mode, concurrency, url, args.calls, 1)
                    if "skip" in r:
                        skipped[client] = r["skip"]
                    else:
                        runs[client].append(r)
            for client in clients:
                if client in skipped:
                    print(f"{mode:>5} {concurrency:>3} {client:<20} skipped: {skipped[client]}")
                    continue
                mine, raws = runs[client], runs.get(_raw_of(client), [])
                ratios = [m["cpu_us"] / r["cpu_us"] for m, r in zip(mine, raws, strict=False)]
                ratio = statistics.median(ratios) if ratios else float("nan")
                rps = statistics.median(m["rps"] for m in mine)
                cpu = statistics.median(m["cpu_us"] for m in mine)
                rss = max(m["rss_kb"] for m in mine)
                print(f"{mode:>5} {concurrency:>3} {client:<20} {rps:>8.0f} "
                      f"{cpu:>11.0f} {rss / 1024:>11.1f} {ratio:>6.2f}", flush=True)
                if client.startswith("accel-") and not ratio <= TARGET_CPU:
                    failures.append(f"{client} {mode} c={concurrency}: CPU ratio {ratio:.2f} "
                                    f"> {TARGET_CPU}")


# One fresh interpreter per measurement, nothing imported before the timed line but json,
# sys and time, so every row pays for exactly what its line imports.
_IMPORT_PROBE = """\
import json, sys, time
scope = {}
t0 = time.perf_counter()
exec(sys.argv[1], scope)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "plugins": len(scope.get("n", ()))}))
"""
_IMPORT_LINES = (  # label, the timed code, target, measured how many times (full run)
    ("import httpx2 (the core's HTTP client)", "import httpx2", None, 7),
    ("import ipfs_accel + Registry().names()",
     "import ipfs_accel\nn = ipfs_accel.Registry().names()", TARGET_NAMES_S, 7),
    ("import ipfs_accel + Registry().get('openai')",
     "import ipfs_accel\nipfs_accel.Registry().get('openai')", TARGET_GET_S, 7),
    ("import openai (reference)", "import openai", None, 1),
    ("import anthropic (reference)", "import anthropic", None, 1),
    ("import litellm (reference)", "import litellm", None, 1),
)


def _import_seconds(code: str) -> dict[str, Any]:
    try:
        proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, code], capture_output=True,
                              text=True, timeout=120, env=ENV, check=False)
    except subprocess.TimeoutExpired:
        return {"skip": "timed out after 120s"}
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skip": f"exit {proc.returncode}: {tail[:160]}"}
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def _imports(args: argparse.Namespace, failures: list[str]) -> None:
    """The library's import cost, beside httpx2's: listing backends should not import httpx2
    at all, and getting one costs httpx2 plus the core and one plugin."""
    print(f"\nimport time (fresh interpreter each, median of {3 if args.quick else 7}; "
          "interpreter start excluded; x = multiple of import httpx2)")
    httpx2_ms = None
    for label, code, target, repeats in _IMPORT_LINES:
        runs = [_import_seconds(code) for _ in range(min(repeats, 3) if args.quick else repeats)]
        ok = [r for r in runs if "seconds" in r]
        if not ok:
            print(f"  {label:<48} skipped: {runs[0].get('skip')}")
            continue
        ms = statistics.median(r["seconds"] for r in ok) * 1000
        if code == "import httpx2":
            httpx2_ms = ms
        times = f" {ms / httpx2_ms:>5.2f}x" if httpx2_ms else ""
        extra = f" ({ok[0]['plugins']} plugins)" if ok[0].get("plugins") else ""
        goal = f"  target < {target * 1000:.0f} ms" if target else ""
        print(f"  {label:<48} {ms:>7.1f} ms{times}{extra}{goal}")
        if target and ms > target * 1000:
            failures.append(f"{label}: {ms:.0f} ms > {target * 1000:.0f} ms")
        if "names()" in code and ok[0].get("plugins") != 9:
            print(f"  (note: {ok[0].get('plugins')} plugins installed, the target assumes 9)")


def _memory(url: str, failures: list[str]) -> None:
    print("\nmemory per waiting call (10,000 achat calls on one endpoint, 1 slot held by the "
          "server)")
    for method in ("tracemalloc", "rss"):
        r = _run("_probes.py", "memory", url, 10_000, method)
        if "skip" in r:
            print(f"  {method:<12} skipped: {r['skip']}")
            failures.append(f"memory ({method}) not measured")
            continue
        print(f"  {method:<12} {r['per_call']:>7.0f} B per waiting call ({r['waiting']} waiting); "
              f"floor (bare asyncio task awaiting a future) {r['floor']:.0f} B; "
              f"target <= {TARGET_QUEUED_BYTES} B")
        if r["per_call"] > TARGET_QUEUED_BYTES:
            failures.append(f"memory ({method}): {r['per_call']:.0f} B per waiting call")


def _scaling(url: str, args: argparse.Namespace, failures: list[str]) -> None:
    rounds = max(3, args.rounds)
    print(f"\nper-call CPU vs endpoints on one backend (accel-openai async c=64, round-robin, "
          f"{args.calls} calls x {rounds} interleaved rounds)")
    r = _run("_probes.py", "scale", url, args.calls, rounds, 64)
    if "skip" in r:
        print(f"  skipped: {r['skip']}")
        failures.append("endpoint scaling not measured")
        return
    base = r["1"]
    for size, cpu in r.items():
        print(f"  {int(size):>6} endpoints {cpu:>7.0f} us/call  {cpu / base:>5.2f}x of 1 endpoint")
    worst = max(r.values()) / base
    if worst > TARGET_SCALE:
        failures.append(f"endpoint scaling: {worst:.2f}x of 1 endpoint > {TARGET_SCALE}")


if __name__ == "__main__":
    raise SystemExit(main())

"""Limits shared across processes on Redis: what a call pays for them, and what N processes get.

A real, throwaway ``redis-server`` (the kit's ``redis_server()``) on loopback; the openai
plugin as the client.

1. added latency: the same chat calls against a fast loopback server in its own process
   (``_server.py``; it and Redis on the last core where there are two or more, the client on
   the others) through two endpoints of one ``Registry(shared=URL)``: one with ``shared=False``
   (each process's own limits only), one sharing its limits through Redis (the lease path of
   ``max_concurrent_requests``, which every shared endpoint takes). Interleaved rounds (ABBA),
   every call timed on its own; printed: p50 and p99 of the per-call latency for both, the
   difference, the client CPU per call, sync (c=1, and c=16 threads) and async (c=1, c=16);
   then the floor: the admit and settle scripts alone, sent with redis-py as the core sends
   them. Redis's own counts give the round trips: ``INFO commandstats`` deltas over the
   measured rounds (``eval`` / ``evalsha`` per shared call), and a pass with every command
   in the SLOWLOG tells what each call sent (admit, settle, lease renewal, anything else)
   from what ran inside the scripts.
2. N processes (``--processes``, 4) sharing one endpoint against a loopback server that
   counts arrivals (and how many requests it is serving at once), each process running
   ``--concurrency`` async loops of calls for ``--seconds`` from a common start: once with
   ``rpm`` (``--rpm``), once with a cluster-wide ``max_concurrent_requests`` (``--cap``; the
   server answers after ``--delay``), each against a baseline measured in the same run: one
   process alone with the same limits kept locally. Printed: the rate the server saw against
   the limit (ratio), the most arrivals in any second, the most requests in progress at once
   against the cap, the calls of each process (each queue stays local: what a process gets
   is what it wins at Redis) and Redis scripts per call.

Figures only (the machine may be shared and noisy: read them); the exit status is 0 unless
something crashed, and also when no Redis server can be started (the bench says so and
skips). Run: ``python bench/shared.py`` (``--only 1`` or ``--only 2`` for one section).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import pathlib
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _arrivals import KEY, MESSAGES, MODEL, Run, run  # noqa: E402
from _server import fast_server  # noqa: E402
from ipfs_accel import Registry  # noqa: E402
from ipfs_accel.testing._redis import RedisServer, find_redis_server, redis_server  # noqa: E402

_SCRIPTS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall")
_OWN = {"info", "config", "slowlog", "ping"}  # the bench's own questions to Redis


# -- Redis: what it counted ----------------------------------------------------------------

def _scripts_run(redis: RedisServer) -> int:
    """Scripts run since Redis started (``INFO commandstats``); the difference between two
    readings is the scripts run meanwhile (every other command a call sends runs inside
    them, or is counted by the SLOWLOG pass)."""
    raw = redis.command("INFO", "commandstats")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    calls = 0
    for line in text.splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m and m.group(1) in _SCRIPTS:
            calls += int(m.group(2))
    return calls


def _scripts() -> dict[str, str]:
    """The shared limiter's scripts by name (admit, settle, renew), as the core defines them."""
    from ipfs_accel import _shared_scripts  # noqa: PLC0415 - only to tell its scripts apart

    return {name.lower(): value for name in _shared_scripts.__all__
            if "redis.call" in (value := getattr(_shared_scripts, name))}


def _classify(entries: Any, scripts: dict[str, str]) -> Counter[str]:
    """SLOWLOG entries by script (a truncated body or a SHA names it) or by command."""
    shas = {hashlib.sha1(body.encode()).hexdigest(): name for name, body in scripts.items()}
    out: Counter[str] = Counter()
    for entry in entries:
        args = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in entry[3]]
        command = args[0].lower() if args else "?"
        client = entry[4].decode() if len(entry) > 4 and isinstance(entry[4], bytes) else ""
        if command in _OWN:
            continue
        if client in ("", "?:0"):  # run by a script, not sent by a client
            out["(inside scripts)"] += 1
            continue
        if command in ("eval", "eval_ro") and len(args) > 1:
            body = re.sub(r"\.\.\. \(\d+ more bytes\)$", "", args[1])
            names = [n for n, s in scripts.items() if s.startswith(body)]
            out[names[0] if len(names) == 1 else "eval (other)"] += 1
        elif command in ("evalsha", "evalsha_ro") and len(args) > 1:
            out[shas.get(args[1].lower(), "evalsha (other)")] += 1
        else:
            out[command] += 1
    return out


@contextmanager
def _slowlog(redis: RedisServer) -> Iterator[Callable[[], Any]]:
    """Every command in the SLOWLOG meanwhile; yields a function returning the entries."""
    old = redis.command("CONFIG", "GET", "slowlog-log-slower-than")
    old_len = redis.command("CONFIG", "GET", "slowlog-max-len")
    redis.command("CONFIG", "SET", "slowlog-max-len", 1_000_000)
    redis.command("SLOWLOG", "RESET")
    redis.command("CONFIG", "SET", "slowlog-log-slower-than", 0)
    try:
        yield lambda: redis.command("SLOWLOG", "GET", -1)
    finally:
        assert isinstance(old, list)
        assert isinstance(old_len, list)
        redis.command("CONFIG", "SET", "slowlog-log-slower-than", old[1])
        redis.command("CONFIG", "SET", "slowlog-max-len", old_len[1])
        redis.command("SLOWLOG", "RESET")


def _skip_outcomes() -> tuple[type[BaseException], ...]:
    """What the kit raises when no Redis server can be started (pytest's skip / fail)."""
    try:
        import pytest  # noqa: PLC0415
    except ImportError:
        return ()
    return (pytest.skip.Exception, pytest.fail.Exception)


# -- 1. added latency ----------------------------------------------------------------------

def _sync_round(fn: Callable[[], Any], calls: int, concurrency: int) -> tuple[list[float], float]:
    """Per-call latencies (seconds) of ``calls`` calls from ``concurrency`` threads, and the
    client CPU seconds they took."""
    per_worker = calls // concurrency

    def worker() -> list[float]:
        out = []
        for _ in range(per_worker):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    gc.collect()
    cpu0 = time.process_time()
    if concurrency == 1:
        return worker(), time.process_time() - cpu0
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
        return [t for f in futures for t in f.result()], time.process_time() - cpu0


def _async_round(fn: Callable[[], Any], calls: int, concurrency: int,
                 loop: asyncio.AbstractEventLoop) -> tuple[list[float], float]:
    per_worker = calls // concurrency

    async def worker() -> list[float]:
        out = []
        for _ in range(per_worker):
            t0 = time.perf_counter()
            await fn()
            out.append(time.perf_counter() - t0)
        return out

    async def run() -> list[float]:
        parts = await asyncio.gather(*(worker() for _ in range(concurrency)))
        return [t for part in parts for t in part]

    gc.collect()
    cpu0 = time.process_time()
    return loop.run_until_complete(run()), time.process_time() - cpu0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _floor(redis: RedisServer, scripts: dict[str, str], calls: int) -> str:
    """The two scripts alone, as the core sends them (redis-py ``eval``), admit then settle,
    sync and async at c=1: the floor of what sharing can add to a call."""
    import redis as redis_client  # noqa: PLC0415

    keys = [f"ipfs-accel:{{floor}}:{part}"
            for part in ("budget", "pause", "leases", "queue", "alive", "health")]
    # a call that goes at once and answers: a lease of 1, nothing else to share
    admit_args = (0, 0, 0, 1, "lease", 10000, 0, 1000)
    settle_args = ("lease", 0, 0, "", 0, "well", 0, 1, "ipfs-accel:turn")
    admit, settle = scripts["admit"], scripts["settle"]
    client = redis_client.Redis.from_url(redis.url)

    def pair() -> None:
        client.eval(admit, 6, *keys, *admit_args)
        client.eval(settle, 6, *keys, *settle_args)

    aclient = redis_client.asyncio.Redis.from_url(redis.url)

    async def apair() -> None:
        await aclient.eval(admit, 6, *keys, *admit_args)
        await aclient.eval(settle, 6, *keys, *settle_args)

    loop = asyncio.new_event_loop()
    out = []
    for name, measure in (("sync", lambda n: _sync_round(pair, n, 1)),
                          ("async", lambda n: _async_round(apair, n, 1, loop))):
        measure(100)
        times, cpu = measure(calls)
        out.append(f"{name} p50 {_pct(times, 0.5) * 1e6:.0f} p99 {_pct(times, 0.99) * 1e6:.0f} "
                   f"(CPU {cpu / len(times) * 1e6:.0f})")
    loop.run_until_complete(aclient.aclose())
    loop.close()
    client.close()
    return "; ".join(out)


def latency(args: argparse.Namespace, redis: RedisServer) -> None:
    calls, rounds = args.calls, args.rounds
    scripts = _scripts()
    with fast_server(redis.pid) as (url, server_cpu):
        print(f"\n1. added latency per call: openai plugin, loopback server and Redis on cpu "
              f"{server_cpu}, client on the others; {calls} calls x {rounds} interleaved "
              "rounds per side; local = shared=False, shared = limits in Redis (a lease of "
              "max_concurrent_requests = c); microseconds")
        print(f"  {'mode':>5} {'c':>3} {'local p50':>9} {'p99':>6} {'shared p50':>10} {'p99':>6}"
              f" {'added p50':>9} {'p99':>6} {'CPU/call local':>14} {'shared':>6} "
              f"{'scripts/call':>12}")
        breakdowns = []
        for mode, concurrency in (("sync", 1), ("sync", 16), ("async", 1), ("async", 16)):
            reg = Registry(shared=redis.url)
            oa = reg.get("openai")
            common = {"base_url": url + "/v1", "api_key": KEY, "model": MODEL,
                      "max_concurrent_requests": concurrency, "queue_size": calls}
            eids = (oa.create_endpoint(shared=False, **common), oa.create_endpoint(**common))
            loop = asyncio.new_event_loop()

            def measure(side: int, n: int) -> tuple[list[float], float]:
                eid = eids[side]  # noqa: B023
                if mode == "sync":  # noqa: B023
                    return _sync_round(lambda: oa.chat(MESSAGES, endpoint_id=eid),  # noqa: B023
                                       n, concurrency)  # noqa: B023
                return _async_round(lambda: oa.achat(MESSAGES, endpoint_id=eid),  # noqa: B023
                                    n, concurrency, loop)  # noqa: B023

            for side in (0, 1):  # warm up connections and code paths
                measure(side, max(concurrency * 20, 100))
            per: dict[int, list[float]] = {0: [], 1: []}
            cpu = [0.0, 0.0]
            before = _scripts_run(redis)
            for r in range(rounds):  # ABBA: drift hits both sides alike
                for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                    times, spent = measure(side, calls)
                    per[side].extend(times)
                    cpu[side] += spent
            evals = _scripts_run(redis) - before
            with _slowlog(redis) as entries:
                counted = len(measure(1, min(calls, 400))[0])
                kinds = _classify(entries(), scripts)
            breakdowns.append((mode, concurrency, counted, kinds))
            failed = sum(oa.get_stats(e).failed_requests for e in eids)
            loop.run_until_complete(oa.aclose())
            loop.close()
            oa.close()
            lp50, lp99 = _pct(per[0], 0.5) * 1e6, _pct(per[0], 0.99) * 1e6
            sp50, sp99 = _pct(per[1], 0.5) * 1e6, _pct(per[1], 0.99) * 1e6
            print(f"  {mode:>5} {concurrency:>3} {lp50:>9.0f} {lp99:>6.0f} {sp50:>10.0f} "
                  f"{sp99:>6.0f} {sp50 - lp50:>+9.0f} {sp99 - lp99:>+6.0f} "
                  f"{cpu[0] / len(per[0]) * 1e6:>14.0f} {cpu[1] / len(per[1]) * 1e6:>6.0f} "
                  f"{evals / len(per[1]):>12.3f}"
                  + (f"   ({failed} failed calls)" if failed else ""), flush=True)
        if "admit" in scripts and "settle" in scripts:
            print(f"  floor, the two scripts alone with redis-py (admit + settle, c=1): "
                  f"{_floor(redis, scripts, calls)}")
        print("  commands each shared call sent to Redis (every command in the SLOWLOG, a pass "
              "of its own after the rounds; those run inside the scripts apart):")
        for mode, concurrency, counted, kinds in breakdowns:
            inside = kinds.pop("(inside scripts)", 0)
            parts = ", ".join(f"{name} {n / counted:.3f}" for name, n in
                              sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
            print(f"    {mode:>5} c={concurrency:<3} {counted} calls: {parts or 'none'} "
                  f"(inside the scripts: {inside / counted:.1f} commands per call)")


# -- 2. N processes ------------------------------------------------------------------------

def _run(args: argparse.Namespace, redis: RedisServer, settings: dict[str, Any],
         delay: float, processes: int) -> Run:
    """``processes`` workers against a counting server (``_arrivals.py``), on a fresh Redis."""
    redis.command("FLUSHALL")  # a fresh budget and no leases from an earlier run
    return run(redis.url, settings, delay, processes, args.concurrency, args.seconds,
               lambda: _scripts_run(redis))


def processes(args: argparse.Namespace, redis: RedisServer) -> None:
    n, seconds, rpm, cap, delay = args.processes, args.seconds, args.rpm, args.cap, args.delay
    print(f"\n2. {n} processes sharing one endpoint (openai plugin, one endpoint_id and key), "
          f"{args.concurrency} async loops of calls each, {seconds:g} s from a common start, "
          "against a loopback server counting arrivals; the baseline is one process alone "
          "with the same limits kept locally (shared=False)")
    runs = (("1 process, local", {"shared": False}, 1), (f"{n} processes, shared", {}, n))

    allowed = rpm * seconds / 60 + 1  # the first at once, then one each 60/rpm s
    per_second = rpm / 60
    print(f"  [rpm={rpm:g}] at most {allowed:.0f} requests in {seconds:g} s, "
          f"{per_second:g} in any 1 s (+1), spaced {60e3 / rpm:.1f} ms")
    print(f"    {'run':<22} {'requests':>8} {'rate/limit':>10} {'most in 1 s':>11} "
          f"{'min gap ms':>10} {'scripts/call':>12}  calls per process")
    for name, extra, procs in runs:
        run = _run(args, redis, {"rpm": rpm, **extra}, 0.0, procs)
        rate = len(run.seen) / seconds * 60
        print(f"    {name:<22} {len(run.seen):>8} {rate / rpm:>10.3f} {run.most_in(1.0):>11} "
              f"{run.min_gap() * 1e3:>10.1f} {run.scripts:>12.2f}  {run.calls()}"
              f"{run.problems()}", flush=True)

    ideal = cap / delay * seconds
    print(f"  [max_concurrent_requests={cap}, the server answers after {delay * 1e3:g} ms] "
          f"ideal {ideal:.0f} requests in {seconds:g} s (cap / answer time)")
    print(f"    {'run':<22} {'requests':>8} {'of ideal':>10} {'most at once':>12} "
          f"{'scripts/call':>12}  calls per process")
    for name, extra, procs in runs:
        run = _run(args, redis, {"max_concurrent_requests": cap, **extra}, delay, procs)
        print(f"    {name:<22} {len(run.seen):>8} {len(run.seen) / ideal:>10.1%} "
              f"{run.peak:>6} (cap {cap}) {run.scripts:>6.2f}  {run.calls()}{run.problems()}",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="1,2", help="sections to run, e.g. 2")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per side (1.)")
    parser.add_argument("--calls", type=int, default=400, help="calls per round and side (1.)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes (2.)")
    parser.add_argument("--rpm", type=float, default=3000, help="the shared rpm (2.)")
    parser.add_argument("--cap", type=int, default=3,
                        help="the shared max_concurrent_requests (2.)")
    parser.add_argument("--delay", type=float, default=0.05,
                        help="the server's answer time in the cap run, seconds (2.)")
    parser.add_argument("--concurrency", type=int, default=8, help="async loops per process (2.)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (2.)")
    args = parser.parse_args()
    try:
        import redis as redis_client  # noqa: PLC0415
    except ImportError:
        print("skipped: the Redis client is not installed (pip install 'ipfs-accel-core[redis]')")
        return 0
    if find_redis_server() is None:
        print("skipped: no Redis server to start: neither redis-server nor valkey-server on PATH, "
              "or $IPFS_ACCEL_REDIS_SERVER names none (Debian: apt-get install redis-server)")
        return 0
    with ExitStack() as stack:
        try:
            redis = stack.enter_context(redis_server())
        except (OSError, RuntimeError, *_skip_outcomes()) as exc:
            print(f"skipped: no Redis server could be started: {exc}")
            return 0
        version = redis.command("INFO", "server")
        match = re.search(rb"redis_version:(\S+)", version if isinstance(version, bytes) else b"")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load "
              f"{os.getloadavg()[0]:.1f}; redis-server "
              f"{match.group(1).decode() if match else '?'}, redis-py {redis_client.__version__}")
        started = time.perf_counter()
        sections = {"1": latency, "2": processes}
        for name in args.only.split(","):
            sections[name.strip()](args, redis)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

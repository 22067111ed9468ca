"""Pools against the targets, on loopback servers, with the openai plugin as members.

1. rate limits: four keys, each limited by a :class:`~ipfs_accel.testing.FaultServer` to
   600 requests a minute, enforced as vendors do over shorter windows (10 a second: a key
   may send 10 back to back on a full budget, then one every 100 ms; ``--server-burst 1``
   makes it one every 100 ms with no tolerance at all), 429 + Retry-After and OpenAI's
   ``x-ratelimit-*`` headers, a burst of 400 async calls at once through a four-member
   pool; once with ``rpm=600`` set on each member, once with no ``rpm`` (the headers only).
   Targets: 0 failed; at most 2% (rpm) / 10% (headers only) of requests answered 429; with
   rpm, wall time within 15% of the ideal (calls / (keys x 10 per second) = 10 s).
2. failover: one member on a closed port (connections refused), one answering 503 every
   other request, one healthy. Targets: 0 failed, the dead member gets at most a handful of
   attempts (its ``total_requests`` less those ``unsent``: calls that waited in its queue
   and left without sending once it was unhealthy), every call answered (200) exactly once.
3. all paused: both members answer their first requests 429 with ``Retry-After: 1``.
   Target: the calls wait for them and succeed, none fail.
4. overhead: client CPU per call (``time.process_time``) through a one-member pool against
   the same call on that endpoint directly, interleaved rounds in one run, against a fast
   loopback server in its own process (``_server.py``, pinned to another core where there
   are two or more), as ``core_overhead.py`` measures. Target: pool / direct <= 1.05.

Figures are printed with PASS or MISS per target; the exit status is 0 unless something
crashed (the machine may be shared and noisy: read the figures). Run:
``python bench/pool.py`` (``--quick`` for small sizes, ``--only 1,4`` for some sections).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pathlib
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _server import closed_port, fast_server  # noqa: E402
from ipfs_accel import Backend, Pool, Registry  # noqa: E402
from ipfs_accel.testing import FaultServer, RateLimit, RecordedRequest, Reply  # noqa: E402

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say ok"}]
OK = Reply(200, json={
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
})
RATE_LIMITED = Reply(429, headers={"retry-after": "1"}, json={"error": {
    "message": "Rate limit reached, please try again in 1s", "type": "requests",
    "param": None, "code": "rate_limit_exceeded"}})
UNAVAILABLE = Reply(503, json={"error": {
    "message": "The server is overloaded or not ready yet.", "type": "server_error",
    "param": None, "code": None}})
KEYS = [f"sk-bench-key-{i:04d}" for i in range(4)]

TARGET_429_RPM = 0.02
TARGET_429_HEADERS = 0.10
TARGET_WALL = 0.15
TARGET_DEAD_ATTEMPTS = 5
TARGET_OVERHEAD = 1.05


class Verdicts:
    """PASS/MISS lines, gathered for the summary at the end."""

    def __init__(self) -> None:
        self.lines: list[tuple[bool, str]] = []

    def check(self, ok: bool, what: str) -> None:
        self.lines.append((ok, what))
        print(f"  {'PASS' if ok else 'MISS'}  {what}", flush=True)


def _ok_responder(request: RecordedRequest) -> Reply:
    return OK


def _endpoint(backend: Backend, server_url: str, key: str, **settings: Any) -> str:
    eid: str = backend.create_endpoint(base_url=server_url + "/v1", api_key=key, model=MODEL,
                                       **settings)
    return eid


async def _burst(pool: Pool, calls: int, prefix: str) -> tuple[list[Any], float]:
    """``calls`` achat calls started at once; their results (or errors) and the wall time."""
    started = time.perf_counter()
    results = await asyncio.gather(
        *(pool.achat(MESSAGES, request_id=f"{prefix}-{i}") for i in range(calls)),
        return_exceptions=True)
    return results, time.perf_counter() - started


async def _workers(pool: Pool, calls: int, concurrency: int,
                   prefix: str) -> tuple[list[Any], float]:
    """``calls`` achat calls from ``concurrency`` workers; results in call order."""
    results: list[Any] = [None] * calls
    numbers = iter(range(calls))

    async def worker() -> None:
        for i in numbers:
            try:
                results[i] = await pool.achat(MESSAGES, request_id=f"{prefix}-{i}")
            except Exception as exc:  # counted as a failed call
                results[i] = exc

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - started


def _errors(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


def _show_errors(errors: list[BaseException]) -> None:
    for kind, n in Counter(f"{type(e).__name__}: {e}"[:150] for e in errors).most_common(3):
        print(f"    {n} x {kind}")


# -- 1. four rate-limited keys -------------------------------------------------------------

def rate_limits(args: argparse.Namespace, verdicts: Verdicts) -> None:
    calls, keys, per_key_rps = args.calls_rate, len(KEYS), 10.0
    ideal = calls / (keys * per_key_rps)
    print(f"\n1. rate limits: {keys} keys, each 600 rpm on the server (smooth, burst "
          f"{args.server_burst}, 429 + Retry-After + x-ratelimit-* headers); {calls} calls "
          f"at once through a least-busy pool; ideal wall time {ideal:.1f} s")
    for mode in ("rpm=600", "headers only"):
        limit = RateLimit(rpm=600, burst=args.server_burst)
        with FaultServer(responder=_ok_responder, default_rate_limit=limit,
                         rate_limit_headers="openai") as server:
            reg = Registry()
            oa = reg.get("openai")
            extra = {"rpm": 600} if mode == "rpm=600" else {}
            eids = [_endpoint(oa, server.base_url, key, **extra) for key in KEYS]
            pool = reg.pool([("openai", e) for e in eids])
            cpu0 = time.process_time()
            results, wall = asyncio.run(_burst(pool, calls, "rl"))
            cpu = time.process_time() - cpu0
            rate = server.rate_stats()
            stats = pool.get_stats()
            oa.close()
        refused = sum(s.refused for s in rate.values())
        sent = refused + sum(s.accepted for s in rate.values())
        members = stats.members.values()
        attempts = sum(m.total_requests for m in members)
        limited = sum(m.rate_limited for m in members)
        failed = max(len(_errors(results)), stats.failed)
        share = refused / sent if sent else 0.0
        print(f"  [{mode}] wall {wall:.2f} s ({wall / ideal:.2f}x ideal); server: {sent} "
              f"requests, {refused} answered 429 ({share:.1%}); members: {attempts} attempts, "
              f"rate_limited {limited} ({limited / max(attempts, 1):.1%}), paced "
              f"{sum(m.paced for m in members)}; pool: {stats.calls} calls, {stats.ok} ok, "
              f"{stats.failed} failed, {stats.retries} retries, {stats.waits} waits; "
              f"CPU {cpu:.1f} s (client and in-process server)")
        print("    per key (accepted/429): " + ", ".join(
            f"...{k[-4:] if k else '-'} {s.accepted}/{s.refused}" for k, s in sorted(
                rate.items(), key=lambda kv: kv[0] or "")))
        _show_errors(_errors(results))
        target = TARGET_429_RPM if mode == "rpm=600" else TARGET_429_HEADERS
        verdicts.check(failed == 0, f"rate limits [{mode}]: {failed} failed (target 0)")
        verdicts.check(share <= target, f"rate limits [{mode}]: {share:.1%} of requests "
                                        f"answered 429 (target <= {target:.0%})")
        if mode == "rpm=600":
            verdicts.check(abs(wall / ideal - 1) <= TARGET_WALL,
                           f"rate limits [{mode}]: wall {wall:.2f} s = {wall / ideal:.2f}x "
                           f"the ideal {ideal:.1f} s (target within {TARGET_WALL:.0%})")


# -- 2. a dead member and a flaky one ------------------------------------------------------

class _Flaky:
    """Answers 503 every other request; records the request IDs it answered 200."""

    def __init__(self, answered: Counter[str]) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._answered = answered

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._count += 1
            if self._count % 2 == 1:
                return UNAVAILABLE
            self._answered[request.headers.get("x-client-request-id", "?")] += 1
        return OK


def failover(args: argparse.Namespace, verdicts: Verdicts) -> None:
    calls, concurrency = args.calls_failover, args.concurrency_failover
    print(f"\n2. failover: a member on a closed port, one answering 503 every other request, "
          f"one healthy; {calls} calls from {concurrency} workers through a least-busy pool")
    answered: Counter[str] = Counter()
    lock = threading.Lock()

    def healthy(request: RecordedRequest) -> Reply:
        with lock:
            answered[request.headers.get("x-client-request-id", "?")] += 1
        return OK

    with FaultServer(responder=_Flaky(answered)) as flaky, \
            FaultServer(responder=healthy) as good:
        reg = Registry()
        oa = reg.get("openai")
        dead = _endpoint(oa, f"http://127.0.0.1:{closed_port()}", KEYS[0])
        eids = [dead, _endpoint(oa, flaky.base_url, KEYS[1]), _endpoint(oa, good.base_url, KEYS[2])]
        pool = reg.pool([("openai", e) for e in eids])
        results, wall = asyncio.run(_workers(pool, calls, concurrency, "fo"))
        stats = pool.get_stats()
        cooldown = oa.get_endpoint(dead).settings.cooldown
        flaky_sent, good_sent = len(flaky.requests), len(good.requests)
        oa.close()
    errors = _errors(results)
    dead_stats = stats.members[f"openai/{dead}"]
    dead_sent = dead_stats.total_requests - dead_stats.unsent - dead_stats.rejected
    print(f"  wall {wall:.2f} s; pool: {stats.calls} calls, {stats.ok} ok, {stats.failed} "
          f"failed, {stats.attempts} attempts, {stats.failovers} failovers, {stats.waits} waits")
    print(f"  dead member: {dead_sent} attempts sent ({dead_stats.unsent} more left its queue "
          f"unsent), state {dead_stats.state}, "
          f"{dead_stats.consecutive_failures} consecutive failures (cooldown {cooldown:g} s, "
          f"doubling); flaky member: {flaky_sent} requests; healthy member: {good_sent} requests")
    _show_errors(errors)
    wanted = {f"fo-{i}" for i in range(calls)}
    once = sum(1 for rid in wanted if answered.get(rid) == 1)
    twice = sum(1 for rid in wanted if answered.get(rid, 0) > 1)
    stray = set(answered) - wanted
    ok_results = sum(1 for r in results if getattr(r, "text", None) == "ok")
    print(f"  answered 200 exactly once: {once}/{calls} calls; more than once: {twice}; "
          f"results returned: {ok_results}")
    verdicts.check(not errors and stats.failed == 0,
                   f"failover: {len(errors) or stats.failed} failed (target 0)")
    verdicts.check(dead_sent <= TARGET_DEAD_ATTEMPTS,
                   f"failover: the dead member got {dead_sent} attempts "
                   f"in {wall:.1f} s (target <= {TARGET_DEAD_ATTEMPTS})")
    verdicts.check(once == calls and not twice and not stray and ok_results == calls,
                   f"failover: {once}/{calls} calls answered exactly once (target all)")


# -- 3. every member paused ----------------------------------------------------------------

def all_paused(args: argparse.Namespace, verdicts: Verdicts) -> None:
    calls, first = args.calls_paused, args.first_429
    print(f"\n3. all paused: 2 members, each answering its first {first} requests 429 with "
          f"Retry-After: 1, then 200; {calls} calls at once, then one sync call after a "
          "new first 429 each")
    with FaultServer(responder=_ok_responder) as a, FaultServer(responder=_ok_responder) as b:
        for server in (a, b):
            server.script([RATE_LIMITED] * first)
        reg = Registry()
        oa = reg.get("openai")
        eids = [_endpoint(oa, a.base_url, KEYS[0]), _endpoint(oa, b.base_url, KEYS[1])]
        pool = reg.pool([("openai", e) for e in eids])
        results, wall = asyncio.run(_burst(pool, calls, "p"))
        stats = pool.get_stats()
        for server in (a, b):
            server.script([RATE_LIMITED])
        started = time.perf_counter()
        try:
            sync_ok = pool.chat(MESSAGES).text == "ok"
        except Exception as exc:  # reported as the failure it is
            print(f"    sync call failed: {type(exc).__name__}: {exc}")
            sync_ok = False
        sync_wall = time.perf_counter() - started
        oa.close()
    errors = _errors(results)
    limited = sum(m.rate_limited for m in stats.members.values())
    print(f"  async: wall {wall:.2f} s; pool: {stats.calls} calls, {stats.ok} ok, "
          f"{stats.failed} failed, {stats.attempts} attempts, {limited} answered 429, "
          f"{stats.waits} waits ({stats.wait_seconds:.1f} s in all)")
    print(f"  sync: {'ok' if sync_ok else 'failed'} after {sync_wall:.2f} s")
    _show_errors(errors)
    verdicts.check(not errors and stats.failed == 0 and sync_ok and wall >= 1.0,
                   f"all paused: {len(errors) + (not sync_ok)} failed, the calls waited "
                   f"{wall:.2f} s (target 0 failed, a wait of about 1 s)")


# -- 4. pool overhead ------------------------------------------------------------------------

def _round(fn: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> float:
    """Client CPU microseconds per call of ``fn``, ``calls`` calls from ``concurrency``
    coroutines (core_overhead.py's method)."""
    per_worker = calls // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await fn()

    async def run() -> float:
        gc.collect()
        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - cpu0) / (per_worker * concurrency) * 1e6

    return asyncio.run(run())


def _sync_round(fn: Callable[[], Any], calls: int) -> float:
    gc.collect()
    cpu0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - cpu0) / calls * 1e6


def overhead(args: argparse.Namespace, verdicts: Verdicts) -> None:
    calls, rounds = args.calls_overhead, args.rounds
    with fast_server() as (url, server_cpu):
        print(f"\n4. pool overhead: client CPU per call, a one-member pool vs the same "
              f"endpoint directly (openai plugin, {calls} calls x {rounds} interleaved rounds, "
              f"server on cpu {server_cpu}; ratio = median of per-round ratios)")
        print(f"  {'mode':>5} {'c':>3} {'direct us':>10} {'pool us':>8} {'ratio':>6}")
        for mode, concurrency in (("async", 1), ("async", 64), ("sync", 1)):
            reg = Registry()
            oa = reg.get("openai")
            eid = _endpoint(oa, url, "sk-bench-overhead", max_concurrent_requests=concurrency,
                            queue_size=calls)
            pool = reg.pool([("openai", eid)])
            if mode == "async":
                async def direct() -> Any:
                    return await oa.achat(MESSAGES, endpoint_id=eid)  # noqa: B023

                async def pooled() -> Any:
                    return await pool.achat(MESSAGES)  # noqa: B023

                def measure(fn: Any, n: int) -> float:
                    return _round(fn, n, concurrency)  # noqa: B023
                funcs = (direct, pooled)
            else:
                funcs = (lambda: oa.chat(MESSAGES, endpoint_id=eid),  # noqa: B023
                         lambda: pool.chat(MESSAGES))  # noqa: B023

                def measure(fn: Any, n: int) -> float:
                    return _sync_round(fn, n)
            for fn in funcs:  # warm up connections and code paths
                measure(fn, max(concurrency * 20, 100))
            per: dict[int, list[float]] = {0: [], 1: []}
            for r in range(rounds):  # ABBA: drift hits both sides alike
                for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                    per[side].append(measure(funcs[side], calls))
            stats = pool.get_stats()
            if stats.failed or oa.get_stats(eid).failed_requests:
                print(f"    (failed calls: pool {stats.failed}, endpoint "
                      f"{oa.get_stats(eid).failed_requests})")
            oa.close()
            ratio = statistics.median(p / d for d, p in zip(per[0], per[1], strict=True))
            print(f"  {mode:>5} {concurrency:>3} {statistics.median(per[0]):>10.0f} "
                  f"{statistics.median(per[1]):>8.0f} {ratio:>6.3f}", flush=True)
            verdicts.check(ratio <= TARGET_OVERHEAD,
                           f"overhead {mode} c={concurrency}: pool/direct CPU {ratio:.3f} "
                           f"(target <= {TARGET_OVERHEAD})")


SECTIONS = {"1": rate_limits, "2": failover, "3": all_paused, "4": overhead}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (the 429/wall targets still apply)")
    parser.add_argument("--only", default="1,2,3,4", help="sections to run, e.g. 1,4")
    parser.add_argument("--server-burst", type=int, default=10,
                        help="requests a key may send back to back on a full budget (10: a "
                             "second's worth, as vendors quantize per-minute limits; 1: "
                             "pure spacing, 100 ms apart, no tolerance for jitter)")
    args = parser.parse_args()
    quick = args.quick
    args.calls_rate = 80 if quick else 400
    args.calls_failover = 40 if quick else 200
    args.concurrency_failover = 16
    args.calls_paused = 10 if quick else 20
    args.first_429 = 3 if quick else 5
    args.calls_overhead = 300 if quick else 2000
    args.rounds = 2 if quick else 7
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.1f}{', quick' if quick else ''}")
    verdicts = Verdicts()
    started = time.perf_counter()
    for name in args.only.split(","):
        SECTIONS[name.strip()](args, verdicts)
    missed = [what for ok, what in verdicts.lines if not ok]
    print(f"\ntotal {time.perf_counter() - started:.0f} s; "
          f"{len(verdicts.lines) - len(missed)}/{len(verdicts.lines)} targets met")
    for what in missed:
        print(f"  MISS  {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

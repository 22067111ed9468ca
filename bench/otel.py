"""What OpenTelemetry costs a call, measured in one run.

Chat calls through the openai plugin against the fast loopback server (``_server.py``, in a
process of its own, on the last core where there are two or more, the client on the
others), sync and async at concurrency 1, from registries side by side:

- off: ``Registry(telemetry=False)``, no observer at all: the baseline;
- off2: another ``Registry(telemetry=False)``: the control, off against itself, whose ratio
  tells how finely this run resolves a difference;
- api: ``Registry()``, the default: opentelemetry-api installed, so the registry has an
  ``OtelObserver`` on the global providers, which stay unset (the API's proxies): the
  observer answers ``None`` and the call goes on untraced. Target: client CPU per call
  within 2% of off's;
- sdk: ``Registry(observers=[OtelObserver(tracer_provider=..., meter_provider=...)],
  telemetry=False)``: an SDK ``TracerProvider`` whose ``BatchSpanProcessor`` exports to an
  exporter that counts the spans and drops them, and an SDK ``MeterProvider`` with an
  ``InMemoryMetricReader``, given explicitly so the global providers stay unset.

Each of ``--rounds`` rounds runs ``--calls`` calls of every side. off, off2 and api take
turns call by call (every order in turn across rounds), the client CPU read with
``time.process_time`` between every two calls, so drift and the machine's other load hit
them alike; sdk runs in a block of its own, before them in one round and after them in the
next, ended by flushing the span processor and collecting the metrics, so all it costs
(the export thread's CPU too: ``process_time`` counts every thread) is its own. Every call
is timed on its own.

Printed per mode and side: the median over rounds of the client CPU per call, the median
(and quartiles) of the per-round ratios to off's CPU per call in the same round, the median
CPU added per call, the p50 latency of all the side's calls and its difference to off's;
then the spans and metric points sdk made, and whether the api target held in this run.

Figures only (the machine may be shared and noisy: read them with the load printed in the
header); the exit status is 0 unless something crashed. Run: ``python bench/otel.py``
(``--rounds R``, ``--calls N``; ``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import itertools
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _server import fast_server  # noqa: E402
from ipfs_accel import Registry  # noqa: E402
from ipfs_accel.otel import OtelObserver  # noqa: E402
from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say ok"}]
KEY = "sk-bench-otel-0001"
SIDES = ("off", "off2", "api", "sdk")
PAIRED = SIDES[:3]  # taking turns call by call; sdk runs in a block of its own
TARGET = 1.02  # api's CPU per call against off's
WARMUP = 200  # calls per side before the rounds


class _Drop(SpanExporter):
    """Counts the spans it is given and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class _Sdk:
    """The SDK side's providers, given to its observer (never set globally)."""

    def __init__(self) -> None:
        self.exporter = _Drop()
        self.processor = BatchSpanProcessor(self.exporter)
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(self.processor)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.points = 0

    def settle(self) -> None:
        """What a round of the sdk side leaves to do: spans exported, metrics collected."""
        self.processor.force_flush()
        data = self.reader.get_metrics_data()
        self.points = sum(len(m.data.data_points) for rm in data.resource_metrics
                          for sm in rm.scope_metrics for m in sm.metrics) if data else 0

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _paired(calls: dict[str, Callable[[], Any]], n: int,
            loop: asyncio.AbstractEventLoop | None) -> dict[str, tuple[list[float], float]]:
    """``n`` calls of each side in ``calls``, the sides taking turns call by call (so drift
    hits them alike): each side's per-call latencies (seconds) and the client CPU seconds
    its calls took (``process_time`` read between every two calls)."""
    order = list(calls.items())
    times: dict[str, list[float]] = {side: [] for side in calls}
    cpu = dict.fromkeys(calls, 0.0)
    process_time, perf_counter = time.process_time, time.perf_counter

    def sync() -> None:
        c0 = process_time()
        for _ in range(n):
            for side, call in order:
                t0 = perf_counter()
                call()
                times[side].append(perf_counter() - t0)
                c1 = process_time()
                cpu[side] += c1 - c0
                c0 = c1

    async def run() -> None:
        c0 = process_time()
        for _ in range(n):
            for side, call in order:
                t0 = perf_counter()
                await call()
                times[side].append(perf_counter() - t0)
                c1 = process_time()
                cpu[side] += c1 - c0
                c0 = c1

    gc.collect()
    if loop is None:
        sync()
    else:
        loop.run_until_complete(run())
    return {side: (times[side], cpu[side]) for side in calls}


def _block(call: Callable[[], Any], n: int, after: Callable[[], None],
           loop: asyncio.AbstractEventLoop | None) -> tuple[list[float], float]:
    """``n`` calls one after the other, then ``after``: per-call latencies (seconds) and the
    client CPU seconds of it all (every thread of the client: an exporter's too)."""

    def sync() -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            out.append(time.perf_counter() - t0)
        return out

    async def run() -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await call()
            out.append(time.perf_counter() - t0)
        return out

    gc.collect()
    cpu0 = time.process_time()
    times = sync() if loop is None else loop.run_until_complete(run())
    after()
    return times, time.process_time() - cpu0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _measure(url: str, mode: str, calls: int, rounds: int) -> dict[str, Any]:
    sdk = _Sdk()
    registries = {
        "off": Registry(telemetry=False),
        "off2": Registry(telemetry=False),
        "api": Registry(),
        "sdk": Registry(observers=[OtelObserver(tracer_provider=sdk.tracer_provider,
                                                meter_provider=sdk.meter_provider)],
                        telemetry=False),
    }
    backends = {side: reg.get("openai") for side, reg in registries.items()}
    eids = {side: b.create_endpoint(base_url=url + "/v1", api_key=KEY, model=MODEL,
                                    max_concurrent_requests=1, queue_size=16)
            for side, b in backends.items()}
    loop = asyncio.new_event_loop() if mode == "async" else None

    def call(side: str) -> Callable[[], Any]:
        b, eid = backends[side], eids[side]
        if loop is None:
            return lambda: b.chat(MESSAGES, endpoint_id=eid)
        return lambda: b.achat(MESSAGES, endpoint_id=eid)

    def paired(n: int, order: Sequence[str]) -> dict[str, tuple[list[float], float]]:
        return _paired({side: call(side) for side in order}, n, loop)

    def block(n: int) -> tuple[list[float], float]:
        return _block(call("sdk"), n, sdk.settle, loop)

    paired(WARMUP, PAIRED)  # warm up connections and code paths
    block(WARMUP)
    spans0 = sdk.exporter.spans
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}  # per round, s per call
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    orders = list(itertools.permutations(PAIRED))
    for r in range(rounds):  # sdk before or after, the others in every order: each in turn
        got: dict[str, tuple[list[float], float]] = {}
        if r % 2:
            got["sdk"] = block(calls)
        got.update(paired(calls, orders[r % len(orders)]))
        if not r % 2:
            got["sdk"] = block(calls)
        for side, (took, spent) in got.items():
            times[side].extend(took)
            cpu[side].append(spent / len(took))
    spans = (sdk.exporter.spans - spans0) / (calls * rounds)
    failed = sum(b.get_stats(eids[side]).failed_requests for side, b in backends.items())
    for b in backends.values():
        if loop is not None:
            loop.run_until_complete(b.aclose())
        b.close()
    if loop is not None:
        loop.close()
    sdk.shutdown()
    return {"cpu": cpu, "times": times, "spans": spans, "points": sdk.points, "failed": failed}


def _versions() -> str:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return (f"opentelemetry-api {version('opentelemetry-api')}, "
            f"opentelemetry-sdk {version('opentelemetry-sdk')}, "
            f"ipfs-accel-core {version('ipfs-accel-core')}, httpx2 {version('httpx2')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12,
                        help="rounds, each running every side (default 12)")
    parser.add_argument("--calls", type=int, default=500,
                        help="calls per side per round (default 500)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 6 rounds of 150 calls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 6, 150
    started = time.perf_counter()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.1f}; {_versions()}")
    print(f"global providers: {type(trace.get_tracer_provider()).__name__}, "
          f"{type(metrics.get_meter_provider()).__name__} (unset: the api side traces nothing)")
    with fast_server() as (url, server_cpu):
        print(f"openai plugin, chat, concurrency 1; loopback server on cpu {server_cpu}, "
              f"client on the others; {args.rounds} rounds x {args.calls} calls per side; "
              "CPU: the median of the rounds' client CPU per call; ratio: the median (and "
              "quartiles) of the per-round ratios to off; microseconds")
        print(f"  {'mode':>5} {'side':>4} {'CPU/call':>8} {'ratio':>6} {'(q1-q3)':>13} "
              f"{'added CPU':>9} {'p50':>5} {'added p50':>9}")
        verdicts = []
        for mode in ("sync", "async"):
            got = _measure(url, mode, args.calls, args.rounds)
            cpu, times = got["cpu"], got["times"]
            base_p50 = _pct(times["off"], 0.5)
            for side in SIDES:
                ratios = sorted(c / b for c, b in zip(cpu[side], cpu["off"], strict=True))
                added = statistics.median(c - b for c, b in zip(cpu[side], cpu["off"],
                                                                strict=True))
                med = statistics.median(ratios)
                p50 = _pct(times[side], 0.5)
                spread = f"({_pct(ratios, 0.25):.3f}-{_pct(ratios, 0.75):.3f})"
                print(f"  {mode:>5} {side:>4} {statistics.median(cpu[side]) * 1e6:>8.1f} "
                      f"{med:>6.3f} {spread:>13} {added * 1e6:>+9.1f} {p50 * 1e6:>5.0f} "
                      f"{(p50 - base_p50) * 1e6:>+9.0f}", flush=True)
                if side == "api":
                    verdicts.append(f"{mode} {med:.3f} ({'met' if med <= TARGET else 'missed'})")
            print(f"  {'':>5} sdk: {got['spans']:.2f} spans per call exported (the call's and "
                  f"its attempt's), {got['points']} metric points collected"
                  + (f"; {got['failed']} failed calls" if got["failed"] else ""), flush=True)
    print(f"target: api (API installed, no provider set) within {TARGET - 1:.0%} of off's CPU "
          f"per call: {'; '.join(verdicts)}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

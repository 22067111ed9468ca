"""``ipfs-accel demo``: hundreds of calls through every backend against a faulty loopback server.

No keys, no network: a :class:`~ipfs_accel.testing.FaultServer` on 127.0.0.1 replays each
plugin's own canned answers, from its ``conformance_case`` hook (see ``_demo_server``), and
injects rate limits with Retry-After, overloads, server errors and dropped connections. Any
installed plugin with a case takes part, a third-party one too; one without is skipped with
a line saying so. Several endpoints per backend, each with its own fake key and limits,
carry the calls (the case's own call, from a pool of threads); the core queues and retries
them. At the end: the per-endpoint stats, the aggregate, the retries and waits, and a check
that every call finished exactly once (exit code 1 when any check fails).
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._backend import Backend
from .._errors import IpfsAccelError, PluginLoadError
from .._registry import Registry
from .._stats import Stats
from ..testing import Case, FaultServer
from ._common import CliError
from ._demo_server import DemoResponder, endpoint_key
from ._view import stats_document, stats_table, write_stats_file

__all__ = ["run_demo"]

_RETRY_AFTER = 0.2
# A case's call is a blocking one: one thread per call in flight or queued, so the
# endpoints' queues fill as they would under many callers (bounded for huge --calls).
_MAX_THREADS = 512


@dataclass(frozen=True)
class _Planned:
    call_id: str
    backend: str
    endpoint: str


@dataclass
class _Outcome:
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class _Demoed:
    """One backend in the demo: a fresh backend and the plugin's case it replays."""

    backend: Backend
    case: Case


def _open_one(registry: Registry, name: str) -> _Demoed | str:
    """The backend and its case, or why it cannot take part."""
    try:
        case = registry.hooks(name).conformance_case()
    except PluginLoadError as exc:
        return str(exc)
    except Exception as exc:  # a third-party hook: report it, never break the demo
        return f"its conformance_case() raised {type(exc).__name__}: {exc}"
    if case is None:
        return ("the plugin offers no conformance case, so the demo has no canned "
                "answers to replay for it")
    if case.backend != name:
        return f"its conformance case is for backend {case.backend!r}"
    return _Demoed(registry.get(name), case)


def _open_backends(
    registry: Registry, wanted: list[str], console: Console
) -> dict[str, _Demoed]:
    opened: dict[str, _Demoed] = {}
    for name in wanted:
        found = _open_one(registry, name)
        if isinstance(found, str):
            console.print(f"[yellow]skipping {name}: {escape(found)}[/]")
        else:
            opened[name] = found
    return opened


def _plan(opened: dict[str, _Demoed], calls: int) -> list[_Planned]:
    """Calls spread over backends, each backend's endpoints taken round-robin."""
    names = list(opened)
    turns: Counter[str] = Counter()
    plan = []
    for i in range(calls):
        name = names[i % len(names)]
        eids = opened[name].backend.endpoints()
        plan.append(_Planned(f"demo-{i + 1:05d}", name, eids[turns[name] % len(eids)]))
        turns[name] += 1
    return plan


def _one(demoed: _Demoed, call: _Planned) -> _Outcome:
    """The case's own call on the planned endpoint, with the planned request ID."""
    try:
        demoed.case.call(demoed.backend, call.endpoint, call.call_id)
    except IpfsAccelError as exc:
        return _Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
    return _Outcome(ok=True)


def _status(outcomes: dict[str, list[_Outcome]], backends: dict[str, Backend]) -> str:
    agg = Stats.sum(b.get_stats() for b in backends.values())
    ok = sum(1 for v in outcomes.values() for o in v if o.ok)
    failed = sum(1 for v in outcomes.values() for o in v if not o.ok)
    return (f"[green]{ok} ok[/] [red]{failed} failed[/] [yellow]{agg.retries} retries[/] "
            f"({agg.retry_wait_seconds:.1f}s waited) {agg.in_flight} in flight "
            f"{agg.queued} queued [cyan]{agg.output_tokens} tokens[/]")


def _run_all(
    plan: list[_Planned], opened: dict[str, _Demoed], progress: Progress,
) -> dict[str, list[_Outcome]]:
    outcomes: dict[str, list[_Outcome]] = {}
    backends = {name: d.backend for name, d in opened.items()}
    per_backend = Counter(c.backend for c in plan)
    total_task = progress.add_task("all", total=len(plan), status="")
    tasks = {name: progress.add_task(f"  {name}", total=n, status="")
             for name, n in per_backend.items()}
    pool = ThreadPoolExecutor(max_workers=min(len(plan), _MAX_THREADS),
                              thread_name_prefix="ipfs-accel-demo")
    try:
        running: dict[Future[_Outcome], _Planned] = {
            pool.submit(_one, opened[c.backend], c): c for c in plan}
        pending = set(running)
        while pending:
            progress.update(total_task, status=_status(outcomes, backends))
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in done:
                call = running[future]
                outcomes.setdefault(call.call_id, []).append(future.result())
                progress.advance(tasks[call.backend])
                progress.advance(total_task)
        progress.update(total_task, status=_status(outcomes, backends))
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C: calls not started never start
        for backend in backends.values():
            backend.close()
    return outcomes


def _attempts(server: FaultServer, backends: dict[str, Backend]) -> Counter[int]:
    """How many HTTP requests the server saw per call (1 = no retry), from the request IDs."""
    headers = {b.info.request_id_header.lower() for b in backends.values()}
    per_call: Counter[str] = Counter()
    for request in server.requests:
        for name in headers:
            rid = request.header(name)
            if rid:
                per_call[rid] += 1
                break
    return Counter(per_call.values())


def _checks(
    plan: list[_Planned], outcomes: dict[str, list[_Outcome]], agg: Stats,
    responder: DemoResponder, attempts: Counter[int],
) -> list[tuple[bool, str]]:
    issued = {c.call_id for c in plan}
    answers = sum(len(v) for v in outcomes.values())
    ok = sum(1 for v in outcomes.values() for o in v if o.ok)
    failed = answers - ok
    twice = [cid for cid, v in outcomes.items() if len(v) != 1]
    missing = issued - set(outcomes)
    seen = sum(k * n for k, n in attempts.items())
    return [
        (len(plan) == answers,
         f"calls issued == results + errors: {len(plan)} == {ok} + {failed}"),
        (not twice and not missing and set(outcomes) <= issued,
         f"each call ID answered exactly once ({len(twice)} twice, {len(missing)} never)"),
        (agg.total_requests == agg.successful_requests + agg.failed_requests == len(plan)
         and agg.in_flight == agg.queued == 0,
         f"stats conserve calls: total {agg.total_requests} == successful "
         f"{agg.successful_requests} + failed {agg.failed_requests}, none in flight"),
        (agg.successful_requests == ok and agg.failed_requests == failed,
         "stats agree with what the calls returned"),
        (seen == len(plan) + agg.retries,
         f"server saw {seen} attempts == {len(plan)} calls + {agg.retries} retries"),
        (not responder.key_violations,
         "every request carried only its own endpoint's key"
         + (f" (violations on {', '.join(sorted(set(responder.key_violations)))})"
            if responder.key_violations else "")),
    ]


def run_demo(
    *,
    backends: list[str],
    calls: int,
    seed: int,
    endpoints: int,
    stats_file: Path | None,
    console: Console,
    out: Console,
    registry: Registry | None = None,
) -> int:
    """Run the demo; return the exit code (0 only when every check passed).

    Every backend in ``registry`` (the installed ones by default) whose plugin has a
    conformance case takes part, or only ``backends`` when given.
    """
    registry = Registry() if registry is None else registry
    installed = registry.names()
    unknown = [b for b in backends if b not in installed]
    if unknown:
        raise CliError(f"the demo has no backend {unknown[0]!r} (it is not installed)",
                       hint=f"choose from {', '.join(installed) or 'no installed backend'}")
    wanted = [b for b in installed if b in backends] if backends else installed
    opened = _open_backends(registry, wanted, console)
    if not opened:
        raise CliError("no installed backend plugin has a conformance case for the demo",
                       hint="pip install ipfs-accel-plugin-openai (or any other backend)")
    responder = DemoResponder({name: d.case for name, d in opened.items()}, seed=seed,
                              retry_after=_RETRY_AFTER, delay=(0.05, 0.3))
    with FaultServer(responder=responder) as server:
        for name, demoed in opened.items():
            for i in range(1, endpoints + 1):
                eid = f"{name}-{i}"
                demoed.backend.create_endpoint(eid, **{
                    **demoed.case.settings,
                    "base_url": f"{server.base_url}/ep/{eid}", "api_key": endpoint_key(eid),
                    "max_concurrent_requests": 1 + i % 4, "queue_size": max(100, calls),
                    "max_retries": 10, "initial_retry_delay": 0.05, "max_retry_delay": 0.5,
                    "timeout": 10.0,
                })
        overloaded = "/".join(sorted({str(d.case.overloaded.status) for d in opened.values()}))
        console.print(
            f"[bold]ipfs-accel demo[/]: loopback server {server.base_url} replaying the "
            f"canned answers of {len(opened)} plugin{'s' if len(opened) != 1 else ''} "
            f"({', '.join(opened)}); {endpoints} "
            "endpoints each, own fake key, concurrency 1-4\nfaults injected (seed "
            f"{seed}): ~10% 429 + Retry-After {_RETRY_AFTER:g}s, ~5% {overloaded}, ~5% 500, "
            "~3% dropped connections")
        plan = _plan(opened, calls)
        progress = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(bar_width=30),
            MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=console, refresh_per_second=10,
        )
        started = time.monotonic()
        with progress:
            outcomes = _run_all(plan, opened, progress)
        elapsed = time.monotonic() - started
        backends_used = {name: d.backend for name, d in opened.items()}
        attempts = _attempts(server, backends_used)
    return _report(plan, outcomes, backends_used, responder, attempts, elapsed, stats_file,
                   console, out)


def _report(  # noqa: PLR0917 - private: one call site passes everything it measured
    plan: list[_Planned], outcomes: dict[str, list[_Outcome]], opened: dict[str, Backend],
    responder: DemoResponder, attempts: Counter[int], elapsed: float,
    stats_file: Path | None, console: Console, out: Console,
) -> int:
    document = stats_document(list(opened.values()))
    out.print(stats_table(document))
    agg = Stats.sum(b.get_stats(e) for b in opened.values() for e in b.endpoints())
    ok = agg.successful_requests
    out.print(f"[bold]Aggregate[/]: {len(plan)} calls in {elapsed:.1f}s over "
              f"{agg.endpoints_count} endpoints: {ok} ok, {agg.failed_requests} failed; "
              f"{agg.input_tokens} input + {agg.output_tokens} output tokens; "
              f"mean latency {agg.average_latency_seconds:.2f}s, max "
              f"{agg.latency_seconds_max:.2f}s")
    injected = ", ".join(f"{n} x {what}" for what, n in responder.injected.most_common())
    out.print(f"[bold]Server[/]: {responder.requests} requests; injected {injected or 'nothing'}")
    spread = ", ".join(f"{n} call{'s' if n != 1 else ''} x {k} attempt{'s' if k > 1 else ''}"
                       for k, n in sorted(attempts.items()))
    out.print(f"[bold]Core[/]: {agg.retries} retries, {agg.retry_wait_seconds:.1f}s waited in "
              f"all (backoff and Retry-After); {spread}")
    failures: Counter[str] = Counter(
        (o.error or "").split(":")[0] for v in outcomes.values() for o in v if not o.ok)
    if failures:
        out.print("[bold]Failed after all retries[/]: "
                  + ", ".join(f"{n} x {kind}" for kind, n in failures.most_common()))
    if stats_file is not None:
        write_stats_file(stats_file, document)
    checks = _checks(plan, outcomes, agg, responder, attempts)
    for passed, text in checks:
        out.print(f"  {'[green]ok[/]  ' if passed else '[red]FAIL[/]'} {escape(text)}")
    if all(passed for passed, _ in checks):
        out.print(f"[bold green]Nothing lost: every call finished exactly once[/] "
                  f"({len(plan)} calls, checked).")
        return 0
    out.print("[bold red]Check failed: not every call finished exactly once.[/]")
    return 1

"""``ipfs-accel demo``: hundreds of calls through every backend against a faulty loopback server.

No keys, no network: a :class:`~ipfs_accel.testing.FaultServer` on 127.0.0.1 speaks all
nine protocols (see ``_demo_server``) and injects rate limits with Retry-After, overloads,
server errors and dropped connections. Several endpoints per backend, each with its own
fake key and limits, carry the calls; the core queues and retries them. At the end: the
per-endpoint stats, the aggregate, the retries and waits, and a check that every call
finished exactly once (exit code 1 when any check fails).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._backend import Backend
from .._errors import IpfsAccelError, PluginLoadError
from .._registry import Registry
from .._stats import Stats
from ..testing import FaultServer
from ._common import CliError
from ._demo_server import DemoResponder, endpoint_key
from ._view import stats_document, stats_table, write_stats_file

__all__ = ["DEMO_BACKENDS", "run_demo"]

DEMO_BACKENDS = ("openai", "groq", "claude", "gemini", "hf_tgi", "hf_tei", "ollama", "ovms",
                 "llvm")
"""The backends the demo server can impersonate, in the order they are shown."""

_RETRY_AFTER = 0.2


@dataclass(frozen=True)
class _Planned:
    call_id: str
    backend: str
    endpoint: str
    operation: str


@dataclass
class _Outcome:
    ok: bool
    error: str | None = None


def _open_backends(
    registry: Registry, wanted: list[str], console: Console
) -> dict[str, Backend]:
    installed = set(registry.names())
    opened: dict[str, Backend] = {}
    for name in wanted:
        if name not in installed:
            console.print(f"[yellow]skipping {name}: plugin not installed "
                          f"(pip install ipfs-accel-plugin-{name.replace('_', '-')})[/]")
            continue
        try:
            opened[name] = registry.get(name)
        except PluginLoadError as exc:
            console.print(f"[yellow]skipping {name}: {escape(str(exc))}[/]")
    return opened


def _plan(backends: dict[str, Backend], calls: int) -> list[_Planned]:
    """Calls spread over backends, endpoints round-robin; every 4th an embed where offered."""
    names = list(backends)
    turns: Counter[str] = Counter()
    plan = []
    for i in range(calls):
        name = names[i % len(names)]
        backend = backends[name]
        ops = backend.info.operations
        k = turns[name]
        turns[name] += 1
        eids = backend.endpoints()
        if "chat" in ops and not ("embed" in ops and k % 4 == 3):
            op = "chat"
        elif "embed" in ops:
            op = "embed"
        else:
            op = "generate"
        plan.append(_Planned(f"demo-{i + 1:05d}", name, eids[k % len(eids)], op))
    return plan


async def _one(backend: Backend, call: _Planned) -> None:
    if call.operation == "embed":
        await backend.aembed([f"demo text {call.call_id}"], endpoint_id=call.endpoint,
                             request_id=call.call_id)
    elif call.operation == "chat":
        await backend.achat([{"role": "user", "content": f"Demo question {call.call_id}"}],
                            endpoint_id=call.endpoint, request_id=call.call_id)
    else:
        await backend.agenerate(f"Demo prompt {call.call_id}", endpoint_id=call.endpoint,
                                request_id=call.call_id)


def _status(outcomes: dict[str, list[_Outcome]], backends: dict[str, Backend]) -> str:
    agg = Stats.sum(b.get_stats() for b in backends.values())
    ok = sum(1 for v in outcomes.values() for o in v if o.ok)
    failed = sum(1 for v in outcomes.values() for o in v if not o.ok)
    return (f"[green]{ok} ok[/] [red]{failed} failed[/] [yellow]{agg.retries} retries[/] "
            f"({agg.retry_wait_seconds:.1f}s waited) {agg.in_flight} in flight "
            f"{agg.queued} queued [cyan]{agg.output_tokens} tokens[/]")


async def _run_all(
    plan: list[_Planned], backends: dict[str, Backend], progress: Progress,
) -> dict[str, list[_Outcome]]:
    outcomes: dict[str, list[_Outcome]] = {}
    per_backend = Counter(c.backend for c in plan)
    total_task = progress.add_task("all", total=len(plan), status="")
    tasks = {name: progress.add_task(f"  {name}", total=n, status="")
             for name, n in per_backend.items()}

    async def one(call: _Planned) -> None:
        try:
            await _one(backends[call.backend], call)
        except IpfsAccelError as exc:
            outcome = _Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
        else:
            outcome = _Outcome(ok=True)
        outcomes.setdefault(call.call_id, []).append(outcome)
        progress.advance(tasks[call.backend])
        progress.advance(total_task)

    work = asyncio.gather(*(one(c) for c in plan))
    try:
        while not work.done():
            progress.update(total_task, status=_status(outcomes, backends))
            await asyncio.wait({work}, timeout=0.1)
        progress.update(total_task, status=_status(outcomes, backends))
        await work
    finally:
        for backend in backends.values():
            await backend.aclose()
    return outcomes


def _attempts(server: FaultServer, backends: dict[str, Backend]) -> Counter[int]:
    """How many HTTP requests the server saw per call (1 = no retry), from the request IDs."""
    headers = {b.info.request_id_header.lower() for b in backends.values()}
    per_call: Counter[str] = Counter()
    for request in server.requests:
        if request.method == "GET":  # tei's one-off /info probe is not an attempt
            continue
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
) -> int:
    """Run the demo; return the exit code (0 only when every check passed)."""
    unknown = [b for b in backends if b not in DEMO_BACKENDS]
    if unknown:
        raise CliError(f"the demo has no server for backend {unknown[0]!r}",
                       hint=f"choose from {', '.join(DEMO_BACKENDS)}")
    wanted = [b for b in DEMO_BACKENDS if b in backends] if backends else list(DEMO_BACKENDS)
    opened = _open_backends(Registry(), wanted, console)
    if not opened:
        raise CliError("no backend plugin installed for the demo",
                       hint="pip install ipfs-accel-plugin-openai (or any other backend)")
    responder = DemoResponder(seed=seed, retry_after=_RETRY_AFTER, delay=(0.05, 0.3))
    with FaultServer(responder=responder) as server:
        for name, backend in opened.items():
            for i in range(1, endpoints + 1):
                eid = f"{name}-{i}"
                backend.create_endpoint(
                    eid, base_url=f"{server.base_url}/ep/{eid}", api_key=endpoint_key(eid),
                    model=None if backend.info.default_model else "demo-model",
                    max_concurrent_requests=1 + i % 4, queue_size=max(100, calls),
                    max_retries=10, initial_retry_delay=0.05, max_retry_delay=0.5,
                    timeout=10.0,
                )
        console.print(
            f"[bold]ipfs-accel demo[/]: loopback server {server.base_url} speaking "
            f"{len(opened)} protocols ({', '.join(opened)}); {endpoints} endpoints each, "
            "own fake key, concurrency 1-4\nfaults injected (seed "
            f"{seed}): ~10% 429 + Retry-After {_RETRY_AFTER:g}s, ~5% 503/529, ~5% 500, "
            "~3% dropped connections")
        plan = _plan(opened, calls)
        progress = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(bar_width=30),
            MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=console, refresh_per_second=10,
        )
        started = time.monotonic()
        with progress:
            outcomes = asyncio.run(_run_all(plan, opened, progress))
        elapsed = time.monotonic() - started
        attempts = _attempts(server, opened)
    return _report(plan, outcomes, opened, responder, attempts, elapsed, stats_file,
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

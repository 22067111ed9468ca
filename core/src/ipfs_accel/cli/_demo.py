"""``ipfs-accel demo``: hundreds of calls through every backend's pool of keys and servers.

No keys, no network: :class:`~ipfs_accel.testing.FaultServer` instances on 127.0.0.1 replay each
plugin's own canned answers, from its ``conformance_case`` hook (see ``_demo_server``).
Any installed plugin with a case takes part, a third-party one too; one without is skipped
with a line saying so. Each backend has a pool (see ``_demo_pools``): several keys, each
limited by the server as vendors limit them (429s, and the vendor's rate-limit headers for
plugins that read them), and one endpoint on a spare server that goes down halfway. The
servers also inject overloads, server errors and dropped connections. The calls (the
case's own call, from a pool of threads) go through the pools, which pace, pause, retry
and move calls between members. At the end: the per-member stats, the pools' counts, a
check that every call finished exactly once (exit code 1 when any check fails), and how
many calls pacing held back against how many 429s the servers sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._backend import Backend
from .._errors import IpfsAccelError, PluginLoadError
from .._pool import Pool
from .._registry import Registry
from ..testing import Case
from ._common import CliError
from ._demo_pools import RPM, Network, build_network
from ._demo_report import Outcome, report
from ._demo_server import DemoResponder

__all__ = ["run_demo"]

# A case's call is a blocking one: one thread per call in flight or queued, so the
# endpoints' queues fill as they would under many callers (bounded for huge --calls).
_MAX_THREADS = 512


@dataclass(frozen=True)
class _Planned:
    call_id: str
    backend: str


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
    """Calls spread over the backends in turn."""
    names = list(opened)
    return [_Planned(f"demo-{i + 1:05d}", names[i % len(names)]) for i in range(calls)]


class _Through:
    """What a case's call takes for a Backend: each operation goes through the backend's
    pool instead, which picks the member (the endpoint the case names is ignored)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def __getattr__(self, name: str) -> Callable[..., Any]:
        operation = getattr(self._pool, name)

        def through(*args: Any, endpoint_id: str | None = None, **kwargs: Any) -> Any:
            return operation(*args, **kwargs)

        return through


def _one(case: Case, pool: Pool, call: _Planned) -> Outcome:
    """The case's own call through the pool, with the planned request ID."""
    try:
        # a Backend look-alike: the case calls backend.chat(...)/embed(...)/invoke(...)
        case.call(cast(Backend, _Through(pool)), "", call.call_id)
    except IpfsAccelError as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
    return Outcome(ok=True)


def _status(outcomes: dict[str, list[Outcome]], pools: dict[str, Pool]) -> str:
    stats = [pool.get_stats() for pool in pools.values()]
    ok = sum(1 for v in outcomes.values() for o in v if o.ok)
    failed = sum(1 for v in outcomes.values() for o in v if not o.ok)
    retries = sum(s.retries for s in stats)
    moved = sum(s.failovers for s in stats)
    paced = sum(m.paced for s in stats for m in s.members.values())
    members = sum(len(s.members) for s in stats)
    paused = sum(s.paused for s in stats)
    unwell = sum(s.unhealthy + s.disabled for s in stats)
    return (f"[green]{ok} ok[/] [red]{failed} failed[/] [yellow]{retries} retries[/] "
            f"({moved} moved) [cyan]{paced} paced[/] {members} members: "
            f"[yellow]{paused} paused[/] [red]{unwell} unhealthy[/]")


def _run_all(
    plan: list[_Planned], opened: dict[str, _Demoed], net: Network, progress: Progress,
    halfway: Callable[[int], None],
) -> dict[str, list[Outcome]]:
    outcomes: dict[str, list[Outcome]] = {}
    per_backend = Counter(c.backend for c in plan)
    total_task = progress.add_task("all", total=len(plan), status="")
    tasks = {name: progress.add_task(f"  {name}", total=n, status="")
             for name, n in per_backend.items()}
    threads = ThreadPoolExecutor(max_workers=min(len(plan), _MAX_THREADS),
                                 thread_name_prefix="ipfs-accel-demo")
    done_count, half = 0, len(plan) // 2
    try:
        running: dict[Future[Outcome], _Planned] = {
            threads.submit(_one, opened[c.backend].case, net.pools[c.backend], c): c
            for c in plan}
        pending = set(running)
        while pending:
            progress.update(total_task, status=_status(outcomes, net.pools))
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in done:
                call = running[future]
                outcomes.setdefault(call.call_id, []).append(future.result())
                progress.advance(tasks[call.backend])
                progress.advance(total_task)
                done_count += 1
                if done_count == half:
                    halfway(done_count)
        progress.update(total_task, status=_status(outcomes, net.pools))
    finally:
        threads.shutdown(cancel_futures=True)  # on Ctrl-C: calls not started never start
        for demoed in opened.values():
            demoed.backend.close()
    return outcomes


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
    conformance case takes part, or only ``backends`` when given; each has ``endpoints``
    rate-limited keys and one endpoint on the spare server.
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
                              delay=(0.05, 0.3))
    down_after: list[int] = []
    with ExitStack() as stack:
        net = build_network(
            stack, {name: d.backend for name, d in opened.items()},
            {name: registry.hooks(name) for name in opened},
            {name: d.case for name, d in opened.items()}, responder,
            keys=endpoints, calls=calls)
        _banner(console, opened, net, endpoints, seed)

        def halfway(done: int) -> None:
            net.spare.close()  # connections refused from now on; calls on it are cut
            down_after.append(done)
            console.print(f"[yellow]the spare server went down after {done} calls[/]")

        plan = _plan(opened, calls)
        progress = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(bar_width=30),
            MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=console, refresh_per_second=10,
        )
        started = time.monotonic()
        with progress:
            outcomes = _run_all(plan, opened, net, progress, halfway)
        elapsed = time.monotonic() - started
        return report({c.call_id for c in plan}, outcomes,
                      [d.backend for d in opened.values()], net, responder,
                      down_after[0] if down_after else None, elapsed, stats_file, out)


def _banner(console: Console, opened: dict[str, _Demoed], net: Network, keys: int,
            seed: int) -> None:
    by_style: dict[str | None, list[str]] = {}
    for name, style in net.styles.items():
        by_style.setdefault(style, []).append(name)
    headers = "; ".join(
        f"{', '.join(names)}: {style} rate-limit headers, paced by them" if style
        else f"{', '.join(names)}: 429s only, paced by rpm={RPM}"
        for style, names in by_style.items())
    alone = [name for name, apart in net.apart.items() if not apart]
    if alone:
        headers += (f"; {', '.join(alone)}: the key travels where the servers do not look "
                    "for one, so each key has a server of its own")
    overloaded = "/".join(sorted({str(d.case.overloaded.status) for d in opened.values()}))
    console.print(
        f"[bold]ipfs-accel demo[/]: loopback servers replaying the canned answers of "
        f"{len(opened)} plugin{'s' if len(opened) != 1 else ''} ({', '.join(opened)}); a pool "
        f"per backend of {keys} key{'s' if keys != 1 else ''}, each limited to {RPM} requests "
        "a minute by its server, and one endpoint on a spare server that goes down halfway\n"
        f"{escape(headers)}\nfaults injected (seed {seed}): ~5% {overloaded}, ~5% 500, "
        "~3% dropped connections")

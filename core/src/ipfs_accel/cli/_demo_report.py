"""The demo's closing report: what the servers, pools and members counted, the checks that
every call finished exactly once, and what pacing held back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from .._backend import Backend
from .._pool_stats import PoolStats
from .._stats import Stats
from ._demo_pools import Network
from ._demo_server import DemoResponder
from ._view import pool_line, stats_document, stats_table, write_stats_file

__all__ = ["Outcome", "report"]


@dataclass
class Outcome:
    """How one call ended."""

    ok: bool
    error: str | None = None


def _pools(net: Network) -> PoolStats:
    """The pools' counters summed (members aside)."""
    parts = [pool.get_stats() for pool in net.pools.values()]
    fields = ("calls", "ok", "failed", "in_flight", "attempts", "retries", "failovers",
              "unsent", "waits")
    return PoolStats(**{name: sum(getattr(p, name) for p in parts) for name in fields},
                     wait_seconds=sum(p.wait_seconds for p in parts))


def _checks(
    issued: set[str], outcomes: dict[str, list[Outcome]], net: Network, pools: PoolStats,
    responder: DemoResponder,
) -> list[tuple[bool, str]]:
    answers = sum(len(v) for v in outcomes.values())
    ok = sum(1 for v in outcomes.values() for o in v if o.ok)
    failed = answers - ok
    twice = [cid for cid, v in outcomes.items() if len(v) != 1]
    missing = issued - set(outcomes)
    members = Stats.sum(net.member_stats(net.keyed + net.spared))
    keyed = Stats.sum(net.member_stats(net.keyed))
    seen = sum(net.seen(server) for server in net.limited)
    return [
        (len(issued) == answers, f"calls issued == results + errors: {len(issued)} == {ok} + "
                                 f"{failed}"),
        (not twice and not missing and set(outcomes) <= issued,
         f"each call ID answered exactly once ({len(twice)} twice, {len(missing)} never)"),
        (pools.calls == pools.ok + pools.failed == len(issued) and pools.in_flight == 0,
         f"pools conserve calls: {pools.calls} == ok {pools.ok} + failed {pools.failed}, "
         "none in flight"),
        (pools.ok == ok == members.successful_requests and pools.failed == failed,
         "pools and members agree with what the calls returned"),
        (pools.attempts == members.total_requests and members.in_flight == members.queued == 0,
         f"every attempt counted on the member it ran on: {pools.attempts} == "
         f"{members.total_requests}"),
        (seen == keyed.total_requests - keyed.rejected - keyed.unsent,
         f"the rate-limited servers saw {seen} attempts == "
         f"{keyed.total_requests - keyed.rejected - keyed.unsent} sent to their members"),
        (not responder.key_violations,
         "every request carried only its own endpoint's key"
         + (f" (violations on {', '.join(sorted(set(responder.key_violations)))})"
            if responder.key_violations else "")),
    ]


def _pacing(net: Network, pools: PoolStats) -> str:
    """What pacing held back, beside the 429s the servers sent (and what the members
    counted as refused for a limit: the 429s and the overloads)."""
    members = Stats.sum(net.member_stats(net.keyed + net.spared))
    held = members.paced + pools.waits
    return (f"Pacing held calls back {held} times ({members.paced} at a member, {pools.waits} "
            f"in a pool waiting for one); the servers refused {net.refused_429()} with 429 "
            f"(the members saw {members.rate_limited} refusals for a limit, overloads "
            "included).")


def report(  # noqa: PLR0917 - private: one call site passes everything it measured
    issued: set[str], outcomes: dict[str, list[Outcome]], backends: list[Backend],
    net: Network, responder: DemoResponder, down_after: int | None, elapsed: float,
    stats_file: Path | None, out: Console,
) -> int:
    """Print the stats, the counts and the checks; return the exit code."""
    document = stats_document(backends)
    out.print(stats_table(document, title="Per-member stats (each row counts attempts)"))
    agg = document.aggregate
    pools = _pools(net)
    out.print(f"[bold]Aggregate[/]: {len(issued)} calls in {elapsed:.1f}s through "
              f"{len(net.pools)} pools of {agg.endpoints_count} members: {pools.ok} ok, "
              f"{pools.failed} failed; {agg.input_tokens} input + {agg.output_tokens} output "
              f"tokens; mean attempt latency {agg.average_latency_seconds:.2f}s, max "
              f"{agg.latency_seconds_max:.2f}s")
    out.print(pool_line(pools).replace("Pool[/]:", "Pools[/]:", 1))
    injected = ", ".join(f"{n} x {what}" for what, n in responder.injected.most_common())
    spared = Stats.sum(net.member_stats(net.spared))
    down = (f"went down after {down_after} calls: " if down_after is not None
            else "stayed up: ")
    out.print(f"[bold]Servers[/]: {net.refused_429()} x 429 for a key's rate limit; "
              f"injected {injected or 'nothing'}; the spare server {down}its members were "
              f"tried {spared.total_requests} times, {spared.successful_requests} answered")
    failures: Counter[str] = Counter(
        (o.error or "").split(":")[0] for v in outcomes.values() for o in v if not o.ok)
    if failures:
        out.print("[bold]Failed after all retries[/]: "
                  + ", ".join(f"{n} x {kind}" for kind, n in failures.most_common()))
    if stats_file is not None:
        write_stats_file(stats_file, document)
    checks = _checks(issued, outcomes, net, pools, responder)
    for passed, text in checks:
        out.print(f"  {'[green]ok[/]  ' if passed else '[red]FAIL[/]'} {escape(text)}")
    if all(passed for passed, _ in checks):
        out.print(f"[bold green]Nothing lost: every call finished exactly once[/] "
                  f"({len(issued)} calls, checked).")
        out.print(_pacing(net, pools))
        return 0
    out.print("[bold red]Check failed: not every call finished exactly once.[/]")
    return 1

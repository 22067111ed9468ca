"""Rich tables: per-endpoint stats, and the stats file that ``run``/``demo`` write.

The stats file itself (:class:`StatsFile`, written, kept up to date while a run goes and
read back) is the core's :mod:`ipfs_accel._stats_file`, which a program uses through
:func:`ipfs_accel.stats_file`; here it is drawn as tables, and a path the live file cannot
be written to is one CLI error line. ``stats FILE --watch`` (:mod:`._watch`) follows it.
"""

from __future__ import annotations

from typing import NoReturn

from rich.table import Table

from .._pool_stats import PoolStats
from .._stats import Stats
from .._stats_file import (
    BatchProgress,
    EndpointRow,
    StatsFile,
    load_stats_file,
    stats_document,
    stats_json,
    write_stats_file,
)
from .._stats_file import LiveStatsFile as _LiveStatsFile
from ._common import CliError

__all__ = [
    "BatchProgress",
    "EndpointRow",
    "LiveStatsFile",
    "StatsFile",
    "load_stats_file",
    "pool_line",
    "stats_document",
    "stats_json",
    "stats_table",
    "write_stats_file",
]


class LiveStatsFile(_LiveStatsFile):
    """The core's live stats file; a path it cannot write is a :class:`CliError` (exit 2)."""

    def _unwritable(self, exc: OSError) -> NoReturn:
        raise CliError(self._unwritable_message(exc)) from None


def _fmt_s(value: float) -> str:
    return f"{value:.2f}s" if value < 100 else f"{value:.0f}s"


def stats_table(document: StatsFile, *, title: str = "Per-endpoint stats") -> Table:
    """One row per endpoint and a bold aggregate row."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("backend")
    table.add_column("endpoint")
    for name in ("calls", "ok", "failed", "retries", "retry wait", "in tok", "out tok",
                 "avg lat", "max lat"):
        table.add_column(name, justify="right")

    def cells(s: Stats) -> list[str]:
        return [
            str(s.total_requests),
            str(s.successful_requests),
            str(s.failed_requests),
            str(s.retries),
            _fmt_s(s.retry_wait_seconds),
            str(s.input_tokens),
            str(s.output_tokens),
            _fmt_s(s.average_latency_seconds),
            _fmt_s(s.latency_seconds_max),
        ]

    for row in document.endpoints:
        table.add_row(row.backend, row.endpoint, *cells(row.stats))
    agg = document.aggregate
    table.add_section()
    table.add_row("[bold]all[/]", f"[bold]{agg.endpoints_count} endpoints[/]",
                  *(f"[bold]{c}[/]" for c in cells(agg)))
    return table


def pool_line(stats: PoolStats) -> str:
    """The pool's own counters in one line of rich markup: calls and their attempts."""
    moved = f", {stats.failovers} moved to another member" if stats.failovers else ""
    waits = (f", {stats.waits} waits for a member to come back "
             f"({stats.wait_seconds:.1f}s)" if stats.waits else "")
    return (f"[bold]Pool[/]: {stats.calls} calls, {stats.ok} ok, {stats.failed} failed; "
            f"{stats.attempts} attempts, {stats.retries} retries{moved}{waits}")

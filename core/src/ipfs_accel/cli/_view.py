"""Rich tables: per-endpoint stats, and the stats file that ``run``/``demo`` write.

The stats file is a :class:`StatsFile`: written from the live counters, read back by
``ipfs-accel stats FILE`` through one typed decoder, so a field of the wrong type is an
error that names the field rather than a crash while drawing the table.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from rich.table import Table

from .._backend import Backend
from .._pool_stats import PoolStats
from .._stats import Stats

__all__ = [
    "EndpointRow",
    "StatsFile",
    "load_stats_file",
    "pool_line",
    "stats_document",
    "stats_json",
    "stats_table",
    "write_stats_file",
]

STATS_FORMAT = "ipfs-accel-stats/1"


class EndpointRow(msgspec.Struct, kw_only=True, frozen=True):
    """One endpoint's line in a stats file."""

    backend: str
    endpoint: str
    base_url: str | None = None
    stats: Stats


class StatsFile(msgspec.Struct, kw_only=True, frozen=True):
    """The final stats of a run: each endpoint's, and their aggregate.

    On disk each ``stats`` object also carries ``average_latency_seconds`` (derived, so
    ignored when read back).
    """

    format: str
    written_at: str
    endpoints: list[EndpointRow]
    aggregate: Stats


class _Format(msgspec.Struct):
    # read first, leniently: a file that is some other JSON is "not a stats file", not a
    # list of what its fields lack
    format: Any = None


_FORMAT = msgspec.json.Decoder(_Format)
_STATS_FILE = msgspec.json.Decoder(StatsFile)


def stats_document(backends: list[Backend], *, urls: Mapping[str, str] | None = None) -> StatsFile:
    """The final stats of these backends' endpoints and their aggregate."""
    rows = []
    for backend in backends:
        for eid in backend.endpoints():
            rows.append(EndpointRow(
                backend=backend.name, endpoint=eid,
                base_url=(urls or {}).get(eid) or backend.get_endpoint(eid).base_url,
                stats=backend.get_stats(eid)))
    return StatsFile(format=STATS_FORMAT, written_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     endpoints=rows, aggregate=Stats.sum(row.stats for row in rows))


def stats_json(document: StatsFile) -> dict[str, Any]:
    """The document as plain JSON data, each stats object with its average latency."""
    return {
        "format": document.format,
        "written_at": document.written_at,
        "endpoints": [{"backend": row.backend, "endpoint": row.endpoint,
                       "base_url": row.base_url, "stats": row.stats.to_dict()}
                      for row in document.endpoints],
        "aggregate": document.aggregate.to_dict(),
    }


def write_stats_file(path: Path, document: StatsFile) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(stats_json(document)), indent=2))
        f.write(b"\n")
    Path(tmp).replace(path)


def load_stats_file(path: Path) -> StatsFile:
    """Read a stats file; ``ValueError`` with the reason (and the field) when it is not one."""
    raw = path.read_bytes()
    try:
        head = _FORMAT.decode(raw)
    except msgspec.ValidationError:  # JSON, but not an object (caught before its base class)
        head = _Format()
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if head.format != STATS_FORMAT:
        raise ValueError(f"{path} is not an ipfs-accel stats file (written by --stats-file)")
    try:
        return _STATS_FILE.decode(raw)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        field = where.rstrip("`").lstrip(".")
        raise ValueError(f"{path} is not a valid stats file: {field + ': ' if field else ''}"
                         f"{message[:1].lower()}{message[1:]}") from None


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

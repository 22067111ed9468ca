"""Rich tables: per-endpoint stats, and the stats file that ``run``/``demo`` write.

The stats file is a :class:`StatsFile`: written from the live counters, read back by
``ipfs-accel stats FILE`` through one typed decoder, so a field of the wrong type is an
error that names the field rather than a crash while drawing the table. While a run goes,
:class:`LiveStatsFile` rewrites it every second (``"running": true``), each time atomically,
and once more at the end (``"running": false``); ``stats FILE --watch`` (:mod:`._watch`)
follows it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
from rich.table import Table

from .._backend import Backend
from .._pool_stats import PoolStats
from .._stats import Stats
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

STATS_FORMAT = "ipfs-accel-stats/1"


class EndpointRow(msgspec.Struct, kw_only=True, frozen=True):
    """One endpoint's line in a stats file, with the limits it was configured with."""

    backend: str
    endpoint: str
    base_url: str | None = None
    stats: Stats
    rpm: float | None = None
    tpm: int | None = None


class BatchProgress(msgspec.Struct, kw_only=True, frozen=True):
    """A ``run``'s input lines: how many in all, answered (ok, failed, bad), in flight."""

    total: int
    ok: int = 0
    failed: int = 0
    bad: int = 0
    in_flight: int = 0


class StatsFile(msgspec.Struct, kw_only=True, frozen=True):
    """The stats of a run: each endpoint's, and their aggregate.

    ``running`` is true while the run goes (the file is rewritten every second or so;
    ``updated_at``, ISO 8601 to the millisecond, says when last) and false once it ended;
    a file written before these fields existed reads as ended. ``pool`` (the pool's own
    counters, its ``members`` left out: they are the endpoints) and ``lines`` come from
    ``run``. On disk each ``stats`` object also carries ``average_latency_seconds``
    (derived, so ignored when read back).
    """

    format: str
    written_at: str
    endpoints: list[EndpointRow]
    aggregate: Stats
    running: bool = False
    updated_at: str | None = None
    pool: PoolStats | None = None
    lines: BatchProgress | None = None


class _Format(msgspec.Struct):
    # read first, leniently: a file that is some other JSON is "not a stats file", not a
    # list of what its fields lack
    format: Any = None


_FORMAT = msgspec.json.Decoder(_Format)
_STATS_FILE = msgspec.json.Decoder(StatsFile)


def stats_document(
    backends: list[Backend], *, urls: Mapping[str, str] | None = None, running: bool = False,
    pool: PoolStats | None = None, lines: BatchProgress | None = None,
) -> StatsFile:
    """The stats of these backends' endpoints and their aggregate, as of now."""
    rows = []
    for backend in backends:
        for eid in backend.endpoints():
            config = backend.get_endpoint(eid)
            rows.append(EndpointRow(
                backend=backend.name, endpoint=eid,
                base_url=(urls or {}).get(eid) or config.base_url,
                stats=backend.get_stats(eid), rpm=config.settings.rpm, tpm=config.settings.tpm))
    now = time.time()
    return StatsFile(
        format=STATS_FORMAT, written_at=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)),
        endpoints=rows, aggregate=Stats.sum(row.stats for row in rows), running=running,
        updated_at=datetime.fromtimestamp(now).astimezone().isoformat(timespec="milliseconds"),
        pool=None if pool is None else msgspec.structs.replace(pool, members={}), lines=lines)


def stats_json(document: StatsFile) -> dict[str, Any]:
    """The document as plain JSON data, each stats object with its average latency."""
    data: dict[str, Any] = {
        "format": document.format,
        "written_at": document.written_at,
        "running": document.running,
        "updated_at": document.updated_at,
        "endpoints": [{"backend": row.backend, "endpoint": row.endpoint,
                       "base_url": row.base_url, "rpm": row.rpm, "tpm": row.tpm,
                       "stats": row.stats.to_dict()}
                      for row in document.endpoints],
        "aggregate": document.aggregate.to_dict(),
    }
    if document.pool is not None:
        data["pool"] = {k: v for k, v in document.pool.to_dict().items() if k != "members"}
    if document.lines is not None:
        data["lines"] = msgspec.structs.asdict(document.lines)
    return data


def write_stats_file(path: Path, document: StatsFile) -> None:
    """Write atomically (a temporary file in the same folder, then renamed over ``path``),
    so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(stats_json(document)), indent=2))
            f.write(b"\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class LiveStatsFile:
    """Keeps a stats file up to date while a run goes: a context manager.

    On entry it writes ``snapshot(True)`` at once (a path it cannot write is a
    :class:`CliError` before anything is sent), then again every ``interval`` seconds from
    a thread of its own; on exit it stops that thread and writes ``snapshot(False)`` last,
    the final document (when the block raised, as well as it can: the block's error is the
    one that shows). ``snapshot(running)`` builds the document; it must be safe to call
    from another thread (the endpoints' and pool's stats are).
    """

    def __init__(self, path: Path, snapshot: Callable[[bool], StatsFile], *,
                 interval: float = 1.0) -> None:
        self.path = path
        self.snapshot = snapshot
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ipfs-accel-stats-file",
                                        daemon=True)

    def _write(self, *, running: bool) -> None:
        try:
            write_stats_file(self.path, self.snapshot(running))
        except OSError as exc:
            raise CliError(f"cannot write stats file {self.path}: "
                           f"{exc.strerror or exc}") from None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            # a write that fails now (a full disk, a folder renamed) is tried again next
            # time; the final one reports its error
            with contextlib.suppress(Exception):
                self._write(running=True)

    def __enter__(self) -> LiveStatsFile:
        self._write(running=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is None:
            self._write(running=False)
            return
        with contextlib.suppress(Exception):
            self._write(running=False)


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

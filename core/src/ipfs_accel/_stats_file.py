"""The stats file: endpoints' stats as one JSON document, kept up to date while work goes.

The document is a :class:`StatsFile`: built from the live counters (:func:`stats_document`),
written atomically (:func:`write_stats_file`) and read back through one typed decoder
(:func:`load_stats_file`), so a field of the wrong type is an error that names the field.
While work goes, :class:`LiveStatsFile` rewrites it every second or so (``"running": true``,
``"updated_at"``) and once more at the end (``"running": false``). ``ipfs-accel run
--stats-file`` writes it that way, and a program does with :func:`stats_file`;
``ipfs-accel stats FILE --watch`` follows it. Nothing here needs the ``cli`` extra.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self

import msgspec

from ._errors import ConfigurationError
from ._pool_stats import PoolStats
from ._stats import Stats

if TYPE_CHECKING:
    from ._backend import Backend
    from ._pool import Pool

__all__ = [
    "STATS_FORMAT",
    "BatchProgress",
    "EndpointRow",
    "LiveStatsFile",
    "StatsFile",
    "load_stats_file",
    "stats_document",
    "stats_file",
    "stats_json",
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
    backends: Sequence[Backend], *, urls: Mapping[str, str] | None = None,
    running: bool = False, pool: PoolStats | None = None, lines: BatchProgress | None = None,
) -> StatsFile:
    """The stats of these backends' endpoints and their aggregate, as of now.

    An endpoint removed from its backend while the document is made is left out.
    """
    rows = []
    for backend in backends:
        for eid in backend.endpoints():
            try:
                config = backend.get_endpoint(eid)
                stats = backend.get_stats(eid)
            except ConfigurationError:  # removed meanwhile
                continue
            rows.append(EndpointRow(
                backend=backend.name, endpoint=eid,
                base_url=(urls or {}).get(eid) or config.base_url,
                stats=stats, rpm=config.settings.rpm, tpm=config.settings.tpm))
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
    """Keeps a stats file up to date while a run goes: a context manager, entered once.

    On entry it writes ``snapshot(True)`` at once (a path it cannot write is a
    :class:`ConfigurationError` before the block runs), then again every ``interval``
    seconds from a daemon thread of its own; on exit it stops that thread and writes
    ``snapshot(False)`` last, the final document (when the block raised, as well as it
    can: the block's error is the one that shows). ``snapshot(running)`` builds the
    document; it must be safe to call from another thread (the endpoints' and pool's
    stats are).
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
            self._unwritable(exc)

    def _unwritable(self, exc: OSError) -> NoReturn:
        """Raise the error that says the file cannot be written (the CLI raises its own)."""
        raise ConfigurationError(self._unwritable_message(exc)) from exc

    def _unwritable_message(self, exc: OSError) -> str:
        return f"cannot write stats file {self.path}: {exc.strerror or exc}"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            # a write that fails now (a full disk, a folder renamed) is tried again next
            # time; the final one reports its error
            with contextlib.suppress(Exception):
                self._write(running=True)

    def __enter__(self) -> Self:
        if self._stop.is_set() or self._thread.ident is not None:
            raise RuntimeError(f"the live stats file {self.path} was already used: "
                               "make a new one for another block")
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


def _checked_path(path: object) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise ConfigurationError(f"stats_file needs a path (str or os.PathLike), "
                                 f"got a {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"stats_file needs a non-empty str path, got {name!r}")
    return Path(name)


def _checked_backends(backends: Sequence[object]) -> list[Backend]:
    from ._backend import Backend  # noqa: PLC0415 - Backend's HTTP machinery loads on use

    if not backends:
        raise ConfigurationError("stats_file needs the Backend(s) whose endpoints it shows: "
                                 "stats_file(path, backend, ...)")
    chosen: list[Backend] = []
    for backend in backends:
        if not isinstance(backend, Backend):
            raise ConfigurationError(f"stats_file shows Backend objects (from Registry().get), "
                                     f"got a {type(backend).__name__}")
        if any(b is backend for b in chosen):
            raise ConfigurationError(f"backend {backend.name!r} was given twice")
        chosen.append(backend)
    return chosen


def stats_file(path: str | os.PathLike[str], *backends: Backend, pool: Pool | None = None,
               every: float = 1.0) -> LiveStatsFile:
    """Keep a stats file up to date while a block runs: ``with stats_file(path, backend):``.

    The same file as ``ipfs-accel run --stats-file`` (``ipfs-accel stats FILE`` shows it,
    ``--watch`` follows it): each endpoint of ``backends`` with its stats, their aggregate
    and, given a :class:`Pool`, the pool's counters. It is written with ``"running": true``
    on entry (a path that cannot be written raises :class:`ConfigurationError` there,
    before the block runs), again every ``every`` seconds from a daemon thread, and once
    with ``"running": false`` on exit, also when the block raised. Each write replaces
    the file atomically (a temporary file in its folder, then renamed over it), so a
    reader never sees half of one. Arguments that are wrong raise ConfigurationError at
    once. Each call gives a new context manager, to be entered once.
    """
    target = _checked_path(path)
    chosen = _checked_backends(backends)
    if pool is not None:
        from ._pool import Pool  # noqa: PLC0415 - the pool's machinery loads on use

        if not isinstance(pool, Pool):
            raise ConfigurationError(f"stats_file's pool is a Pool (from Registry().pool) "
                                     f"or None, got a {type(pool).__name__}")
    if isinstance(every, bool) or not isinstance(every, int | float) or not (
            0 < every < math.inf):
        raise ConfigurationError(f"stats_file's every must be a positive number of seconds, "
                                 f"got {every!r}")

    def snapshot(running: bool) -> StatsFile:
        return stats_document(chosen, running=running,
                              pool=None if pool is None else pool.get_stats())

    return LiveStatsFile(target, snapshot, interval=float(every))

"""``ipfs-accel stats FILE --watch``: follow a stats file while its run goes.

The file is read again every ``interval`` seconds. On a terminal one table is redrawn in
place (rich's Live display) with how long ago the run last wrote it; otherwise (a pipe, a
log) a new table is printed each time the run rewrote the file (its ``updated_at``
changed), so the output is a plain record of what was seen. It ends when the file says the
run ended (the final table shown, exit 0) or on Ctrl-C (exit 0). Until then nothing stops
it: a file not there yet is waited for, and one that cannot be read or parsed (a writer
that replaces it in place, not atomically) is read again next time, each said once on
stderr (on a terminal: under the table).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .._stats import Stats
from ._view import StatsFile, load_stats_file, pool_line

__all__ = ["read_once", "watch", "watch_table"]

STALE_SECONDS = 10.0  # a running file not rewritten for this long: the run may be gone

_STATE_STYLE = {"ready": "green", "paused": "yellow", "unhealthy": "red", "probing": "red",
                "disabled": "dim red", "mixed": "yellow"}


def _clock(value: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(value))


def _updated(document: StatsFile) -> datetime | None:
    try:
        return datetime.fromisoformat(document.updated_at or document.written_at)
    except ValueError:
        return None


def _state(s: Stats) -> str:
    style = _STATE_STYLE.get(s.state, "")
    text = s.state if s.paused_until is None else f"{s.state} until {_clock(s.paused_until)}"
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _limits(rpm: float | None, tpm: int | None) -> str:
    parts = ([] if rpm is None else [f"{rpm:g} rpm"]) + ([] if tpm is None else [f"{tpm} tpm"])
    return ", ".join(parts) or "-"


def _cells(s: Stats) -> list[str]:
    return [_state(s), str(s.in_flight), str(s.queued)]


def _counts(s: Stats) -> list[str]:
    return [str(s.total_requests), str(s.successful_requests), str(s.failed_requests),
            str(s.retries), str(s.rate_limited), f"{s.average_latency_seconds:.2f}s"]


def _title(document: StatsFile) -> str:
    when = _updated(document)
    at = when.strftime("%H:%M:%S") if when else document.written_at
    return (f"Per-endpoint stats: running, updated {at}" if document.running
            else f"Per-endpoint stats: run ended, {at}")


def watch_table(document: StatsFile) -> Table:
    """One row per endpoint: its state (paused until when), calls in flight and queued,
    the limits it was given, its calls, retries and refusals for a limit; then the total."""
    table = Table(title=_title(document), title_justify="left", header_style="bold")
    table.add_column("backend")
    table.add_column("endpoint")
    table.add_column("state", no_wrap=True)
    table.add_column("in flight", justify="right")
    table.add_column("queued", justify="right")
    table.add_column("limits", no_wrap=True)
    for name in ("calls", "ok", "failed", "retries", "limited", "avg lat"):
        table.add_column(name, justify="right")
    for row in document.endpoints:
        table.add_row(escape(row.backend), escape(row.endpoint), *_cells(row.stats),
                      _limits(row.rpm, row.tpm), *_counts(row.stats))
    agg = document.aggregate
    table.add_section()
    table.add_row("[bold]all[/]", f"[bold]{agg.endpoints_count} endpoints[/]", *_cells(agg),
                  "", *(f"[bold]{c}[/]" for c in _counts(agg)))
    return table


def _view(document: StatsFile) -> list[RenderableType]:
    parts: list[RenderableType] = [watch_table(document)]
    lines = document.lines
    if lines is not None:
        done = lines.ok + lines.failed + lines.bad
        to_go = max(lines.total - done - lines.in_flight, 0)
        parts.append(Text.from_markup(
            f"[bold]Lines[/]: {done}/{lines.total} answered: {lines.ok} ok, {lines.failed} "
            f"failed, {lines.bad} bad; {lines.in_flight} in flight, {to_go} to go"))
    if document.pool is not None:
        parts.append(Text.from_markup(pool_line(document.pool)))
    return parts


def read_once(path: Path) -> tuple[StatsFile | None, str, str]:
    """The document, or ``None``, the kind of trouble and a message saying it."""
    try:
        return load_stats_file(path), "", ""
    except FileNotFoundError:
        return None, "missing", (f"waiting for {path} to appear (written by `ipfs-accel "
                                 "run ... --stats-file FILE`)")
    except (OSError, ValueError) as exc:
        return None, "unreadable", f"{exc}; reading it again"


def _log(path: Path, interval: float, out: Console, err: Console) -> None:
    """Not a terminal: a new table each time the file changed, notes on stderr."""
    shown: tuple[str | None, str] | None = None
    trouble = ""
    while True:
        document, kind, note = read_once(path)
        if document is None:
            if kind != trouble:
                err.print(escape(note))
            trouble = kind
        else:
            trouble = ""
            key = (document.updated_at, document.written_at)
            if key != shown or not document.running:
                for part in _view(document):
                    out.print(part)
                shown = key
            if not document.running:
                return
        time.sleep(interval)


def _age_note(document: StatsFile) -> str:
    when = _updated(document)
    if not document.running or when is None:
        return ""
    age = max(time.time() - when.timestamp(), 0.0)
    if age >= STALE_SECONDS:
        return f"[yellow]not updated for {age:.0f}s: is the run still going?[/]"
    return f"[dim]updated {age:.0f}s ago[/]"


def _live(path: Path, interval: float, out: Console) -> None:
    """A terminal: one display redrawn in place, the latest good document kept on screen
    while the file cannot be read."""
    document: StatsFile | None = None
    with Live(Text(""), console=out, auto_refresh=False, redirect_stderr=False) as live:
        while True:
            latest, _, note = read_once(path)
            document = latest or document
            parts = [] if document is None else _view(document)
            status = f"[yellow]{escape(note)}[/]" if latest is None else _age_note(latest)
            if status:
                parts.append(Text.from_markup(status))
            live.update(Group(*parts), refresh=True)
            if latest is not None and not latest.running:
                return
            time.sleep(interval)


def watch(path: Path, *, interval: float, out: Console, err: Console) -> None:
    """Follow ``path`` until the run it belongs to ended, or Ctrl-C."""
    try:
        if out.is_terminal:
            _live(path, interval, out)
        else:
            _log(path, interval, out, err)
    except KeyboardInterrupt:
        err.print("stopped watching")

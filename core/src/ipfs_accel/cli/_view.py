"""Rich tables: per-endpoint stats, and the stats file that ``run``/``demo`` write."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from .._backend import Backend
from .._stats import Stats

__all__ = ["load_stats_file", "stats_document", "stats_table", "write_stats_file"]

STATS_FORMAT = "ipfs-accel-stats/1"


def stats_document(
    backends: list[Backend], *, urls: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The final stats of these backends' endpoints and their aggregate, as plain JSON data."""
    rows = []
    parts = []
    for backend in backends:
        for eid in backend.endpoints():
            stats = backend.get_stats(eid)
            parts.append(stats)
            rows.append({
                "backend": backend.name,
                "endpoint": eid,
                "base_url": (urls or {}).get(eid) or backend.get_endpoint(eid).base_url,
                "stats": stats.to_dict(),
            })
    return {
        "format": STATS_FORMAT,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "endpoints": rows,
        "aggregate": Stats.sum(parts).to_dict(),
    }


def write_stats_file(path: Path, document: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    Path(tmp).replace(path)


def load_stats_file(path: Path) -> dict[str, Any]:
    """Read a stats file; ``ValueError`` with the reason when it is not one."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != STATS_FORMAT:
        raise ValueError(f"{path} is not an ipfs-accel stats file (written by --stats-file)")
    return data


def _fmt_s(value: float) -> str:
    return f"{value:.2f}s" if value < 100 else f"{value:.0f}s"


def stats_table(document: Mapping[str, Any], *, title: str = "Per-endpoint stats") -> Table:
    """One row per endpoint and a bold aggregate row."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("backend")
    table.add_column("endpoint")
    for name in ("calls", "ok", "failed", "retries", "retry wait", "in tok", "out tok",
                 "avg lat", "max lat"):
        table.add_column(name, justify="right")

    def cells(s: Mapping[str, Any]) -> list[str]:
        return [
            str(s["total_requests"]),
            str(s["successful_requests"]),
            str(s["failed_requests"]),
            str(s["retries"]),
            _fmt_s(s["retry_wait_seconds"]),
            str(s["input_tokens"]),
            str(s["output_tokens"]),
            _fmt_s(s["average_latency_seconds"]),
            _fmt_s(s["latency_seconds_max"]),
        ]

    for row in document["endpoints"]:
        table.add_row(row["backend"], row["endpoint"], *cells(row["stats"]))
    agg = document["aggregate"]
    table.add_section()
    table.add_row("[bold]all[/]", f"[bold]{agg['endpoints_count']} endpoints[/]",
                  *(f"[bold]{c}[/]" for c in cells(agg)))
    return table

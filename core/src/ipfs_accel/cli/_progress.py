"""A live rich progress bar over a running batch: done, failed, retries, queued, tokens/s,
and the pool's members that are paused, unhealthy or disabled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._pool import Pool
from ._members import members_text

__all__ = ["run_with_progress", "status_text"]


def status_text(counters: Any, pool: Pool) -> str:
    """The counters and the pool's members as one line of rich markup."""
    stats = pool.get_stats()
    elapsed = max(time.monotonic() - counters.started_at, 1e-6)
    failed = counters.failed + counters.bad
    moved = f", {stats.failovers} moved" if stats.failovers else ""
    return (
        f"[green]{counters.ok} ok[/] [red]{failed} failed[/] "
        f"[yellow]{stats.retries} retries[/]{moved} ({stats.wait_seconds:.1f}s waited) "
        f"{counters.in_flight} in flight {max(counters.queued, 0)} queued "
        f"[cyan]{counters.output_tokens / elapsed:,.0f} tok/s[/] {members_text(stats)}"
    )


def run_with_progress(
    coro: Coroutine[Any, Any, None],
    counters: Any,
    pool: Pool,
    console: Console,
    *,
    description: str = "calls",
) -> None:
    """Run ``coro`` on a new event loop while a progress bar follows ``counters``."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=10,
    )

    async def main() -> None:
        task = progress.add_task(description, total=counters.total, status="")
        work = asyncio.ensure_future(coro)
        try:
            while not work.done():
                progress.update(task, completed=counters.done,
                                status=status_text(counters, pool))
                await asyncio.wait({work}, timeout=0.1)
            progress.update(task, completed=counters.done, status=status_text(counters, pool))
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        work.result()

    with progress:
        asyncio.run(main())

"""A live rich progress bar over a running batch: done, failed, retries, queued, tokens/s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._backend import Backend
from .._stats import Stats

__all__ = ["run_with_progress", "status_text"]


def status_text(counters: Any, backends: list[Backend]) -> str:
    """The counters as one line of rich markup."""
    agg = Stats.sum(b.get_stats() for b in backends)
    elapsed = max(time.monotonic() - counters.started_at, 1e-6)
    failed = counters.failed + counters.bad
    return (
        f"[green]{counters.ok} ok[/] [red]{failed} failed[/] "
        f"[yellow]{agg.retries} retries[/] ({agg.retry_wait_seconds:.1f}s waited) "
        f"{counters.in_flight} in flight {max(counters.queued, 0)} queued "
        f"[cyan]{counters.output_tokens / elapsed:,.0f} tok/s[/]"
    )


def run_with_progress(
    coro: Coroutine[Any, Any, None],
    counters: Any,
    backends: list[Backend],
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
                                status=status_text(counters, backends))
                await asyncio.wait({work}, timeout=0.1)
            progress.update(task, completed=counters.done, status=status_text(counters, backends))
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        work.result()

    with progress:
        asyncio.run(main())

"""Helpers the pacing and pool tests share: run a call in a thread, wait for a condition.

Waits poll in small steps on an event (never a bare sleep) and fail, naming what never
happened, after 10 s; they assert nothing about how fast it happened.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any


def thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``target`` in a thread; the list gets its result or its exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except Exception as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (on an event, in small steps) until ``condition`` holds; fail after 10 s."""
    tick = threading.Event()
    end = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < end, f"never happened: {what}"
        tick.wait(0.002)


async def auntil(condition: Callable[[], bool], what: str) -> None:
    """:func:`until` on the running event loop."""
    end = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < end, f"never happened: {what}"
        await asyncio.sleep(0.002)

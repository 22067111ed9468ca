"""The waits the retry loop planned, as stamina's instrumentation reports them, by request ID.

The backoff check compares them with the rule (base delay, jitter within its bound, the cap)
exactly, where a wall clock could only say "about": a jitter of a few milliseconds, or its
absence, is invisible under scheduling noise, but ``wait_for`` is the number the core chose.
The core's retry loop is stamina's, and stamina hands every scheduled retry to its
``on_retry`` hooks with the error that caused it (which carries our request ID).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

__all__ = ["planned_waits"]

_lock = threading.Lock()
_watched: dict[str, list[float]] = {}


def _record(details: RetryDetails) -> None:
    request_id = getattr(details.caused_by, "request_id", None)
    if not isinstance(request_id, str):
        return
    with _lock:
        waits = _watched.get(request_id)
        if waits is not None:
            waits.append(details.wait_for)


@contextmanager
def planned_waits(request_id: str) -> Iterator[list[float]]:
    """Collect the waits planned for the call with ``request_id`` while the block runs.

    Adds a recording hook beside the hooks already set (once: it stays, and records
    nothing unless a check is watching); the application's own hooks keep working.
    """
    waits: list[float] = []
    with _lock:
        hooks = get_on_retry_hooks()
        if _record not in hooks:
            set_on_retry_hooks([*hooks, _record])
        _watched[request_id] = waits
    try:
        yield waits
    finally:
        with _lock:
            _watched.pop(request_id, None)

"""``ipfs-accel run``: a JSONL file of calls through one backend's endpoints.

Input, one call per line (blank lines are skipped, a UTF-8 BOM on line 1 is ignored)::

    {"id": "q1", "messages": [{"role": "user", "content": "Hi"}]}     chat
    {"id": "q2", "prompt": "Say hi"}               chat with one user message (or generate)
    {"id": "q3", "input": "text" | ["a", "b"]}     embed
    optional on each: "model", "params" (keyword parameters), "request_id"

Output, one line per input line, in the order the calls finish::

    {"line": 3, "id": "q3", "ok": true, "text": ..., "usage": {...}, "request_id": ...}
    {"line": 4, "id": null, "ok": false, "error": {"type", "message", "status", "request_id"}}

Each result is written, flushed and fsynced the moment its call ends, so a slow line holds
back nothing and a crash or Ctrl-C loses only the calls in flight. What is held in memory
does not grow with the file: the input is read lazily, at most ``concurrency`` calls are in
flight, and no finished call waits unwritten. Reading an earlier results file for
``--resume`` and rewriting it once a run completes (compacted, or ``--ordered``) is
:mod:`._results`' job.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Container, Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .._backend import Backend
from .._errors import CallError, IpfsAccelError
from .._types import ChatResult, EmbedResult

__all__ = [
    "BatchCounters",
    "Item",
    "count_lines",
    "parse_lines",
    "run_batch",
]

_FIELDS = ("id", "input", "messages", "model", "params", "prompt", "request_id")


class Item:
    """One input line: a call to make, or the reason the line is bad."""

    __slots__ = ("error", "id", "kwargs", "line", "method")

    def __init__(self, line: int, *, id: Any = None, method: str = "",
                 kwargs: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.line = line
        self.id = id
        self.method = method
        self.kwargs = kwargs or {}
        self.error = error


def _parse(line: int, text: str, operations: frozenset[str]) -> Item:  # noqa: PLR0911, PLR0912
    # one flat validation: each early return names a different problem with the line
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Item(line, error=f"not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(data, dict):
        return Item(line, error="a line must be a JSON object")
    ident = data.get("id")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        return Item(line, id=ident, error=f"unknown field {unknown[0]!r} "
                    f"(known: {', '.join(_FIELDS)})")
    given = [k for k in ("messages", "prompt", "input") if k in data]
    if len(given) != 1:
        return Item(line, id=ident, error="a line needs exactly one of 'messages', 'prompt', "
                    "'input'")
    params = data.get("params", {})
    if not isinstance(params, dict):
        return Item(line, id=ident, error="'params' must be an object")
    kwargs: dict[str, Any] = dict(params)
    for key in ("model", "request_id"):
        if key in data:
            if not isinstance(data[key], str):
                return Item(line, id=ident, error=f"{key!r} must be a string")
            kwargs[key] = data[key]
    what = given[0]
    value = data[what]
    if what == "messages":
        if not (isinstance(value, list) and value
                and all(isinstance(m, dict) and "role" in m for m in value)):
            return Item(line, id=ident, error="'messages' must be a non-empty list of "
                        "{'role', 'content'} objects")
        method, kwargs["messages"] = "achat", value
    elif what == "prompt":
        if not isinstance(value, str):
            return Item(line, id=ident, error="'prompt' must be a string")
        if "chat" in operations:
            method, kwargs["messages"] = "achat", [{"role": "user", "content": value}]
        else:
            method, kwargs["prompt"] = "agenerate", value
    else:
        if not (isinstance(value, str)
                or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            return Item(line, id=ident, error="'input' must be a string or a list of strings")
        method, kwargs["inputs"] = "aembed", value
    op = method[1:]
    if op not in operations:
        return Item(line, id=ident, error=f"this backend does not support {op!r} "
                    f"(it offers: {', '.join(sorted(operations))})")
    return Item(line, id=ident, method=method, kwargs=kwargs)


def _numbered(path: Path, skip: Container[int]) -> Iterator[tuple[int, str]]:
    # utf-8-sig: a BOM that an editor put before line 1 is not part of the JSON
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for number, text in enumerate(f, start=1):
            if text.strip() and number not in skip:
                yield number, text


def parse_lines(path: Path, operations: frozenset[str], *,
                skip: Container[int] = frozenset()) -> Generator[Item, None, None]:
    """The items of a JSONL file, read lazily, numbered by physical line (1-based).

    Blank lines and the line numbers in ``skip`` are left out.
    """
    for number, text in _numbered(path, skip):
        yield _parse(number, text, operations)


def count_lines(path: Path, *, skip: Container[int] = frozenset()) -> int:
    """How many items :func:`parse_lines` yields for the same arguments (one streaming pass)."""
    return sum(1 for _ in _numbered(path, skip))


class BatchCounters:
    """What the progress bar shows; updated on the event loop only."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.ok = 0
        self.failed = 0
        self.bad = 0
        self.in_flight = 0
        self.written = 0
        self.output_tokens = 0
        self.started_at = time.monotonic()

    @property
    def done(self) -> int:
        """Lines answered (ok, failed or bad)."""
        return self.ok + self.failed + self.bad

    @property
    def queued(self) -> int:
        """Lines not started yet."""
        return self.total - self.done - self.in_flight


def _ok_record(item: Item, result: Any, endpoint: str) -> dict[str, Any]:
    record: dict[str, Any] = {"line": item.line, "id": item.id, "ok": True}
    if isinstance(result, ChatResult):
        record["text"] = result.text
        record["finish_reason"] = result.finish_reason
        record["model"] = result.model
    elif isinstance(result, EmbedResult):
        record["vectors"] = result.vectors
        record["model"] = result.model
    usage = result.usage
    record["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                       "total_tokens": usage.total_tokens}
    record["request_id"] = result.request_id
    record["server_request_id"] = result.server_request_id
    record["endpoint"] = endpoint
    return record


def _error_record(item: Item, exc: BaseException | str, endpoint: str | None) -> dict[str, Any]:
    if isinstance(exc, str):
        error: dict[str, Any] = {"type": "BadLine", "message": exc, "status": None,
                                 "request_id": None}
    elif isinstance(exc, CallError):
        error = {"type": type(exc).__name__, "message": exc.message, "status": exc.status,
                 "request_id": exc.request_id, "server_request_id": exc.server_request_id,
                 "endpoint": exc.endpoint_id or endpoint, "attempts": exc.attempts}
    else:
        error = {"type": type(exc).__name__, "message": str(exc), "status": None,
                 "request_id": None, "endpoint": endpoint}
    return {"line": item.line, "id": item.id, "ok": False, "error": error}


class _Writer:
    """Writes each record the moment it is ready."""

    def __init__(self, out: IO[str], counters: BatchCounters) -> None:
        self.out = out
        self.counters = counters

    def put(self, record: dict[str, Any]) -> None:
        # one write per record: a kill leaves whole lines (a torn tail is cut on --resume)
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()
        os.fsync(self.out.fileno())
        self.counters.written += 1


async def run_batch(
    backend: Backend,
    endpoints: list[str],
    items: Iterable[Item],
    out: IO[str],
    *,
    concurrency: int,
    counters: BatchCounters,
    on_bad_line: Callable[[Item], None] = lambda item: None,
) -> None:
    """Answer every item exactly once, writing each result as its call ends.

    ``items`` is consumed lazily: an item is taken only when one of the ``concurrency``
    workers is free, so at most ``concurrency`` items are in flight and none waits unwritten.
    """
    writer = _Writer(out, counters)
    pending = iter(items)
    load = dict.fromkeys(endpoints, 0)
    turn = 0

    def pick() -> str:
        # least loaded; ties go round-robin so idle endpoints share the work
        nonlocal turn
        turn += 1
        n = len(endpoints)
        order = [endpoints[(turn + i) % n] for i in range(n)]
        return min(order, key=lambda e: load[e])

    async def worker() -> None:
        for item in pending:  # a shared iterator: each item goes to exactly one worker
            if item.error is not None:
                counters.bad += 1
                on_bad_line(item)
                writer.put(_error_record(item, f"line {item.line}: {item.error}", None))
                continue
            endpoint = pick()
            load[endpoint] += 1
            counters.in_flight += 1
            try:
                result = await getattr(backend, item.method)(endpoint_id=endpoint, **item.kwargs)
            except (IpfsAccelError, TypeError, ValueError) as exc:
                counters.failed += 1
                record = _error_record(item, exc, endpoint)
            else:
                counters.ok += 1
                counters.output_tokens += result.usage.output_tokens
                record = _ok_record(item, result, endpoint)
            finally:
                load[endpoint] -= 1
                counters.in_flight -= 1
            writer.put(record)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        await backend.aclose()

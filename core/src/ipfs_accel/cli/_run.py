"""``ipfs-accel run``: a JSONL file of calls through a pool of one backend's endpoints.

Input, one call per line (blank lines are skipped, a UTF-8 BOM on line 1 is ignored)::

    {"id": "q1", "messages": [{"role": "user", "content": "Hi"}]}     chat
    {"id": "q2", "prompt": "Say hi"}               chat with one user message (or generate)
    {"id": "q3", "input": "text" | ["a", "b"]}     embed
    optional on each: "model", "params" (keyword parameters), "request_id"

or in OpenAI's Batch line shape (:mod:`.._batch_input`), so an OpenAI batch file runs through
any backend as it is: ``custom_id`` is the line's id, ``body`` the request (its ``model``,
``messages`` / ``prompt`` / ``input``, and the rest as parameters)::

    {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

Each line decodes into a :class:`Line`, so a field of the wrong type, a misspelt field or
a missing call makes that line bad with one error naming the field; the batch goes on.

Output, one line per input line, in the order the calls finish::

    {"line": 3, "id": "q3", "ok": true, "text": ..., "usage": {...}, "request_id": ...}
    {"line": 4, "id": null, "ok": false, "error": {"type", "message", "status", "request_id"}}

Each result is written, flushed and fsynced the moment its call ends, so a slow line holds
back nothing and a crash or Ctrl-C loses only the calls in flight. What is held in memory
does not grow with the file: the input is read lazily, at most ``concurrency`` calls are in
flight, and no finished call waits unwritten. With ``--shard K/N`` only every Nth line from
line K is parsed and called (:mod:`._run_shard`). Reading an earlier results file for
``--resume`` and rewriting it once a run completes (compacted, or ``--ordered``) is
:mod:`._results`' job.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Container, Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Protocol

import msgspec
from msgspec import UNSET, UnsetType

from .._batch_input import MESSAGES, call_of, is_openai_line, to_call
from .._errors import CallError, IpfsAccelError
from .._types import ChatResult, EmbedResult
from ._members import track

if TYPE_CHECKING:
    from ._run_shard import Shard

__all__ = [
    "BatchCounters",
    "Caller",
    "Item",
    "Line",
    "count_lines",
    "parse_lines",
    "run_batch",
]

class Line(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One input line as the file states it; decoding checks every field's type.

    Exactly one of ``messages``, ``prompt``, ``input`` is set (checked after decoding, with
    each message's ``role``). Messages stay objects: whatever keys a backend takes besides
    ``role`` and ``content`` pass through untouched.
    """

    id: Any = None
    messages: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)] | UnsetType = UNSET
    prompt: str | UnsetType = UNSET
    input: str | list[str] | UnsetType = UNSET
    model: str | UnsetType = UNSET
    params: dict[str, Any] = {}
    request_id: str | UnsetType = UNSET


class _Id(msgspec.Struct):
    # a bad line's id, read leniently so its error record can still name it
    id: Any = None


_LINE = msgspec.json.Decoder(Line)
_ID = msgspec.json.Decoder(_Id)
_ANY = msgspec.json.Decoder()
_FIELDS = Line.__struct_fields__
_WANTED = {  # what a field must be, in the words a bad line's error uses
    "messages": MESSAGES,
    "prompt": "'prompt' must be a string",
    "input": "'input' must be a string or a list of strings",
    "model": "'model' must be a string",
    "params": "'params' must be an object",
    "request_id": "'request_id' must be a string",
}


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


def _invalid(exc: msgspec.ValidationError) -> str:
    # msgspec says "<what> - at `$.field[...]`": keep the field's own wording, add where
    message, _, where = str(exc).partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    field = re.split(r"[.\[]", where, maxsplit=1)[0]
    if field in _WANTED:
        return f"{_WANTED[field]} ({where}: {message[:1].lower()}{message[1:]})"
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    if unknown and not where:
        return f"unknown field {unknown[1]!r} (known: {', '.join(sorted(_FIELDS))})"
    if not where and message.startswith("Expected `object`"):
        return "a line must be a JSON object"
    return f"{where or 'line'}: {message}"


def _call(data: Line, operations: frozenset[str]) -> tuple[str, dict[str, Any]] | str:
    """The method and its keyword arguments, or what is wrong with the line."""
    given = [k for k in ("messages", "prompt", "input") if getattr(data, k) is not UNSET]
    if len(given) != 1:
        return "a line needs exactly one of 'messages', 'prompt', 'input'"
    kwargs: dict[str, Any] = dict(data.params)
    if data.model is not UNSET:
        kwargs["model"] = data.model
    if data.request_id is not UNSET:
        kwargs["request_id"] = data.request_id
    call = call_of(data.id, given[0], getattr(data, given[0]), kwargs, operations)
    if isinstance(call, str):
        return call
    _, method, kwargs = call
    return f"a{method}", kwargs


def _not_json(exc: msgspec.DecodeError) -> str:
    reason = re.sub(r" \(byte (\d+)\)$", r" at byte \1", str(exc))
    return f"not valid JSON ({reason.removeprefix('JSON is malformed: ')})"


def _openai_line(line: int, text: str, operations: frozenset[str]) -> Item | None:
    """The item of a line in OpenAI's Batch shape, or None for a line in ours."""
    try:
        data = _ANY.decode(text)
    except msgspec.DecodeError as exc:
        return Item(line, error=_not_json(exc))
    if not isinstance(data, dict) or not is_openai_line(data):
        return None
    call = to_call(data, operations)
    if isinstance(call, str):
        key = data.get("custom_id")
        return Item(line, id=key if isinstance(key, str) else None, error=call)
    key, method, kwargs = call
    return Item(line, id=key, method=f"a{method}", kwargs=kwargs)


def _parse(line: int, text: str, operations: frozenset[str]) -> Item:
    if '"custom_id"' in text:  # the cheap test first: most files are in our shape
        openai = _openai_line(line, text, operations)
        if openai is not None:
            return openai
    try:
        data = _LINE.decode(text)
    except msgspec.ValidationError as exc:
        try:  # decoding stops at the first wrong field: the rest may not even be JSON
            ident = _ID.decode(text).id
        except msgspec.ValidationError:  # not an object: no id to name
            ident = None
        except msgspec.DecodeError as not_json:
            return Item(line, error=_not_json(not_json))
        return Item(line, id=ident, error=_invalid(exc))
    except msgspec.DecodeError as exc:
        return Item(line, error=_not_json(exc))
    call = _call(data, operations)
    if isinstance(call, str):
        return Item(line, id=data.id, error=call)
    method, kwargs = call
    return Item(line, id=data.id, method=method, kwargs=kwargs)


def _numbered(path: Path, skip: Container[int],
              shard: Shard | None) -> Iterator[tuple[int, str]]:
    # utf-8-sig: a BOM that an editor put before line 1 is not part of the JSON
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        numbered: Iterator[tuple[int, str]] = enumerate(f, start=1)
        if shard is not None:  # lines k, k + n, k + 2n...: the others are read past, unparsed
            numbered = itertools.islice(numbered, shard.k - 1, None, shard.n)
        for number, text in numbered:
            if text.strip() and number not in skip:
                yield number, text


def parse_lines(path: Path, operations: frozenset[str], *, skip: Container[int] = frozenset(),
                shard: Shard | None = None) -> Generator[Item, None, None]:
    """The items of a JSONL file, read lazily, numbered by physical line (1-based).

    Blank lines and the line numbers in ``skip`` are left out; with ``shard``, so is every
    line of the other shards (never parsed).
    """
    for number, text in _numbered(path, skip, shard):
        yield _parse(number, text, operations)


def count_lines(path: Path, *, skip: Container[int] = frozenset(),
                shard: Shard | None = None) -> int:
    """How many items :func:`parse_lines` yields for the same arguments (one streaming pass)."""
    return sum(1 for _ in _numbered(path, skip, shard))


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


def _ok_record(item: Item, result: Any, endpoint: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {"line": item.line, "id": item.id, "ok": True}
    if isinstance(result, ChatResult):
        record["text"] = result.text
        record["finish_reason"] = result.finish_reason
        record["model"] = result.model
        if result.tool_calls:  # the assistant turn as OpenAI's form has it, ready to send back
            record["tool_calls"] = result.message["tool_calls"]
    elif isinstance(result, EmbedResult):
        record["vectors"] = result.vectors
        record["model"] = result.model
    usage = result.usage
    record["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                       "total_tokens": usage.total_tokens}
    if usage.reasoning_tokens:
        record["usage"]["reasoning_tokens"] = usage.reasoning_tokens
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


class Caller(Protocol):
    """What :func:`run_batch` calls: a pool's async operations (``achat``, ``agenerate``,
    ``aembed``, given an item's keyword arguments) and its closing."""

    async def aclose(self) -> None:
        """Close its connections."""


async def run_batch(
    pool: Caller,
    items: Iterable[Item],
    out: IO[str],
    *,
    concurrency: int,
    counters: BatchCounters,
    on_bad_line: Callable[[Item], None] = lambda item: None,
) -> None:
    """Answer every item exactly once through ``pool``, writing each result as its call ends.

    ``items`` is consumed lazily: an item is taken only when one of the ``concurrency``
    workers is free, so at most ``concurrency`` items are in flight and none waits unwritten.
    A result names the endpoint of the call's latest attempt (see :func:`._members.track`).
    """
    writer = _Writer(out, counters)
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # a shared iterator: each item goes to exactly one worker
            if item.error is not None:
                counters.bad += 1
                on_bad_line(item)
                writer.put(_error_record(item, f"line {item.line}: {item.error}", None))
                continue
            where = track()
            counters.in_flight += 1
            try:
                result = await getattr(pool, item.method)(**item.kwargs)
            except (IpfsAccelError, TypeError, ValueError) as exc:
                counters.failed += 1
                record = _error_record(item, exc, where[0])
            else:
                counters.ok += 1
                counters.output_tokens += result.usage.output_tokens
                record = _ok_record(item, result, where[0])
            finally:
                counters.in_flight -= 1
            writer.put(record)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        await pool.aclose()

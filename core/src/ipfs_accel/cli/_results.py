"""The results file of ``ipfs-accel run``: what it already answers, and rewriting it.

A results file holds one JSON record a line, each naming the input line it answers
(``"line": n``) and whether the call succeeded (``"ok": true``); the batch runner in
:mod:`._run` appends them in the order calls finish. This module holds everything that
reads or rewrites that file afterwards:

- :func:`read_answers` (``--resume``, ``--retry-failed``): which input lines are answered
  ok and which failed, after cutting off a last line torn by a crash (no newline);
- :func:`compact_results`: drop every result a later one for the same line supersedes,
  keeping file order;
- :func:`sort_results` (``--ordered``): the same, in input-line order, by an external merge
  sort that holds one chunk of records in memory at a time;
- :func:`finish_results`: which of the two a completed batch needs.

When a line has several results the later one wins. Every rewrite goes to a file beside the
original that is renamed over it, so a crash leaves the old file or the new one.

Limit: the merge step of :func:`sort_results` opens all its chunk files at once, one per
``chunk_records`` (20,000) records, so about 1,000 open files per 20 million results. Past
the process's open-file limit (``ulimit -n``, often 1,024) the sort fails with
:exc:`OSError` before anything is rewritten, leaving the results file as it was.
"""

from __future__ import annotations

import heapq
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import msgspec

__all__ = [
    "Answers",
    "compact_results",
    "finish_results",
    "read_answers",
    "sort_results",
]


class Answers:
    """What a results file already says: lines answered ok, lines whose latest result is an
    error, and whether some line has more than one result."""

    __slots__ = ("failed", "ok", "repeated")

    def __init__(self) -> None:
        self.ok: set[int] = set()
        self.failed: set[int] = set()
        self.repeated = False


class _Answered(msgspec.Struct):
    """What reading a results file needs of a record; the rest of it is skipped unread."""

    line: int | None = None  # true is not a line number: msgspec rejects a bool for int
    ok: Any = None  # only ``true`` means ok; any other value is an error, not a bad record


_ANSWERED = msgspec.json.Decoder(_Answered)


def _records(f: IO[bytes]) -> Iterator[tuple[int | None, bool, bytes]]:
    # (line number or None when the record has none, ok?, the raw line with its newline)
    for raw in f:
        try:
            record = _ANSWERED.decode(raw)
        except msgspec.DecodeError:  # not JSON, not an object, or a line that is no int
            yield None, False, raw
            continue
        yield record.line, record.ok is True, raw


def _cut_torn_tail(path: Path) -> None:
    # a kill mid-write leaves a last line without its newline: cut it so appending starts on
    # a clean line (that line's call runs again); read backwards, never the whole file
    with path.open("r+b") as f:
        size = end = f.seek(0, os.SEEK_END)
        keep = 0
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            newline = f.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        if keep < size:
            f.truncate(keep)


def read_answers(path: Path) -> Answers:
    """The input lines an earlier run's results file answers; the later of two results wins.

    A last line cut off by a crash (no newline) is truncated away first.
    """
    answers = Answers()
    if not path.exists():
        return answers
    _cut_torn_tail(path)
    with path.open("rb") as f:
        for line, ok, _raw in _records(f):
            if line is None:
                continue
            if line in answers.ok or line in answers.failed:
                answers.repeated = True
            (answers.ok if ok else answers.failed).add(line)
            (answers.failed if ok else answers.ok).discard(line)
    return answers


def _replace(path: Path, lines: Iterable[bytes]) -> None:
    # write beside the file and rename over it: a crash leaves the old file or the new one
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for raw in lines:
                f.write(raw if raw.endswith(b"\n") else raw + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, path.stat().st_mode & 0o7777)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def compact_results(path: Path) -> bool:
    """Drop every result a later result for the same line supersedes, keeping file order.

    Two streaming passes; returns whether the file was rewritten.
    """
    seen: set[int] = set()
    latest: dict[int, int] = {}  # only lines with several results: ordinal of the last one
    with path.open("rb") as f:
        for ordinal, (line, _ok, _raw) in enumerate(_records(f)):
            if line is not None:
                if line in seen:
                    latest[line] = ordinal
                seen.add(line)
    del seen
    if not latest:
        return False

    def kept() -> Iterator[bytes]:
        with path.open("rb") as f:
            for ordinal, (line, _ok, raw) in enumerate(_records(f)):
                if line is None or latest.get(line, ordinal) == ordinal:
                    yield raw

    _replace(path, kept())
    return True


_LAST = sys.maxsize  # the sort key of records without a line number: after all the others


def _write_run(folder: str, index: int, chunk: list[tuple[int, int, bytes]]) -> Path:
    chunk.sort()  # (line, ordinal) pairs are unique, so the raw bytes never get compared
    run = Path(folder) / f"run-{index}"
    with run.open("wb") as f:
        for line, ordinal, raw in chunk:
            f.write(b"%d %d %s" % (line, ordinal, raw if raw.endswith(b"\n") else raw + b"\n"))
    return run


def _read_run(f: IO[bytes]) -> Iterator[tuple[int, int, bytes]]:
    for row in f:
        line, ordinal, raw = row.split(b" ", 2)
        yield int(line), int(ordinal), raw


def _latest_per_line(rows: Iterable[tuple[int, int, bytes]]) -> Iterator[bytes]:
    # rows come sorted by (line, ordinal): of each line's results keep the last one written
    held: tuple[int, bytes] | None = None
    for line, _ordinal, raw in rows:
        if held is not None and (held[0] != line or line == _LAST):
            yield held[1]
        held = (line, raw)
    if held is not None:
        yield held[1]


def sort_results(path: Path, *, chunk_records: int = 20_000) -> None:
    """Rewrite a results file in input-line order, one result per line (the later wins).

    An external merge sort: chunks of at most ``chunk_records`` records are sorted in memory
    and written to temporary files beside ``path``, then merged into a file that replaces
    ``path`` in one rename. Records without a line number go last, in file order.
    """
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        runs: list[Path] = []
        chunk: list[tuple[int, int, bytes]] = []
        with path.open("rb") as f:
            for ordinal, (line, _ok, raw) in enumerate(_records(f)):
                chunk.append((_LAST if line is None else line, ordinal, raw))
                if len(chunk) >= chunk_records:
                    runs.append(_write_run(folder, len(runs), chunk))
                    chunk = []
        if chunk:
            runs.append(_write_run(folder, len(runs), chunk))
        with ExitStack() as stack:
            readers = [_read_run(stack.enter_context(run.open("rb"))) for run in runs]
            _replace(path, _latest_per_line(heapq.merge(*readers)))


def finish_results(path: Path, answers: Answers, *, ordered: bool, retried: bool) -> None:
    """After a completed batch: leave one result per line, in input order if ``ordered``.

    ``answers`` is what the file held before the batch; ``retried`` says its failed lines
    were run again, so their old results are now superseded.
    """
    if ordered:
        sort_results(path)
    elif answers.repeated or (retried and answers.failed):
        compact_results(path)

"""``run --batch``: the input's calls sent as the provider's batches, results as an online
run writes them.

Each input line is keyed ``L<line>`` at the provider (its own ``id`` / ``custom_id`` is kept
in the ledger and written back in its result), so a result finds its line whatever the
provider's order. The ledger (:mod:`._batch_ledger`) records each batch before and after it
is submitted, and each batch once all its results are written; ``--resume`` follows the
batches already submitted, sends only the lines in none of them and writes only the results
the results file does not hold yet, so a run stopped at any moment loses no line and never
sends one twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.markup import escape

from .._batch import BatchJob
from .._errors import CallError, ConfigurationError
from ._batch_ledger import Ledger, ledger_path
from ._common import CliError, describe_error
from ._options import err
from ._run import Item, _error_record, _numbered, _ok_record, _parse

if TYPE_CHECKING:
    from .._backend import Backend
    from .._batch_types import BatchCounts, BatchSubmit, VendorBatch
    from ._results import Answers
    from ._run_shard import Shard

__all__ = ["BatchRun", "open_ledger"]


def open_ledger(output: Path, backend: str, *, resume: bool, overwrite: bool) -> Ledger:
    """The run's ledger: continued with ``resume``, started afresh with ``overwrite``."""
    path = ledger_path(output)
    ledger = Ledger(path)
    if ledger.batches or ledger.intents:
        if overwrite:
            ledger = Ledger(_gone(path))
        elif not resume:
            raise CliError(f"{path} records batches already submitted for {output}",
                           hint="pass --resume to follow them (or --overwrite to start "
                           "again: it does not cancel them)")
    if ledger.run and ledger.run.get("backend") != backend:
        raise CliError(f"{output} was run with backend {ledger.run.get('backend')!r}, "
                       f"not {backend!r}")
    return ledger


def _gone(path: Path) -> Path:
    path.unlink()
    return path


class BatchRun:
    """One ``run --batch`` (or ``batch results``) on one endpoint of ``backend``."""

    def __init__(self, backend: Backend, endpoint_id: str, output: Path, ledger: Ledger,
                 answers: Answers) -> None:
        self.backend = backend
        self.endpoint_id = endpoint_id
        self.output = output
        self.ledger = ledger
        self.answers = answers
        self.ok = self.failed = self.bad = 0

    # -- submitting --------------------------------------------------------------------

    def submit(self, file: Path, *, skip: set[int], shard: Shard | None,
               model: str | None, out: IO[str]) -> int:
        """Send every line of ``file`` not in ``skip`` nor in a batch of the ledger; bad
        lines are answered at once. How many lines went."""
        ledger = self.ledger
        if not ledger.run:
            ledger.append({"run": {"backend": self.backend.name, "input": str(file),
                                   "endpoint_url": self.backend.get_endpoint(
                                       self.endpoint_id).base_url, "model": model}})
        ids: dict[str, Any] = {}
        waiting = ledger.lines_waiting()
        lines = self._lines(file, skip | waiting, shard, ids, out)
        label = f"ipfs-accel-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        asked: list[BatchSubmit] = []

        def before(step: BatchSubmit, keys: list[str]) -> None:
            asked.append(step)
            ledger.append({"submitting": step.label,
                           "items": [[int(k[1:]), ids[k]] for k in keys]})

        def after(batch: VendorBatch, keys: list[str]) -> None:
            ledger.append({"submitted": asked[-1].label, "batch": batch.id,
                           "operation": asked[-1].operation})

        try:
            job = self.backend.submit_batch(lines, self.endpoint_id, model=model, label=label,
                                            before_batch=before, on_batch=after)
        except ConfigurationError as exc:
            if "a batch needs at least one call" in str(exc):
                return 0
            raise CliError(_by_line(str(exc)), hint="nothing was sent; fix the line and "
                           "run again") from None
        except CallError as exc:
            if asked and exc.status is not None and exc.status < 500:
                # the provider answered no: that batch does not exist, its lines are free
                ledger.append({"abandoned": asked[-1].label})
                raise CliError(describe_error(exc, action="submitting a batch"), code=1,
                               hint=f"no batch was made of its lines ({asked[-1].label}): "
                               "once the cause is fixed, --resume sends them") from exc
            raise
        return sum(len(ledger.items_of(b)) for b in job.batches)

    def _lines(self, file: Path, skip: set[int], shard: Shard | None, ids: dict[str, Any],
               out: IO[str]) -> Iterator[dict[str, Any]]:
        operations = self.backend.info.operations
        for number, text in _numbered(file, skip, shard):
            item = _parse(number, text, operations)
            if item.error is not None:
                self.bad += 1
                err.print(f"[yellow]{escape(str(file))}:{number}: skipped, "
                          f"{escape(item.error)}[/]")
                self._put(out, _error_record(item, f"line {number}: {item.error}", None))
                continue
            data = json.loads(text)
            key = f"L{number}"
            if "custom_id" in data:
                ids[key], data["custom_id"] = data["custom_id"], key
            else:
                ids[key], data["id"] = data.get("id"), key
            yield data

    # -- following ---------------------------------------------------------------------

    def job(self) -> BatchJob:
        """The batches submitted and not yet written."""
        ledger = self.ledger
        pending = ledger.pending()
        return BatchJob(self.backend, self.endpoint_id,
                        [(b, ledger.batches[b][1]) for b in pending],
                        keys={b: [f"L{line}" for line, _ in ledger.items_of(b)]
                              for b in pending})

    def follow(self, out: IO[str], *, quiet: bool, every: float = 2.0) -> None:
        """Wait for the pending batches (a progress bar of the provider's counts), then
        write each one's results and mark it written."""
        job = self.job()
        if not job.batches:
            return
        if quiet:
            job.wait(every=every)
        else:
            _wait_with_progress(job, every)
        for part in job.split():
            self._write(part, out)

    def _write(self, part: BatchJob, out: IO[str]) -> None:
        [batch_id] = part.batches
        items = {f"L{line}": (line, ident) for line, ident in self.ledger.items_of(batch_id)}
        for key, outcome in part.results():
            line, ident = items.get(key, (None, None))
            if line is None or line in self.answers.ok:
                continue  # not ours, or its result is in the file already
            if line in self.answers.failed:  # written before a kill, or retried: this one
                self.answers.repeated = True  # wins, and the file is compacted at the end
            item = Item(line, id=ident)
            if isinstance(outcome, Exception):
                self.failed += 1
                self._put(out, _error_record(item, outcome, self.endpoint_id))
            else:
                self.ok += 1
                self._put(out, _ok_record(item, outcome, self.endpoint_id))
        out.flush()
        os.fsync(out.fileno())
        self.ledger.append({"written": batch_id})

    @staticmethod
    def _put(out: IO[str], record: dict[str, Any]) -> None:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


def _by_line(message: str) -> str:
    # "batch call 3 ('L12'): ..." -> "line 12: ..."
    _, sep, rest = message.partition("'L")
    if not sep:
        return message
    number, _, tail = rest.partition("')")
    return f"line {number}{tail}" if number.isdigit() else message


def _wait_with_progress(job: BatchJob, every: float) -> None:
    from rich.progress import (  # noqa: PLC0415 - only when a bar is shown
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(TextColumn("[bold]batches"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err)
    with progress:
        task = progress.add_task("batches", total=None, status="submitted")

        def told(state: str, counts: BatchCounts) -> None:
            progress.update(task, total=counts.total or None, completed=counts.done,
                            status=_status(state, counts))

        with contextlib.suppress(KeyboardInterrupt):
            job.wait(told, every=every)
            return
    raise KeyboardInterrupt


def _status(state: str, counts: BatchCounts) -> str:
    return (f"{state}: [green]{counts.completed} done[/] [red]{counts.failed} failed[/] "
            f"{counts.expired} expired {counts.cancelled} cancelled")

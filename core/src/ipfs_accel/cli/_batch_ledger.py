"""The ledger of ``run --batch``: which input lines went in which provider batch.

It lives beside the results file (``OUTPUT.batches.jsonl``), one JSON record a line, each
appended, flushed and fsynced before the step it records goes on, so that whatever stops
the run (a crash, Ctrl-C, a reboot), ``--resume`` knows:

- ``{"run": {...}}``: the backend, its URL and model, the input file;
- ``{"submitting": LABEL, "items": [[line, id], ...]}``: written just before those lines
  are sent as a batch (labelled so at the provider);
- ``{"submitted": LABEL, "batch": ID, "operation": OP}``: the provider created it;
- ``{"written": ID}``: every line of that batch has its result in the results file;
- ``{"abandoned": LABEL}``: a batch in doubt whose lines ``--resubmit`` sends again, or
  one the provider refused (an error answer, not a 5xx: it was not created).

Lines in a batch submitted and not yet written are waited for, never sent again. Lines
``submitting`` with no ``submitted`` after it are in doubt: the run stopped while the
provider was being asked, so it may have the batch; ``--resume`` does not send them again
unless told to (``--resubmit``), after checking the provider's batch list for the label.
A torn last record (the run killed mid-write) is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["Ledger", "ledger_path"]


def ledger_path(output: Path) -> Path:
    """The ledger of the results file ``output``."""
    return output.with_name(output.name + ".batches.jsonl")


class Ledger:
    """What the ledger file says, and appending to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run: dict[str, Any] = {}
        self.intents: dict[str, list[list[Any]]] = {}  # label -> [[line, id], ...]
        self.batches: dict[str, tuple[str, str]] = {}  # batch ID -> (label, operation)
        self.written: set[str] = set()
        self._file: IO[str] | None = None
        if path.exists():
            self._read()

    def _read(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            for raw in f:
                if not raw.endswith("\n"):
                    break  # torn by a kill mid-write: never acted on
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                self._apply(record)

    def _apply(self, record: dict[str, Any]) -> None:
        if "run" in record:
            self.run = record["run"]
        elif "submitting" in record:
            self.intents[record["submitting"]] = record["items"]
        elif "submitted" in record:
            self.batches[record["batch"]] = (record["submitted"], record["operation"])
        elif "written" in record:
            self.written.add(record["written"])
        elif "abandoned" in record:  # in doubt, and sent again (--resubmit)
            self.intents.pop(record["abandoned"], None)

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record``, durably, before the caller goes on; what the ledger says
        includes it from then on."""
        if self._file is None:
            self._cut_torn_tail()
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._apply(record)

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- what it says ------------------------------------------------------------------

    def items_of(self, batch_id: str) -> list[list[Any]]:
        """The ``[line, id]`` pairs a batch was made of."""
        return self.intents[self.batches[batch_id][0]]

    def pending(self) -> list[str]:
        """Batches submitted whose results are not all in the results file yet."""
        return [b for b in self.batches if b not in self.written]

    def in_doubt(self) -> list[str]:
        """Labels of batches asked for with no answer recorded: the provider may have them."""
        submitted = {label for label, _ in self.batches.values()}
        return [label for label in self.intents if label not in submitted]

    def lines_waiting(self) -> set[int]:
        """Lines that are in a batch not yet written (or in doubt): not to be sent again."""
        out: set[int] = set()
        for batch_id in self.pending():
            out.update(line for line, _ in self.items_of(batch_id))
        for label in self.in_doubt():
            out.update(line for line, _ in self.intents[label])
        return out

"""``ipfs-accel run --shard K/N``: one worker's share of a JSONL batch, and its results file.

Shard K of N (1-based) takes the input lines whose number ``line`` (1-based, as the result
records carry it) satisfies ``(line - 1) % N == K - 1``: line K, K + N, K + 2N... The N
shards together take every line exactly once, whatever the file holds. Lines of other shards
are counted, never parsed (see :func:`._run.parse_lines`).

Each shard writes its own results file: ``-o`` as given (each worker passes its own), or by
default ``FILE.shard-K-of-N.results.jsonl`` beside the input. The results keep their format,
one record per answered line; the shard a file was written for is kept beside it in a small
JSON file, ``OUTPUT.shard`` (``{"format": "ipfs-accel-shard/1", "shard": "3/8"}``), so that
``--resume`` refuses to continue it with another shard or without one (a file written without
``--shard`` has none). Concatenating the N results files gives one result per input line.

``--shard 1/1`` selects every line, as no ``--shard`` does: it writes no record, and the two
may resume each other's files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import typer

from ._common import CliError

__all__ = ["Shard", "check_resume", "default_output", "parse_shard", "record_shard"]

FORMAT = "ipfs-accel-shard/1"
_SPEC = re.compile(r"([0-9]+)/([0-9]+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` of ``n`` (1-based): input lines k, k + n, k + 2n..."""

    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"

    def takes(self, line: int) -> bool:
        """Whether this shard answers input line ``line`` (1-based)."""
        return (line - 1) % self.n == self.k - 1

    @property
    def whole(self) -> bool:
        """One shard of one: every line, the same as no ``--shard``."""
        return self.n == 1


def parse_shard(text: str) -> Shard:
    """``K/N`` as the option takes it; a bad value is a usage error that names the problem."""
    spec = text.strip()
    found = _SPEC.fullmatch(spec)
    if found is None:
        raise typer.BadParameter(
            f"{text!r} is not K/N: give this worker's shard K and the number of shards N as "
            "whole numbers, e.g. 3/8 (the third of eight)")
    k, n = int(found[1]), int(found[2])
    if n < 1:
        raise typer.BadParameter(f"{text!r}: the number of shards N must be at least 1")
    if not 1 <= k <= n:
        within = "it must be 1" if n == 1 else f"it must be 1 to {n}"
        raise typer.BadParameter(f"{text!r}: K counts from 1 and with {n} shard"
                                 f"{'s' if n > 1 else ''} {within}")
    return Shard(k, n)


def default_output(file: Path, shard: Shard | None) -> Path:
    """``FILE.results.jsonl``, or ``FILE.shard-K-of-N.results.jsonl`` for a shard."""
    stem = file.name.removesuffix(".jsonl")
    if shard is not None:
        stem += f".shard-{shard.k}-of-{shard.n}"
    return file.with_name(stem + ".results.jsonl")


def sidecar(output: Path) -> Path:
    """Where the shard a results file was written for is kept: ``OUTPUT.shard``."""
    return output.with_name(output.name + ".shard")


def _recorded(output: Path) -> Shard | None:
    # the shard OUTPUT was written for; None when written without --shard (no record)
    path = sidecar(output)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        try:
            return parse_shard(str(data.get("shard")))
        except typer.BadParameter:
            pass
    raise CliError(f"{path} does not say which shard {output} was written for",
                   hint=f'it should hold {{"format": "{FORMAT}", "shard": "K/N"}}')


def _same(one: Shard | None, other: Shard | None) -> bool:
    # 1/1 and no --shard select the same lines
    return (None if one is None or one.whole else one) == (
        None if other is None or other.whole else other)


def check_resume(output: Path, shard: Shard | None, answered: set[int]) -> None:
    """Refuse to resume ``output`` with a shard other than the one it was written for.

    ``answered`` (the lines it answers) must all be lines of ``shard``: a results file moved
    without its record, or records appended by hand, are refused rather than mixed.
    """
    written = _recorded(output)
    if not _same(written, shard):
        how = f"with --shard {written}" if written is not None else "without --shard"
        again = f"resume it with --shard {written}" if written is not None else (
            "resume it without --shard")
        other = f" or give shard {shard} its own -o" if shard is not None else ""
        raise CliError(f"output {output} was written {how}, not "
                       f"{f'--shard {shard}' if shard is not None else 'for every line'}",
                       hint=again + other)
    if shard is not None and not shard.whole:
        stray = min((line for line in answered if not shard.takes(line)), default=None)
        if stray is not None:
            raise CliError(f"output {output} answers line {stray}, which is not in shard "
                           f"{shard}", hint="give each shard its own -o")


def record_shard(output: Path, shard: Shard | None) -> None:
    """Record beside a results file started afresh which shard it is for (or remove an old
    record when it is for every line). Written to a temporary file renamed over the record."""
    path = sidecar(output)
    if shard is None or shard.whole:
        path.unlink(missing_ok=True)
        return
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps({"format": FORMAT, "shard": str(shard)}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise

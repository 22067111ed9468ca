"""The pool ``run`` sends its calls through: its keys, its members, who answered each call.

A run's members are every key on every URL (``-k A -k B -u X -u Y``: four members, A and B
on X and on Y): a key is an account's budget, a URL a server, and a call may go to any
server with any key. Keys come from ``-k/--key`` and ``--keys-file``; they are never
printed, so a member is named by its URL's and key's positions (``openai-2-k1``: the second
URL, the first key), not by its key.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._pool import Pool, Run
from ._common import CliError

if TYPE_CHECKING:
    from .._backend import Backend
    from .._pool_pick import Member
    from .._pool_stats import PoolStats

__all__ = ["RunPool", "members_text", "read_keys", "track"]

# The worker's note of where its current call's latest attempt ran: set per task, so each
# worker reads its own call's member, whatever the others are doing.
_LAST: contextvars.ContextVar[list[str | None]] = contextvars.ContextVar("ipfs_accel_run_last")


def read_keys(given: Sequence[str], keys_file: Path | None) -> list[str]:
    """The keys of ``-k`` then those of ``keys_file`` (one a line; blank lines and lines
    starting with ``#`` skipped; each stripped), a key given twice kept once.

    Errors name the option or the file, never a key.
    """
    keys = [key.strip() for key in given]
    if any(not key for key in keys):
        raise CliError("-k/--key was given an empty key")
    if keys_file is not None:
        try:
            text = keys_file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise CliError(f"keys file {keys_file} not found") from None
        except (OSError, UnicodeError) as exc:
            # the exception's own message may quote the file's bytes: name only its kind
            raise CliError(f"keys file {keys_file} could not be read "
                           f"({type(exc).__name__})") from None
        found = [line.strip() for line in text.splitlines()]
        found = [key for key in found if key and not key.startswith("#")]
        if not found:
            raise CliError(f"keys file {keys_file} holds no key",
                           hint="one key a line; blank lines and lines starting with # "
                                "are skipped")
        keys += found
    return list(dict.fromkeys(keys))


def track() -> list[str | None]:
    """A note, for the calling task, that :class:`RunPool` fills with the endpoint of its
    call's latest attempt (``None`` until one is made)."""
    note: list[str | None] = [None]
    _LAST.set(note)
    return note


class RunPool(Pool):
    """The pool of one backend's endpoints that ``run`` calls, which also notes where each
    call's latest attempt ran (see :func:`track`): the member whose answer, or error, the
    call ended with, for the result line's ``endpoint``."""

    def __init__(self, backend: Backend, endpoint_ids: Sequence[str], *, strategy: str,
                 **options: Any) -> None:
        super().__init__([(backend, eid) for eid in endpoint_ids], strategy=strategy,
                         **options)
        self.backend = backend

    def attempting(self, run: Run, member: Member) -> None:
        """Count the attempt, and note its member for the task making the call."""
        super().attempting(run, member)
        note = _LAST.get(None)
        if note is not None:
            note[0] = member.endpoint_id

    async def aclose(self) -> None:
        """Close the backend's connections."""
        await self.backend.aclose()


def members_text(stats: PoolStats) -> str:
    """The members' states as rich markup: how many, and which are not ready."""
    total = len(stats.members)
    if stats.ready == total:
        return f"{total} member{'s' if total != 1 else ''} ready"
    parts = [f"{stats.ready}/{total} members ready"]
    if stats.paused:
        parts.append(f"[yellow]{stats.paused} paused[/]")
    if stats.unhealthy:
        parts.append(f"[red]{stats.unhealthy} unhealthy[/]")
    if stats.disabled:
        parts.append(f"[red]{stats.disabled} disabled[/]")
    return ", ".join(parts)

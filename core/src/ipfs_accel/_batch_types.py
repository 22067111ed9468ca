"""What the core and a plugin say to each other about a provider's batch API.

The core owns a batch job's lifecycle (it splits the calls into the provider's batches,
submits, polls, downloads, cancels, through the endpoint's key, queue, retries and stats);
a plugin whose API has batches translates, through two optional hooks:

- ``batch_exchange(step, endpoint)``: the HTTP exchange of one step, :class:`BatchSubmit`,
  :class:`BatchPoll`, :class:`BatchCancel` or :class:`BatchFetch`. The first three parse
  their answer into an :class:`~ipfs_accel.InvokeResult` whose ``data`` is a
  :class:`VendorBatch` (a chain of exchanges may lead there: upload a file, then create the
  batch); :class:`BatchFetch`'s answer is JSONL, read line by line by the core.
- ``batch_result(data, operation)``: one decoded result line (or one inline result a
  :class:`VendorBatch` carries) as a :class:`BatchOutcome`.

and declares its limits in :attr:`BackendInfo.batch <ipfs_accel.BackendInfo>` as
:class:`BatchLimits`. Each call's request line comes from ``batch_exchange`` too: the
:class:`BatchLine` step, whose answer is the JSON of the line (never sent by itself).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from ._types import Call, ChatResult, EmbedResult, Failure

__all__ = [
    "BATCH_OPERATION",
    "BATCH_STATES",
    "TERMINAL_STATES",
    "BatchCancel",
    "BatchCounts",
    "BatchFetch",
    "BatchLimits",
    "BatchLine",
    "BatchOutcome",
    "BatchPoll",
    "BatchSubmit",
    "LinesBody",
    "VendorBatch",
    "streamed_body",
]

BatchState = Literal["validating", "in_progress", "finalizing", "completed", "failed",
                     "expired", "cancelling", "cancelled"]
BATCH_STATES: tuple[str, ...] = ("validating", "in_progress", "finalizing", "completed",
                                 "failed", "expired", "cancelling", "cancelled")
TERMINAL_STATES = frozenset(("completed", "failed", "expired", "cancelled"))
BATCH_OPERATION = "batch"  # the operation of a batch step's call (its step in params["step"])


class BatchLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one batch of the provider's may hold: ``max_requests`` lines and
    ``max_bytes`` of request lines (as the core encodes them, one per line), at most
    ``max_inputs`` texts across its embedding requests (``None``: no such limit), and which
    ``operations`` may be batched (``chat``, ``generate``, ``embed``)."""

    max_requests: int
    max_bytes: int
    operations: frozenset[str] = frozenset({"chat"})
    max_inputs: int | None = None


class BatchCounts(msgspec.Struct, kw_only=True):
    """How many of a batch's items the provider counts in each state (``completed``: an
    answer came; ``failed``: an error did; the others never ran)."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0

    @property
    def done(self) -> int:
        """Items with an outcome of any kind."""
        return self.completed + self.failed + self.expired + self.cancelled

    def plus(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(total=self.total + other.total,
                           completed=self.completed + other.completed,
                           failed=self.failed + other.failed,
                           expired=self.expired + other.expired,
                           cancelled=self.cancelled + other.cancelled)


class VendorBatch(msgspec.Struct, kw_only=True):
    """One batch as the provider describes it.

    ``state`` is one of :data:`BATCH_STATES` (``native_state``: the provider's word);
    ``outputs`` names where the results are, once there are any (file IDs, URLs: each one
    a :class:`BatchFetch`); ``inline``: results the description itself carries (decoded
    JSON, each handed to ``batch_result``), ``None`` when it carries none; ``error``: why
    the provider failed the whole batch.
    """

    id: str
    state: BatchState
    native_state: str = ""
    counts: BatchCounts = msgspec.field(default_factory=BatchCounts)
    outputs: tuple[str, ...] = ()
    inline: list[Any] | None = None
    error: str | None = None


class BatchOutcome(msgspec.Struct, kw_only=True):
    """One item's outcome: ``key`` (the call's ``custom_id``), and its ``result``, or the
    ``failure`` the provider reported for it (classified by the plugin's
    ``classify_error`` as an online call's), or ``state`` ``"expired"`` / ``"cancelled"``
    when it never ran (``message`` says so in the provider's words)."""

    key: str
    result: ChatResult | EmbedResult | None = None
    failure: Failure | None = None
    state: Literal["completed", "failed", "expired", "cancelled"] = "completed"
    message: str = ""


class LinesBody(msgspec.Struct, frozen=True, kw_only=True):
    """A request body the core streams from a file of request lines (one JSON value per
    line), so a batch of any size is never held in memory.

    Plain: ``prefix``, the lines joined by ``separator``, ``suffix`` (a JSON array of them:
    ``prefix=b'{"requests":['``, ``separator=b","``, ``suffix=b"]}"``). With ``multipart``
    (the form's other fields) the body is ``multipart/form-data``: those fields, then the
    lines as the file ``field`` named ``filename`` (JSONL, each line ending in a newline).
    ``media_type``: a plain body's Content-Type (a JSON document's by default; an upload of
    the lines as they are, ``application/jsonl`` or ``application/octet-stream``).
    """

    path: Path
    prefix: bytes = b""
    separator: bytes = b"\n"
    suffix: bytes = b""
    multipart: dict[str, str] | None = None
    field: str = "file"
    filename: str = "batch.jsonl"
    media_type: str = "application/json"

    def chunks(self, boundary: str = "") -> Iterator[bytes]:
        """The body, a line at a time (``boundary``: the multipart form's)."""
        head, tail = self._frame(boundary)
        yield head
        with self.path.open("rb") as f:
            first = True
            for raw in f:
                line = raw.rstrip(b"\n")
                if not line:
                    continue
                if self.multipart is not None:
                    yield line + b"\n"
                else:
                    yield line if first else self.separator + line
                first = False
        yield tail

    def length(self, boundary: str = "") -> int:
        """The body's size in bytes (``Content-Length``)."""
        head, tail = self._frame(boundary)
        size = lines = 0
        with self.path.open("rb") as f:
            for raw in f:
                line = raw.rstrip(b"\n")
                if line:
                    size += len(line)
                    lines += 1
        if self.multipart is not None:
            return len(head) + size + lines + len(tail)
        return len(head) + size + max(0, lines - 1) * len(self.separator) + len(tail)

    def _frame(self, boundary: str) -> tuple[bytes, bytes]:
        if self.multipart is None:
            return self.prefix, self.suffix
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                 f"{value}\r\n" for name, value in self.multipart.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{self.field}"; '
                     f'filename="{self.filename}"\r\nContent-Type: application/jsonl\r\n\r\n')
        return "".join(parts).encode(), f"\r\n--{boundary}--\r\n".encode()

    def content_type(self, boundary: str = "") -> str:
        return (f"multipart/form-data; boundary={boundary}" if self.multipart is not None
                else self.media_type)


def streamed_body(body: LinesBody, headers: dict[str, str],
                  sync: bool) -> Iterator[bytes] | AsyncIterator[bytes]:
    """The content of a request with ``body`` (its type and length put in ``headers``),
    as the sync or the async client takes it; each attempt reads the file again."""
    boundary = "ipfs-accel-" + os.urandom(12).hex() if body.multipart is not None else ""
    headers["content-type"] = body.content_type(boundary)
    headers["content-length"] = str(body.length(boundary))
    if sync:
        return body.chunks(boundary)

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in body.chunks(boundary):
            yield chunk

    return chunks()


class BatchLine(msgspec.Struct, frozen=True, kw_only=True):
    """Step: the request line of one call in the provider's batch format (the exchange's
    ``json`` is the line; nothing is sent). ``key`` is its ``custom_id``."""

    key: str
    call: Call


class BatchSubmit(msgspec.Struct, frozen=True, kw_only=True):
    """Step: create one batch of the request lines in the file ``lines`` (``count`` of
    them, all ``operation`` calls for ``model``). ``label`` names the job and the part
    (for the provider's metadata or display name)."""

    lines: Path
    count: int
    operation: str
    model: str | None
    label: str


class BatchPoll(msgspec.Struct, frozen=True, kw_only=True):
    """Step: describe the batch ``batch_id`` now."""

    batch_id: str


class BatchCancel(msgspec.Struct, frozen=True, kw_only=True):
    """Step: cancel the batch ``batch_id``; the answer describes it."""

    batch_id: str


class BatchFetch(msgspec.Struct, frozen=True, kw_only=True):
    """Step: download ``output`` (one of :attr:`VendorBatch.outputs`) of ``batch``: a GET
    whose answer is JSONL, each line one result for ``batch_result``."""

    batch: VendorBatch
    output: str


BatchStep = BatchLine | BatchSubmit | BatchPoll | BatchCancel | BatchFetch

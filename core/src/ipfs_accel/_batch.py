"""Provider batch jobs: the same calls, sent as the provider's asynchronous batches.

:meth:`Backend.submit_batch` reads the calls once (any iterable: memory does not grow with
their number), checks each as an online call is checked, writes its request line (the
plugin's ``batch_exchange(BatchLine)``) to a temporary file per batch, splitting at the
provider's limits (``BackendInfo.batch``: requests and bytes per batch) and by operation
and model, and only then submits the batches, one by one: a bad call is refused before
anything is sent. Every request (upload, create, poll, cancel, download) is a call of the
endpoint: its key, queue, retries (with Retry-After), stats and observers.

A :class:`BatchJob` is ours: it may span several of the provider's batches, which its ID
names (``ipfsb1.`` and their IDs and operations, base64url): ``backend.get_batch(job.id)``
follows them again after a restart, from any process. Polling (:meth:`BatchJob.wait`)
starts at :data:`POLL_FIRST` seconds between polls and grows by :data:`POLL_FACTOR` per
poll that brings no news, up to :data:`POLL_MAX` (news starts it over); a poll refused
for a rate limit is retried by the endpoint as any call is, after Retry-After, and a
retryable failure of the poll itself waits and polls again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from ._batch_fetch import fetch_lines, step_call
from ._batch_types import (
    TERMINAL_STATES,
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchOutcome,
    BatchPoll,
    VendorBatch,
)
from ._errors import (
    BatchCancelledError,
    BatchExpiredError,
    BatchFailedError,
    BatchItemError,
    BatchMissingError,
    CallError,
    ResponseError,
)
from ._types import Call, ChatResult, EmbedResult, InvokeResult

if TYPE_CHECKING:
    from ._backend import Backend
    from ._endpoint import Endpoint

__all__ = ["JOB_PREFIX", "POLL_FACTOR", "POLL_FIRST", "POLL_MAX", "BatchJob", "run_step"]

log = logging.getLogger("ipfs_accel")
POLL_FIRST = 2.0
POLL_FACTOR = 1.5
POLL_MAX = 60.0
JOB_PREFIX = "ipfsb1."
Outcome = ChatResult | EmbedResult | CallError
Progress = Callable[[str, BatchCounts], None]


class BatchJob:
    """A batch job: the provider's batches its calls went in, followed from here.

    ``id`` names the job (give it to ``backend.get_batch`` to follow it again);
    ``batches`` the provider's batch IDs; ``counts`` the provider's counts at the last
    poll; :meth:`status` polls; :meth:`wait` polls until every batch has ended;
    :meth:`results` yields ``(key, result or error)`` for every call; :meth:`cancel`.
    """

    def __init__(self, backend: Backend, endpoint_id: str, batches: list[tuple[str, str]],
                 *, keys: dict[str, list[str]] | None = None) -> None:
        self.backend = backend
        self.endpoint_id = endpoint_id
        self._parts = batches  # (provider's batch ID, operation)
        self._keys = keys  # per batch, when this process submitted it
        self._described: dict[str, VendorBatch] = {}

    def __repr__(self) -> str:
        return f"<BatchJob {self.id} {self.backend.name}/{self.endpoint_id} {self.state}>"

    @property
    def id(self) -> str:
        raw = json.dumps(self._parts, separators=(",", ":")).encode()
        return JOB_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @property
    def batches(self) -> list[str]:
        return [batch_id for batch_id, _ in self._parts]

    @property
    def counts(self) -> BatchCounts:
        total = BatchCounts()
        for described in self._described.values():
            total = total.plus(described.counts)
        return total

    @property
    def state(self) -> str:
        """The job's state at the last poll: one of ``ipfs_accel.BATCH_STATES``; every
        batch ended: ``completed`` (whatever each item's outcome), unless all of them were
        cancelled, expired or failed whole; otherwise the least advanced batch's (a batch
        not polled yet, as in a job just taken from ``get_batch``, counts as
        ``validating``: call :meth:`status` to know)."""
        states = [self._described[b].state if b in self._described else "validating"
                  for b in self.batches]
        if all(s in TERMINAL_STATES for s in states):
            return states[0] if len(set(states)) == 1 else "completed"
        order = ("validating", "in_progress", "finalizing", "cancelling")
        return min((s for s in states if s not in TERMINAL_STATES), key=order.index)

    @property
    def done(self) -> bool:
        return all(b in self._described and self._described[b].state in TERMINAL_STATES
                   for b in self.batches)

    def split(self) -> list[BatchJob]:
        """One job per provider batch, each knowing what this one knows of it."""
        out = []
        for batch_id, operation in self._parts:
            keys = None if self._keys is None else {batch_id: self._keys.get(batch_id, [])}
            part = BatchJob(self.backend, self.endpoint_id, [(batch_id, operation)], keys=keys)
            if batch_id in self._described:
                part._described[batch_id] = self._described[batch_id]
            out.append(part)
        return out

    def status(self) -> str:
        """Poll every batch that has not ended; the job's :attr:`state`."""
        for batch_id, _ in self._parts:
            known = self._described.get(batch_id)
            if known is None or known.state not in TERMINAL_STATES:
                self._described[batch_id] = self._step(BatchPoll(batch_id=batch_id))
        return self.state

    def wait(self, progress: Progress | None = None, *, every: float = POLL_FIRST,
             timeout: float | None = None) -> str:
        """Poll until every batch has ended (see the module's schedule); ``progress(state,
        counts)`` after each poll. ``TimeoutError`` (the builtin) when ``timeout`` passes
        first. Returns the job's state."""
        until = None if timeout is None else time.monotonic() + timeout
        wait, last = every, None
        while True:
            seen = self._poll_once()
            if progress is not None:
                progress(self.state, self.counts)
            if self.done:
                return self.state
            wait, last = _next_wait(wait, every, last, seen)
            if until is not None and time.monotonic() + wait > until:
                raise TimeoutError(f"batch job {self.id} has not ended within {timeout}s")
            time.sleep(wait)

    async def await_batch(self, progress: Progress | None = None, *,
                          every: float = POLL_FIRST) -> str:
        """:meth:`wait` on the running event loop (each poll in a worker thread; cancel it,
        or bound it with ``asyncio.timeout``, to stop waiting: the batches go on)."""
        wait, last = every, None
        while True:
            seen = await asyncio.to_thread(self._poll_once)
            if progress is not None:
                progress(self.state, self.counts)
            if self.done:
                return self.state
            wait, last = _next_wait(wait, every, last, seen)
            await asyncio.sleep(wait)

    def _poll_once(self) -> Any:
        try:
            self.status()
        except CallError as exc:
            if not exc.retryable:
                raise
            log.warning("polling batch job %s failed (%s); polling again", self.id,
                        type(exc).__name__)
        return msgspec.structs.astuple(self.counts), self.state

    def cancel(self) -> str:
        """Ask the provider to cancel every batch that has not ended; the job's state.
        Items that already ran keep their results."""
        for batch_id, _ in self._parts:
            known = self._described.get(batch_id)
            if known is None or known.state not in TERMINAL_STATES:
                self._described[batch_id] = self._step(BatchCancel(batch_id=batch_id))
        return self.state

    def results(self) -> Iterator[tuple[str, Outcome]]:
        """``(key, result)`` for each call that answered, ``(key, error)`` for the others
        (classified as online calls' errors; :class:`BatchExpiredError`,
        :class:`BatchCancelledError`, :class:`BatchFailedError`, and for a call the
        provider returned nothing for, :class:`BatchMissingError`, when this process
        submitted the job and so knows its keys). In the provider's order; polls first if
        a batch's end is not known yet, and raises ``ValueError`` if one has not ended."""
        if not self.done:
            self.status()
        unfinished = [b for b in self.batches if self._described[b].state not in TERMINAL_STATES]
        if unfinished:
            raise ValueError(f"batch job {self.id} has not ended ({', '.join(unfinished)} "
                             f"still {self._described[unfinished[0]].state}): wait() first")
        for batch_id, operation in self._parts:
            yield from self._results_of(self._described[batch_id], operation)
            self._endpoint().batches_counted.add(batch_id)

    def _results_of(self, batch: VendorBatch, operation: str) -> Iterator[tuple[str, Outcome]]:
        seen: set[str] = set()
        endpoint = self._endpoint()
        count = batch.id not in endpoint.batches_counted
        lines: Iterable[Any] = batch.inline or ()
        keys = self._keys.get(batch.id) if self._keys is not None else None
        # Known keys are struck off as they answer (the set holds the submitted strings, not
        # one more string a line); a key not pending was given already, or is none of ours.
        pending = set(keys) if keys is not None else None
        for data in _chain(lines, batch, self, endpoint):
            outcome = self._read(data, operation)
            if outcome is None:
                continue
            if pending is not None:
                if outcome.key not in pending:
                    continue
                pending.remove(outcome.key)
            elif outcome.key in seen:
                continue
            else:
                seen.add(outcome.key)
            yield outcome.key, self._outcome(outcome, operation, endpoint, count)
        for key in keys or ():
            if pending is not None and key in pending:
                yield key, self._missing(batch, key)

    def _read(self, data: Any, operation: str) -> BatchOutcome | None:
        try:
            return self.backend._hooks.batch_result(data, operation)
        except Exception as exc:  # one unreadable line loses that line, not the job
            log.warning("batch job %s: a result line could not be read (%s: %s); its call "
                        "counts as missing", self.id, type(exc).__name__,
                        self._endpoint().config.scrub(str(exc)))
            return None

    def _outcome(self, outcome: BatchOutcome, operation: str, endpoint: Endpoint,
                 count: bool) -> Outcome:
        key = outcome.key
        if outcome.result is not None:
            result = outcome.result
            result.request_id = key
            if count:
                endpoint.batch_used(result.usage)
            return result
        config = endpoint.config
        if outcome.failure is not None:
            error = self.backend._engine.x.error(
                config, Call(operation=operation, request_id=key), outcome.failure)
            error.attempts = 1  # the provider ran it once; an item that never ran has none
            return error
        cls = BatchExpiredError if outcome.state == "expired" else BatchCancelledError
        return self._item_error(cls, outcome.message or f"the batch item was {outcome.state}",
                                key)

    def _missing(self, batch: VendorBatch, key: str) -> BatchItemError:
        if batch.state == "failed":
            return self._item_error(BatchFailedError, batch.error or "the batch failed", key)
        if batch.state in ("expired", "cancelled"):
            cls = BatchExpiredError if batch.state == "expired" else BatchCancelledError
            return self._item_error(cls, f"the batch {batch.state} before this item ran", key)
        return self._item_error(BatchMissingError, f"batch {batch.id} ended without a result "
                                "for this item", key)

    def _item_error(self, cls: type[BatchItemError], message: str, key: str) -> BatchItemError:
        config = self._endpoint().config
        err = cls(config.scrub(message), backend=self.backend.name,
                  endpoint_id=self.endpoint_id, request_id=key)
        err.retryable = True  # never ran: it may be sent again
        return err

    def _endpoint(self) -> Endpoint:
        return self.backend._endpoint(self.endpoint_id)

    def _step(self, step: Any) -> VendorBatch:
        return run_step(self.backend, self._endpoint(), step)


def _chain(inline: Iterable[Any], batch: VendorBatch, job: BatchJob,
           endpoint: Endpoint) -> Iterator[Any]:
    yield from inline
    for output in batch.outputs:
        yield from fetch_lines(job.backend._engine, endpoint,
                               BatchFetch(batch=batch, output=output))


def _next_wait(wait: float, every: float, last: Any, seen: Any) -> tuple[float, Any]:
    """The next poll's wait: from ``every`` again when the poll brought news, else longer."""
    if last is None or seen != last:
        return every, seen
    return min(wait * POLL_FACTOR, max(POLL_MAX, every)), seen


def run_step(backend: Backend, endpoint: Endpoint, step: Any) -> VendorBatch:
    """One lifecycle step through the endpoint; the provider's description of the batch."""
    out = backend._engine.call(endpoint, step_call(step), InvokeResult)
    if not isinstance(out.data, VendorBatch):
        raise ResponseError(
            f"backend {backend.name!r}: its batch step {type(step).__name__} answered "
            f"{type(out.data).__name__}, not a VendorBatch", backend=backend.name,
            endpoint_id=endpoint.endpoint_id, request_id=out.request_id)
    return out.data

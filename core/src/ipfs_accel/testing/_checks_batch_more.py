"""What the batch check stands on: the provider's side scripted from the case's
:class:`BatchCase`, a poll bound, a results download cut short, and what the server saw.

The fault server answers strictly in order, and the core asks in a known order: the submit
chain (``BatchCase.submitted``), one poll per state (``BatchCase.described``; one poll
refused first with the case's rate limit, which the endpoint retries), then one download
per output (``BatchCase.results``, in the plugin's ``VendorBatch.outputs`` order).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._batch_types import BATCH_STATES, BatchCounts
from ._actions import Action, RecordedRequest, Reply, TruncatedStream
from ._batch_case import BatchCase, Outcomes
from ._run import CheckFailed, CheckRun, expect

if TYPE_CHECKING:
    from .._batch import BatchJob
    from ._server import FaultServer

__all__ = ["BATCH_ID", "CALLS", "ITEMS", "PollBound", "cut_short", "lifecycle",
           "received", "sent_safely", "vendor_states"]

BATCH_ID = "batch_kit_1"
"""The ID the kit's provider gives the batch."""

ITEMS: Outcomes = (("item-1", "completed"), ("item-2", "failed"), ("item-3", "expired"),
                   ("item-4", "completed"))
"""The calls the kit submits and what the provider makes of each."""

CALLS: list[dict[str, Any]] = [
    {"id": key, "messages": [{"role": "user", "content": "ping"}]} for key, _ in ITEMS]


def lifecycle(batch: BatchCase, *, rate_limited: Reply | None = None,
              cut: bool = False) -> tuple[list[Action], str]:
    """The provider's answers in the order the core asks (the submit chain, a poll per
    state, a download per output): ``rate_limited`` refuses the second poll once first
    (the first, for one state); ``cut`` breaks off the longest download once first. Also
    what was cut (``""``: nothing was)."""
    polls: list[Action] = [batch.described(BATCH_ID, state, ITEMS) for state in batch.states]
    if rate_limited is not None:
        polls.insert(min(1, len(polls) - 1), rate_limited)
    results: list[Action] = list(batch.results(BATCH_ID, ITEMS))
    what = ""
    if cut and results:
        sizes = [len(_lines(r)) if isinstance(r, Reply) else 0 for r in results]
        n = sizes.index(max(sizes))
        whole = results[n]
        assert isinstance(whole, Reply)
        broken, kept = cut_short(whole)
        results.insert(n, broken)
        what = (f"download {n + 1} of {len(results) - 1} broken off after {kept} of "
                f"{sizes[n]} lines")
    return [*batch.submitted(BATCH_ID), *polls, *results], what


def _lines(reply: Reply) -> list[str]:
    raw = reply.body
    if not raw and reply.json is not None:
        raw = json.dumps(reply.json).encode()
    return [line for line in raw.decode("utf-8", "replace").split("\n") if line.strip()]


def cut_short(reply: Reply) -> tuple[TruncatedStream, int]:
    """``reply``'s JSONL body, only its first half, on a connection cut before the body
    ends (a chunked answer without its last chunk); how many lines it keeps."""
    lines = _lines(reply)
    kept = len(lines) // 2
    headers = {k: v for k, v in reply.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    ctype = next((v for k, v in reply.headers.items() if k.lower() == "content-type"),
                 "application/octet-stream")
    return TruncatedStream(lines[:kept], content_type=ctype, status=reply.status,
                           headers=headers), kept


def vendor_states(job: BatchJob) -> str:
    """The batch's state at the last poll, the plugin's word and the API's."""
    described = job._described.get(job.batches[0]) if job.batches else None
    if described is None:
        return "not polled"
    return f"{described.state!r} (the API's {described.native_state or '?'!r})"


class PollBound:
    """The ``progress`` of a bounded ``job.wait``: it records each poll and ends the wait
    with a failure once the case's states are all answered and the job has not ended."""

    def __init__(self, job: BatchJob, batch: BatchCase, where: str) -> None:
        self.job = job
        self.states = batch.states
        self.where = where
        self.seen: list[str] = []

    def __call__(self, state: str, counts: BatchCounts) -> None:
        self.seen.append(vendor_states(self.job))
        if len(self.seen) >= len(self.states) and state != "completed":
            raise CheckFailed(
                f"{self.where}: after the case's {len(self.states)} poll answers (the API's "
                f"{', '.join(self.states)}) the job is {state!r}, not 'completed': the "
                f"plugin's state mapping never reaches 'completed' (polls read: "
                f"{'; '.join(self.seen)})")

    def check_states(self) -> None:
        """Fail naming a state the plugin answered that is not one of the core's words."""
        for batch in self.job._described.values():
            expect(batch.state in BATCH_STATES,
                   f"{self.where}: a poll answered VendorBatch.state {batch.state!r} (the "
                   f"API's {batch.native_state!r}): not one of {', '.join(BATCH_STATES)}")


def received(server: FaultServer) -> str:
    """The requests the server received, as ``METHOD /path`` (for a reason)."""
    return ", ".join(f"{r.method} {r.path}" for r in server.requests) or "none"


def _in_url(request: RecordedRequest, key: str) -> bool:
    return key in request.path or any(key in k or key in v for k, v in request.query.items())


def sent_safely(run: CheckRun, requests: list[RecordedRequest], key: str,
                where: str) -> int:
    """Every request carries the case's auth header with ``key``; the key is in no URL
    and no body. How many requests there were."""
    auth = run.case.auth
    for r in requests:
        expect(not _in_url(r, key), f"{where}: the key is in the URL of {r.method} {r.path} "
                                    "(it must travel only in the auth header)")
        expect(key.encode() not in r.body, f"{where}: the key is in the body of {r.method} "
                                           f"{r.path}")
        if auth is not None:
            header, template = auth
            expect(r.header(header) == template.format(key=key),
                   f"{where}: {r.method} {r.path} does not carry the key in {header!r} as "
                   f"{template!r} (every batch request is sent with the endpoint's key)")
    return len(requests)


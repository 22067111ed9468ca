"""The batch check: the same calls as one of the provider's batches, from submit to results.

For a backend that declares ``BackendInfo.batch`` and a case that declares its provider's
batch answers (``Case.batch``, a :class:`~ipfs_accel.testing.BatchCase`), the kit plays the
provider on a loopback fault server, scripted from the case (``_checks_batch_more``), and
submits four chat calls (one user message ``"ping"`` each, the case's settings) keyed
``item-1`` ... ``item-4`` through ``backend.submit_batch``: the provider answers item-1 and
item-4, fails item-2 with its 400 and lets item-3 expire. One poll is first refused with
the case's ``rate_limited`` reply (``Retry-After: 0``). Then:

- ``job.wait(every=0)`` ends ``completed``, bounded by the polls the case answers (a plugin
  whose state mapping never reaches ``completed`` is named, not waited on);
- ``job.results()`` gives each key exactly once: item-1 and item-4 a ``ChatResult`` saying
  ``BatchCase.text`` with usage ``BatchCase.tokens``, item-2 a ``BadRequestError`` (the
  item's failure classified as the online 400), item-3 a ``BatchExpiredError``;
- the endpoint's stats count the retried poll and twice the tokens as batch tokens;
- every request carries the case's auth header with the key, which is in no URL or body.

Then, where the results are downloaded (``BatchCase.results`` is not empty), the same batch
once more with a download broken off half-way (a chunked body cut before its end) and served
whole on the retry: every key once, none lost.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .._backend import Backend
from .._batch import BatchJob
from .._errors import (
    BadRequestError,
    BatchExpiredError,
    BatchMissingError,
    CallError,
)
from .._types import ChatResult
from ._batch_case import BatchCase
from ._checks_batch_more import (
    CALLS,
    ITEMS,
    PollBound,
    lifecycle,
    received,
    sent_safely,
)
from ._run import CheckFailed, CheckRun, expect, serving, skip, with_retry_after
from ._server import FaultServer

__all__ = ["check_batch"]

_ENDPOINT: dict[str, Any] = {"initial_retry_delay": 0.001, "retry_jitter": 0.0,
                             "max_retries": 2}
_KEYS = [key for key, _ in ITEMS]


def _applies(run: CheckRun) -> BatchCase:
    """The case's batch answers, once the backend and its plugin are found to have batches
    (skipped, saying why, when there is nothing to check)."""
    case = run.case
    hooks = run.registry.hooks(case.backend)
    batch = case.batch
    if hooks.info.batch is None:
        expect(batch is None, "the case declares batch answers (Case.batch) but the backend "
                              "declares no batches: set BackendInfo.batch to the provider's "
                              "limits")
        skip("n/a: the backend declares no batches")
    if batch is None:
        skip("the case declares no batch answers (Case.batch): declare a BatchCase to check "
             "the backend's batches")
    missing = [name for name in ("batch_exchange", "batch_result")
               if not getattr(hooks.pm.hook, name).get_hookimpls()]
    expect(not missing, f"BackendInfo.batch is set but the plugin implements no "
                        f"{' and no '.join(missing)} hook")
    return batch


def _run_job(backend: Backend, eid: str, batch: BatchCase, server: FaultServer,
             where: str) -> tuple[BatchJob, list[tuple[str, Any]], int]:
    """Submit the kit's calls, wait (bounded) and read the results; the job, the outcomes
    and how many polls it took. A call error or a stray state fails the check."""
    step = "submit_batch"
    bound: PollBound | None = None
    try:
        job = backend.submit_batch(CALLS, endpoint_id=eid)
        expect(len(job.batches) == 1, f"{where}: the 4 calls went as {len(job.batches)} "
                                      "batches, expected 1")
        step, bound = "wait", PollBound(job, batch, where)
        state = job.wait(bound, every=0)
        expect(state == "completed" and job.state == "completed",
               f"{where}: the job ended {state!r}, not 'completed' (polls read: "
               f"{'; '.join(bound.seen)})")
        expect(len(bound.seen) == len(batch.states),
               f"{where}: the job ended at poll {len(bound.seen)} of the case's "
               f"{len(batch.states)} (the API's {', '.join(batch.states)}): the plugin maps "
               f"a state before the last to an end (polls read: {'; '.join(bound.seen)})")
        step = "results"
        outcomes = list(job.results())
    except CallError as exc:
        raise CheckFailed(f"{where}: {step} raised {type(exc).__name__}: {exc} (the server "
                          f"received: {received(server)})") from None
    except ValueError as exc:
        if bound is not None:
            bound.check_states()
        raise CheckFailed(f"{where}: {step} raised ValueError: {exc}") from None
    return job, outcomes, len(bound.seen)


def _each_once(outcomes: list[tuple[str, Any]], where: str) -> dict[str, Any]:
    counted = Counter(key for key, _ in outcomes)
    twice = sorted(k for k, n in counted.items() if n > 1)
    expect(not twice, f"{where}: results() gave {', '.join(twice)} more than once")
    lost = [k for k in _KEYS if k not in counted]
    expect(not lost, f"{where}: results() gave nothing for {', '.join(lost)}")
    extra = sorted(set(counted) - set(_KEYS))
    expect(not extra, f"{where}: results() gave keys that were never submitted: "
                      f"{', '.join(extra)}")
    out = dict(outcomes)
    missing = [k for k in _KEYS if isinstance(out[k], BatchMissingError)]
    expect(not missing, f"{where}: no result was read for {', '.join(missing)} "
                        "(BatchMissingError): batch_result lost its line, or the plugin's "
                        "VendorBatch.outputs does not name every output")
    return out


def _answered(case_batch: BatchCase, key: str, got: Any) -> None:
    want_in, want_out = case_batch.tokens
    expect(isinstance(got, ChatResult),
           f"{key} (answered by the provider) came back as {type(got).__name__}: {got}, not a "
           "ChatResult")
    expect(got.text == case_batch.text, f"{key}: text {got.text!r}, expected the case's "
                                        f"{case_batch.text!r}")
    usage = got.usage
    expect((usage.input_tokens, usage.output_tokens) == (want_in, want_out),
           f"{key}: usage input_tokens={usage.input_tokens}, output_tokens="
           f"{usage.output_tokens}, expected {want_in} and {want_out} (BatchCase.tokens): "
           "batch_result should parse the answer with the online parser, usage included")


def _outcomes(batch: BatchCase, out: dict[str, Any]) -> None:
    for key in ("item-1", "item-4"):
        _answered(batch, key, out[key])
    failed = out["item-2"]
    expect(isinstance(failed, BadRequestError),
           f"item-2 (the provider's 400 for it) came back as {type(failed).__name__}"
           f"{': ' + str(failed) if isinstance(failed, CallError) else ''}, not "
           "BadRequestError: batch_result's Failure (the item's status and its error as the "
           "online API sends it) should classify as the online 400 does")
    expired = out["item-3"]
    expect(isinstance(expired, BatchExpiredError),
           f"item-3 (expired at the provider) came back as {type(expired).__name__}, not "
           "BatchExpiredError: batch_result should answer BatchOutcome(state='expired')")


def _lifecycle(run: CheckRun, batch: BatchCase) -> str:
    case = run.case
    backend = run.backend()
    key = run.key()
    limited = with_retry_after(case.rate_limited, "0")
    script, _ = lifecycle(batch, rate_limited=limited)
    where = "the batch"
    with serving(*script) as server:
        eid = run.endpoint(backend, server, key=key, **_ENDPOINT)
        job, outcomes, polls = _run_job(backend, eid, batch, server, where)
        requests = server.requests
        left = server.pending()
    out = _each_once(outcomes, where)
    _outcomes(batch, out)
    expect(job.counts.total == len(ITEMS),
           f"the ended batch's counts say total={job.counts.total}, expected {len(ITEMS)} "
           "(VendorBatch.counts from the provider's description)")
    stats = backend.get_stats(eid)
    want_in, want_out = (2 * n for n in batch.tokens)
    expect((stats.batch_input_tokens, stats.batch_output_tokens) == (want_in, want_out),
           f"the endpoint's stats count batch_input_tokens={stats.batch_input_tokens}, "
           f"batch_output_tokens={stats.batch_output_tokens}, expected {want_in} and "
           f"{want_out} (the two answered items' tokens)")
    expect(stats.retries >= 1, f"the poll refused with {limited.status} (Retry-After: 0) was "
                               f"not retried (stats.retries={stats.retries})")
    expect(left == 0, f"{left} of the provider's answers were never asked for (the server "
                      f"received: {', '.join(f'{r.method} {r.path}' for r in requests)})")
    sent = sent_safely(run, requests, key, where)
    return (f"4 calls as one batch: {len(batch.submitted('x'))} submit request(s), {polls} "
            f"polls (one refused {limited.status} and retried) to 'completed'; item-1/item-4 "
            f"{batch.text!r} with usage {batch.tokens}, item-2 BadRequestError, item-3 "
            f"BatchExpiredError; batch tokens {want_in}+{want_out} counted; the key in the "
            f"auth header of all {sent} requests, in no URL")


def _cut_download(run: CheckRun, batch: BatchCase) -> str:
    if not batch.results("x", ITEMS):
        return "results inline (BatchCase.results is empty): no download to cut short"
    backend = run.backend()
    key = run.key()
    script, cut = lifecycle(batch, cut=True)
    where = f"an output that ends early ({cut}, then served whole)"
    with serving(*script) as server:
        eid = run.endpoint(backend, server, key=key, **_ENDPOINT)
        _, outcomes, _ = _run_job(backend, eid, batch, server, where)
        left = server.pending()
        requests = server.requests
    _each_once(outcomes, where)
    expect(left == 0, f"{where}: the download was not asked for again after the cut "
                      f"({left} answer(s) left; the server received: "
                      f"{', '.join(f'{r.method} {r.path}' for r in requests)})")
    sent_safely(run, requests, key, where)
    return f"{cut}, read again: every key once, none lost"


def check_batch(run: CheckRun) -> str:
    """Four calls as one batch: submitted, polled (one poll rate limited and retried) to
    'completed', and read back: each key once, the answers with their usage, the 400 and the
    expired item classified, batch tokens counted, the key in the auth header only; and a
    results download cut short read again without a key twice or lost."""
    batch = _applies(run)
    first = _lifecycle(run, batch)
    second = _cut_download(run, batch)
    return f"{first}; {second}"

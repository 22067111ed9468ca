"""The operation checks: the stream completes, finish_reason is in the vocabulary, and every
operation the case covers works sync and async.

Each drives the calls itself (``_drive``) against the case's declared replies: ``text`` for
chat, ``stream`` for stream_chat, ``embed`` for embed. A check with nothing to drive (the
backend lacks the operation, or the case declares no reply for it) is skipped, saying so.
"""

from __future__ import annotations

from typing import Any

from .._errors import StreamInterruptedError
from .._types import FINISH_REASONS, ChatResult, EmbedResult, StreamChunk
from ._case import Case
from ._drive import COVERABLE, Driven, covered, drive, reply_for
from ._run import CheckFailed, CheckRun, conformance_id, expect, serving, skip

__all__ = ["check_finish_reason", "check_operations", "check_stream", "verify"]


def _offered(run: CheckRun) -> frozenset[str]:
    return run.registry.hooks(run.case.backend).info.operations


def _failed(d: Driven) -> CheckFailed:
    err = d.error
    assert err is not None
    if isinstance(err, StreamInterruptedError) and "before its final event" in str(err):
        return CheckFailed(
            f"{d.name}: the stream was served whole, ending with its terminal event, yet "
            "no chunk came with done=True, so the core saw it end early: the last event "
            "must set done=True (parse_event's chunk for the API's terminal event)")
    return CheckFailed(f"{d.name}: a call that should succeed raised {type(err).__name__} "
                       f"after {err.attempts or '?'} attempt(s): {err}")


def _usage(case: Case, got: Any, where: str) -> None:
    tin, tout = case.tokens
    if tin or tout:
        pair = (getattr(got, "input_tokens", None), getattr(got, "output_tokens", None))
        expect(pair == (tin, tout), f"{where}: usage {pair[0]}+{pair[1]}, expected "
                                     f"{tin}+{tout} (the case's tokens)")


def _verify_stream(case: Case, d: Driven, chunks: list[StreamChunk]) -> None:
    expect(bool(chunks), f"{d.name}: the stream yielded no chunk")
    last = chunks[-1]
    expect(last.done, f"{d.name}: the last chunk has done=False: the last event must set "
                      "done=True")
    early = [n for n, c in enumerate(chunks[:-1], 1) if c.done]
    expect(not early, f"{d.name}: chunk {early[:1]} of {len(chunks)} has done=True before "
                      "the last")
    text = "".join(c.delta for c in chunks)
    expect(text == case.text, f"{d.name}: the deltas spell {text!r}, expected {case.text!r}")
    expect(last.usage is not None, f"{d.name}: the last chunk carries no usage")
    _usage(case, last.usage, f"{d.name} (last chunk)")
    wrong = [c.request_id for c in chunks if c.request_id != d.request_id]
    expect(not wrong, f"{d.name}: a chunk carries request_id={wrong[:1]}, not the call's")


def verify(case: Case, d: Driven) -> None:
    """``d`` succeeded with what the case declares; :class:`CheckFailed` saying what not."""
    if d.error is not None:
        raise _failed(d)
    result = d.result
    if d.operation == "stream_chat":
        _verify_stream(case, d, result)
        return
    want = ChatResult if d.operation == "chat" else EmbedResult
    expect(isinstance(result, want), f"{d.name} returned {type(result).__name__}, not "
                                     f"{want.__name__}")
    expect(result.request_id == d.request_id,
           f"{d.name}: the result's request_id is {result.request_id!r}, not the call's")
    if isinstance(result, ChatResult):
        expect(result.text == case.text,
               f"{d.name}: text {result.text!r}, expected {case.text!r}")
        if case.chat is None:  # the reply is ``success``, whose usage ``tokens`` declares
            _usage(case, result.usage, d.name)
        return
    vectors = result.vectors
    expect(len(vectors) == len(case.inputs),
           f"{d.name}: {len(vectors)} vectors for {len(case.inputs)} inputs")
    bad = [n for n, v in enumerate(vectors) if not v or not all(
        isinstance(x, float) for x in v)]
    expect(not bad, f"{d.name}: vector {bad[:1]} is empty or not all floats")


def _one(run: CheckRun, operation: str, mode: str) -> Driven:
    backend = run.backend()
    with serving(reply_for(run.case, operation)) as server:
        eid = run.endpoint(backend, server, max_retries=0)
        return drive(backend, operation, run.case, eid, conformance_id(), mode=mode)


def check_stream(run: CheckRun) -> str:
    """stream_chat, sync and async, completes: the deltas spell the case's text, only the
    last chunk has done=True, and it carries the call's usage."""
    case = run.case
    if "stream_chat" not in _offered(run):
        expect(case.stream is None, "the case declares a stream reply but the backend does "
                                    "not offer stream_chat")
        skip("n/a: the backend offers no stream_chat")
    if case.stream is None:
        skip("the backend offers stream_chat but the case declares no stream reply "
             "(Case.stream, with text and tokens)")
    expect(case.text is not None, "the case declares a stream but no text for it to spell")
    lines = len(case.stream.lines)
    counts = []
    for mode in ("sync", "async"):
        d = _one(run, "stream_chat", mode)
        verify(case, d)
        counts.append(len(d.result))
    return (f"{lines} lines served -> {counts[0]} chunks (async {counts[1]}) "
            f"spelling {case.text!r}; only the last done=True, with usage "
            f"{case.tokens[0]}+{case.tokens[1]}")


def _finish_of(d: Driven) -> tuple[str | None, str | None]:
    if isinstance(d.result, ChatResult):
        return d.result.finish_reason, d.result.native_finish_reason
    ends = [c for c in d.result if c.finish_reason is not None]
    return (ends[-1].finish_reason, ends[-1].native_finish_reason) if ends else (None, None)


def check_finish_reason(run: CheckRun) -> str:
    """Chat and stream results end with the case's finish_reason, one of FINISH_REASONS:
    the API's own value is mapped, never passed through as ``other``."""
    case = run.case
    offered = _offered(run)
    ops = [op for op in ("chat", "stream_chat") if op in covered(case) and op in offered]
    if not {"chat", "stream_chat"} & offered:
        skip("n/a: the backend offers neither chat nor stream_chat")
    if case.finish is None:
        skip("the case declares no finish (the finish_reason its chat reply means)")
    if not ops:
        skip("the case covers neither chat nor stream_chat (declare text, stream)")
    vocabulary = FINISH_REASONS
    expect(case.finish in vocabulary, f"the case's finish {case.finish!r} is not one of "
                                      f"FINISH_REASONS ({', '.join(sorted(vocabulary))})")
    seen = []
    for op in ops:
        d = _one(run, op, "sync")
        if d.error is not None:
            raise _failed(d)
        got, native = _finish_of(d)
        expect(got is None or got in vocabulary,
               f"{d.name}: finish_reason {got!r} is not one of FINISH_REASONS")
        if got == "other" and case.finish != "other":
            raise CheckFailed(
                f"{d.name}: the API's finish {native!r} came through as 'other': the plugin's "
                f"finish-reason table has no entry for it (expected {case.finish!r}; map it "
                "with ipfs_accel.normalize_finish_reason)")
        expect(got == case.finish, f"{d.name}: finish_reason {got!r} (native {native!r}), "
                                   f"expected {case.finish!r}")
        seen.append(f"{op} {native or got!r}->{got}")
    return "; ".join(seen) + " (native kept in native_finish_reason)"


def check_operations(run: CheckRun) -> str:
    """Every operation the backend offers and the case covers (chat, stream_chat, embed),
    sync and async, on one endpoint: each result as declared, counted once, none failed."""
    case = run.case
    offered = _offered(run)
    ops = covered(case)
    extra = [op for op in ops if op not in offered]
    expect(not extra, f"the case declares a reply for {', '.join(extra)}, which the backend "
                      "does not offer")
    if not ops:
        skip("the case covers no operation (declare text for chat, stream, embed)")
    missing = [op for op in COVERABLE if op in offered and op not in ops]
    backend = run.backend()
    replies = [reply_for(case, op) for op in ops for _ in range(2)]
    with serving(*replies) as server:
        eid = run.endpoint(backend, server, max_retries=0)
        for op in ops:
            for mode in ("sync", "async"):
                verify(case, drive(backend, op, case, eid, conformance_id(), mode=mode))
    stats = backend.get_stats(eid)
    calls = 2 * len(ops)
    expect((stats.total_requests, stats.successful_requests, stats.failed_requests)
           == (calls, calls, 0),
           f"{calls} calls counted as total {stats.total_requests}, ok "
           f"{stats.successful_requests}, failed {stats.failed_requests}")
    note = f"; not covered by the case: {', '.join(missing)}" if missing else ""
    return f"{', '.join(ops)}: each sync and async, as declared, {calls} counted{note}"

"""The kit's batch check: it passes for a plugin whose batches work, and turns into a cross
naming what is wrong when the plugin loses an answer's usage, classifies a failed item
wrongly, never maps the provider's states to 'completed' or puts the key in a URL; it is
n/a for a backend without batches and skipped for a case that declares no batch answers.

The plugin here (``kitbatch``) speaks a small OpenAI-like batch API over real HTTP to the
kit's fault server: upload the lines, create the batch, poll it through the API's states
``queued``, ``running``, ``done`` and download one JSONL output.
"""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any

import msgspec
import pytest
from ipfs_accel import (
    BackendInfo,
    BatchCounts,
    BatchFetch,
    BatchLimits,
    BatchLine,
    BatchOutcome,
    BatchPoll,
    BatchSubmit,
    Call,
    ChatResult,
    Classification,
    EndpointConfig,
    ErrorKind,
    Exchange,
    Failure,
    InvokeResult,
    LinesBody,
    Response,
    Usage,
    VendorBatch,
    hookimpl,
)
from ipfs_accel.testing import BatchCase, Case, CheckResult, Reply, registry_for, run_check

TEXT = "pong"
TOKENS = (7, 3)
STATES = {"queued": "validating", "running": "in_progress", "done": "completed"}


@hookimpl
def backend_info() -> BackendInfo:
    return BackendInfo(
        name="kitbatch", provider="kitbatch", default_base_url="http://kitbatch.test/v1",
        default_model="m-1", operations=frozenset({"chat"}),
        batch=BatchLimits(max_requests=100, max_bytes=100_000),
    )


def _auth(endpoint: EndpointConfig) -> dict[str, str]:
    key = endpoint.api_key
    return {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}


def _answer(data: dict[str, Any]) -> ChatResult:
    usage = data["usage"]
    return ChatResult(text=data["text"], model=data.get("model"),
                      usage=Usage(input_tokens=usage[0], output_tokens=usage[1],
                                  total_tokens=usage[0] + usage[1]))


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    return Exchange(path="/chat", json={"model": call.model, "messages": call.messages},
                    headers=_auth(endpoint), parse=lambda resp: _answer(resp.data))


def _described(resp: Response) -> InvokeResult:
    d = resp.data
    return InvokeResult(data=VendorBatch(
        id=d["id"], state=STATES.get(d["status"], "failed"),  # type: ignore[arg-type]
        native_state=d["status"], counts=BatchCounts(**d["counts"]),
        outputs=tuple(d.get("outputs", ()))))


@hookimpl
def batch_exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    auth = _auth(endpoint)
    if isinstance(step, BatchLine):
        return Exchange(path="", json={"custom_id": step.key, "body": {
            "model": step.call.model, "messages": step.call.messages}})
    if isinstance(step, BatchSubmit):
        def created(resp: Response) -> Exchange:
            return Exchange(path="/batches", headers=auth, parse=_described,
                            json={"input_file_id": resp.data["id"]})
        return Exchange(path="/files", headers=auth, parse=created,
                        body=LinesBody(path=step.lines, multipart={"purpose": "batch"}))
    if isinstance(step, BatchPoll):
        return Exchange(method="GET", path=f"/batches/{step.batch_id}", headers=auth,
                        parse=_described)
    if isinstance(step, BatchFetch):
        return Exchange(method="GET", path=f"/files/{step.output}/content", headers=auth)
    return None


@hookimpl
def batch_result(data: Any, operation: str) -> BatchOutcome:
    key = data["custom_id"]
    error = data.get("error")
    if error is not None:
        if error["code"] == "expired":
            return BatchOutcome(key=key, state="expired", message=error["message"])
        return BatchOutcome(key=key, state="failed", failure=Failure(
            operation=operation, status=data["status"], data={"error": error}))
    return BatchOutcome(key=key, result=_answer(data["answer"]))


HOOKS = {"backend_info": backend_info, "send": send, "batch_exchange": batch_exchange,
         "batch_result": batch_result}


def _view(batch_id: str, state: str, outcomes: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"id": batch_id, "status": state, "counts": {"total": len(outcomes)}}
    if state == "done":
        kinds = [kind for _, kind in outcomes]
        view["counts"].update(completed=kinds.count("completed"), failed=kinds.count("failed"),
                              expired=kinds.count("expired"))
        view["outputs"] = [f"out-{batch_id}"]
    return view


def _results(batch_id: str, outcomes: Any) -> tuple[Reply, ...]:
    rows: list[dict[str, Any]] = []
    for key, kind in outcomes:
        if kind == "completed":
            rows.append({"custom_id": key, "answer": {"text": TEXT, "usage": list(TOKENS)}})
        elif kind == "failed":
            rows.append({"custom_id": key, "status": 400, "error": {
                "code": "invalid", "message": "the item's request is not valid"}})
        else:
            rows.append({"custom_id": key, "error": {"code": "expired",
                                                      "message": "the window closed"}})
    body = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    return (Reply(200, body=body, headers={"content-type": "application/jsonl"}),)


BATCH = BatchCase(
    submitted=lambda bid: (Reply(200, json={"id": "file-1"}),
                           Reply(200, json=_view(bid, "queued", ()))),
    described=lambda bid, state, outcomes: Reply(200, json=_view(bid, state, outcomes)),
    results=_results, text=TEXT, tokens=TOKENS, states=tuple(STATES),
)

CASE = Case(backend="kitbatch", auth=("authorization", "Bearer {key}"),
            success=Reply(200, json={"text": TEXT, "usage": list(TOKENS)}), tokens=TOKENS,
            batch=BATCH)


def _run(case: Case = CASE, **hooks: Any) -> CheckResult:
    case = dataclasses.replace(case, plugin=types.SimpleNamespace(**{**HOOKS, **hooks}))
    return run_check("batch", case, registry_for(case))


def _failed(result: CheckResult) -> str:
    assert not result.passed and not result.skipped, result
    return result.reason


def test_a_plugin_whose_batches_work_passes() -> None:
    result = _run()
    assert result.passed, result.reason
    assert "3 polls (one refused 429 and retried) to 'completed'" in result.detail
    assert "item-2 BadRequestError, item-3 BatchExpiredError" in result.detail
    assert "download 1 of 1 broken off after 2 of 4 lines, read again" in result.detail
    assert "sk-conformance" not in result.detail + result.reason


def test_an_answer_without_its_usage_is_named() -> None:
    @hookimpl
    def usageless(data: Any, operation: str) -> BatchOutcome:
        out = batch_result(data, operation)
        if out.result is not None:
            out.result = msgspec.structs.replace(out.result, usage=Usage())
        return out

    reason = _failed(_run(batch_result=usageless))
    assert reason.startswith("item-1: usage input_tokens=0, output_tokens=0, expected 7 and 3")


def test_a_failed_item_classified_wrongly_is_named() -> None:
    @hookimpl
    def classify_error(failure: Failure) -> Classification | None:
        if failure.status == 400:
            return Classification(kind=ErrorKind.OVERLOADED, retryable=True)
        return None

    reason = _failed(_run(classify_error=classify_error))
    assert reason.startswith("item-2 (the provider's 400 for it) came back as "
                             "OverloadedError"), reason
    assert "not BadRequestError" in reason


def test_a_state_mapping_that_never_completes_is_named_not_waited_on() -> None:
    @hookimpl
    def stuck(step: Any, endpoint: EndpointConfig) -> Exchange | None:
        ex = batch_exchange(step, endpoint)
        if isinstance(step, BatchPoll) and ex is not None:
            def parse(resp: Response) -> InvokeResult:
                out = _described(resp)
                out.data.state = "in_progress"
                return out
            return msgspec.structs.replace(ex, parse=parse)
        return ex

    reason = _failed(_run(batch_exchange=stuck))
    assert "after the case's 3 poll answers (the API's queued, running, done) the job is " \
           "'in_progress', not 'completed'" in reason, reason
    assert "never reaches 'completed'" in reason and "the API's 'done'" in reason


def test_a_key_in_a_url_is_named_and_scrubbed() -> None:
    @hookimpl
    def leaky(step: Any, endpoint: EndpointConfig) -> Exchange | None:
        ex = batch_exchange(step, endpoint)
        if isinstance(step, BatchPoll) and ex is not None and endpoint.api_key is not None:
            return msgspec.structs.replace(
                ex, path=f"{ex.path}?key={endpoint.api_key.reveal()}")
        return ex

    reason = _failed(_run(batch_exchange=leaky))
    assert reason.startswith("the batch: the key is in the URL of GET /batches/"), reason
    assert "sk-conformance" not in reason


def test_a_backend_without_batches_is_not_applicable() -> None:
    @hookimpl
    def batchless() -> BackendInfo:
        return msgspec.structs.replace(backend_info(), batch=None)

    result = _run(dataclasses.replace(CASE, batch=None), backend_info=batchless)
    assert result.skipped and result.reason == "n/a: the backend declares no batches"
    # a case with batch answers for a backend that declares none is a mistake, named
    reason = _failed(_run(backend_info=batchless))
    assert "set BackendInfo.batch" in reason


def test_a_case_without_batch_answers_is_skipped() -> None:
    result = _run(dataclasses.replace(CASE, batch=None))
    assert result.skipped and not result.passed
    assert result.reason.startswith("the case declares no batch answers (Case.batch)")


def test_batch_limits_without_the_hooks_fail() -> None:
    plugin = types.SimpleNamespace(backend_info=backend_info, send=send)
    case = dataclasses.replace(CASE, plugin=plugin)
    reason = _failed(run_check("batch", case, registry_for(case)))
    assert reason == ("BackendInfo.batch is set but the plugin implements no batch_exchange "
                      "and no batch_result hook")


@pytest.mark.parametrize("lost", ["item-4"])
def test_an_output_that_loses_a_line_is_named(lost: str) -> None:
    def short(batch_id: str, outcomes: Any) -> tuple[Reply, ...]:
        return _results(batch_id, [o for o in outcomes if o[0] != lost])

    case = dataclasses.replace(CASE, batch=dataclasses.replace(BATCH, results=short))
    reason = _failed(_run(case))
    assert reason.startswith(f"the batch: no result was read for {lost} (BatchMissingError)")

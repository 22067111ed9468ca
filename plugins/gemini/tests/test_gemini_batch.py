"""The Batch API's exchanges: each step's request, the operation read as a VendorBatch
(both state spellings, counts sent as strings, answers inline or in a file), and each
result read as the online call's outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ipfs_accel_gemini
import msgspec
import pytest
from _gemini_fixtures import KEY, generate_response, usage_metadata
from ipfs_accel import (
    BatchCancel,
    BatchFetch,
    BatchLine,
    BatchPoll,
    BatchSubmit,
    Call,
    ChatResult,
    EndpointConfig,
    EndpointSettings,
    ErrorKind,
    Exchange,
    InvokeResult,
    Response,
    Secret,
    VendorBatch,
)
from ipfs_accel_gemini._batch import MAX_BYTES, MAX_REQUESTS, Operation
from ipfs_accel_gemini._batch_case import operation

CONFIG = EndpointConfig(endpoint_id="e1", base_url="https://generativelanguage.googleapis.com",
                        api_key=Secret(KEY), model=None, options=None,
                        settings=EndpointSettings())
ITEMS = (("a", "completed"), ("b", "failed"), ("c", "expired"), ("d", "completed"))


def _exchange(step: Any, config: EndpointConfig = CONFIG) -> Exchange:
    exchange = ipfs_accel_gemini.batch_exchange(step, config)
    assert exchange is not None
    return exchange


def _chat(messages: list[dict[str, Any]], **params: Any) -> Call:
    return Call(operation="chat", messages=messages, model="gemini-2.5-flash", params=params)


def _parse(exchange: Exchange, body: Any) -> Any:
    assert exchange.parse is not None
    data = body if exchange.response_type is None else msgspec.convert(body,
                                                                     exchange.response_type)
    return exchange.parse(Response(status=200, headers={}, content=json.dumps(body).encode(),
                                   data=data))


def _described(body: Any) -> VendorBatch:
    out = _parse(_exchange(BatchPoll(batch_id="batches/b1")), body)
    assert isinstance(out, InvokeResult) and isinstance(out.data, VendorBatch)
    return out.data


def test_limits_are_declared() -> None:
    """Chat calls, at most 100,000 a batch and 2 GB of lines (a file's limit: a part too
    big to go inline is uploaded)."""
    limits = ipfs_accel_gemini.backend_info().batch
    assert limits is not None
    assert limits.operations == {"chat"}
    assert (limits.max_requests, limits.max_bytes) == (MAX_REQUESTS, MAX_BYTES)
    assert (MAX_REQUESTS, MAX_BYTES) == (100_000, 2_000_000_000)


def test_line_is_the_online_request_keyed_in_its_metadata() -> None:
    """A call's line is the GenerateContentRequest generateContent gets, keyed."""
    call = _chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                 max_tokens=8, temperature=0.1)
    exchange = _exchange(BatchLine(key="item-1", call=call))
    online = ipfs_accel_gemini.send(call, CONFIG)
    assert exchange.json == {"request": online.json, "metadata": {"key": "item-1"}}
    assert exchange.json["request"] == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 8, "temperature": 0.1},
    }


def _lines(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "part-1.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(line) + b"\n" for line in lines))
    return path


@pytest.mark.parametrize("label", ["job-1", 'say "hi"\\n\u00e9\u2028'])
def test_submit_streams_the_lines_as_one_camel_case_body(tmp_path: Path, label: str) -> None:
    """The submit's streamed body is one JSON document in the spec's camelCase, its
    display name the label (escaped), the lines its requests in order."""
    lines = [_exchange(BatchLine(key=f"k{i}", call=_chat([{"role": "user", "content": str(i)}])))
             .json for i in range(3)]
    step = BatchSubmit(lines=_lines(tmp_path, *lines), count=3, operation="chat",
                       model="models/gemini-2.5-flash", label=label)
    exchange = _exchange(step)
    assert (exchange.method, exchange.path) == (
        "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent")
    assert exchange.headers == {"x-goog-api-key": KEY}
    assert exchange.json is None and exchange.body is not None
    raw = b"".join(exchange.body.chunks())
    assert len(raw) == exchange.body.length()
    assert json.loads(raw) == {"batch": {"displayName": label, "inputConfig": {
        "requests": {"requests": lines}}}}


def test_submit_answers_the_created_batch(tmp_path: Path) -> None:
    step = BatchSubmit(lines=_lines(tmp_path, {}), count=1, operation="chat",
                       model="gemini-2.5-flash", label="x")
    out = _parse(_exchange(step), operation("b1", "JOB_STATE_PENDING", (("a", "completed"),)))
    assert out.data == VendorBatch(id="batches/b1", state="validating",
                                   native_state="JOB_STATE_PENDING",
                                   counts=out.data.counts, inline=None)
    assert out.data.counts.total == 1


@pytest.mark.parametrize("batch_id", ["batches/abc-1", "abc-1"])
def test_poll_gets_the_batch(batch_id: str) -> None:
    exchange = _exchange(BatchPoll(batch_id=batch_id))
    assert (exchange.method, exchange.path) == ("GET", "/v1beta/batches/abc-1")
    assert exchange.headers == {"x-goog-api-key": KEY}
    assert exchange.response_type is Operation


def test_paths_follow_the_api_version_and_escape_ids() -> None:
    config = msgspec.structs.replace(
        CONFIG, options=ipfs_accel_gemini.GeminiOptions(api_version="v1alpha"))
    assert _exchange(BatchPoll(batch_id="batches/a b"), config).path == "/v1alpha/batches/a%20b"
    fetch = _exchange(BatchFetch(batch=VendorBatch(id="batches/x", state="completed"),
                                 output="files/batch-out"), config)
    assert fetch.path == "/download/v1alpha/files/batch-out:download"


def test_cancel_then_describes_the_batch_by_a_poll() -> None:
    """The cancel answers ``{}`` (the spec's EmptyObject): its parse asks for a poll."""
    exchange = _exchange(BatchCancel(batch_id="batches/b1"))
    assert (exchange.method, exchange.path) == ("POST", "/v1beta/batches/b1:cancel")
    assert exchange.headers == {"x-goog-api-key": KEY}
    follow = _parse(exchange, {})
    assert isinstance(follow, Exchange)
    assert (follow.method, follow.path) == ("GET", "/v1beta/batches/b1")
    assert follow.headers == {"x-goog-api-key": KEY}
    described = _parse(follow, operation("b1", "cancelling", ITEMS))
    assert described.data.state == "cancelling"


def test_cancel_answered_with_the_operation_is_read_at_once() -> None:
    out = _parse(_exchange(BatchCancel(batch_id="b1")), operation("b1", "cancelled", ITEMS))
    assert isinstance(out, InvokeResult)
    assert out.data.state == "cancelled"


def test_fetch_downloads_the_responses_file() -> None:
    batch = VendorBatch(id="batches/b1", state="completed", outputs=("files/batch-b1",))
    exchange = _exchange(BatchFetch(batch=batch, output="files/batch-b1"))
    assert (exchange.method, exchange.path) == ("GET", "/download/v1beta/files/batch-b1:download")
    assert exchange.params == {"alt": "media"}
    assert exchange.headers == {"x-goog-api-key": KEY}


def test_other_steps_are_not_ours() -> None:
    assert ipfs_accel_gemini.batch_exchange("nothing", CONFIG) is None


@pytest.mark.parametrize(("word", "state"), [
    ("UNSPECIFIED", "validating"), ("QUEUED", "validating"), ("PENDING", "validating"),
    ("RUNNING", "in_progress"), ("PAUSED", "in_progress"), ("UPDATING", "in_progress"),
    ("SUCCEEDED", "completed"), ("PARTIALLY_SUCCEEDED", "completed"), ("FAILED", "failed"),
    ("CANCELLING", "cancelling"), ("CANCELLED", "cancelled"), ("EXPIRED", "expired"),
])
@pytest.mark.parametrize("spelling", ["JOB_STATE_", "BATCH_STATE_"])
def test_states_in_either_spelling(word: str, state: str, spelling: str) -> None:
    native = spelling + word
    batch = _described({"name": "batches/b1", "metadata": {"state": native}})
    assert (batch.state, batch.native_state) == (state, native)


@pytest.mark.parametrize(("body", "state"), [
    ({"done": False}, "in_progress"),
    ({"done": True}, "completed"),
    ({"done": True, "error": {"code": 1, "message": "cancelled"}}, "cancelled"),
    ({"done": True, "error": {"code": 13, "message": "boom"}}, "failed"),
    ({"done": True, "metadata": {"state": "JOB_STATE_SOMETHING_NEW"}}, "completed"),
])
def test_state_without_a_known_word_follows_done_and_error(body: dict[str, Any],
                                                           state: str) -> None:
    assert _described({"name": "batches/b1", **body}).state == state


def test_the_wire_shape_is_read() -> None:
    """As the server sends it: ``@type``, the batch's name and input in metadata,
    BATCH_STATE_*, the answers in ``response``."""
    answers = [{"response": generate_response("ok"), "metadata": {"key": "a"}}]
    batch = _described({
        "name": "batches/w1", "done": True,
        "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                     "GenerateContentBatch", "name": "batches/w1", "model": "models/x",
                     "inputConfig": {"requests": {"requests": []}},
                     "batchStats": {"requestCount": "2", "successfulRequestCount": "1",
                                    "failedRequestCount": "1"},
                     "state": "BATCH_STATE_SUCCEEDED"},
        "response": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                     "GenerateContentBatchOutput",
                     "inlinedResponses": {"inlinedResponses": answers}},
    })
    assert batch.id == "batches/w1" and batch.state == "completed"
    assert (batch.counts.total, batch.counts.completed, batch.counts.failed) == (2, 1, 1)
    assert batch.inline == answers and batch.outputs == ()


def test_answers_in_metadata_output_and_in_a_file() -> None:
    answers = [{"error": {"code": 3}, "metadata": {"key": "a"}}]
    inline = _described({"metadata": {"name": "batches/m1", "state": "JOB_STATE_SUCCEEDED",
                                      "output": {"inlinedResponses": {
                                          "inlinedResponses": answers}}}})
    assert (inline.id, inline.inline) == ("batches/m1", answers)
    filed = _described({"name": "batches/f1", "metadata": {"state": "JOB_STATE_SUCCEEDED"},
                        "response": {"responsesFile": "files/batch-f1"}})
    assert (filed.inline, filed.outputs) == (None, ("files/batch-f1",))


@pytest.mark.parametrize(("state", "field"), [("EXPIRED", "expired"),
                                              ("CANCELLED", "cancelled")])
def test_counts_what_never_ran(state: str, field: str) -> None:
    batch = _described({"name": "batches/b1", "metadata": {
        "state": f"JOB_STATE_{state}", "batchStats": {
            "requestCount": "5", "successfulRequestCount": "2", "failedRequestCount": "1",
            "pendingRequestCount": "2"}}})
    assert getattr(batch.counts, field) == 2
    assert (batch.counts.total, batch.counts.done) == (5, 5)


def test_a_failed_batch_says_why() -> None:
    batch = _described({"name": "batches/b1", "done": True, "error": {
        "code": 3, "message": "the input is not valid"},
        "metadata": {"state": "JOB_STATE_FAILED"}})
    assert (batch.state, batch.error) == ("failed", "the input is not valid")


def test_an_operation_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="no name"):
        _described({"metadata": {"state": "JOB_STATE_RUNNING"}})


def test_an_answer_is_the_online_result_with_its_usage() -> None:
    usage = usage_metadata(9, 4, thoughtsTokenCount=3)
    out = ipfs_accel_gemini.batch_result(
        {"response": generate_response("pong", usage=usage), "metadata": {"key": "k1"}}, "chat")
    assert out.key == "k1" and out.state == "completed" and out.failure is None
    assert isinstance(out.result, ChatResult)
    assert (out.result.text, out.result.finish_reason) == ("pong", "stop")
    assert out.result.model == "gemini-2.5-flash"
    assert (out.result.usage.input_tokens, out.result.usage.output_tokens,
            out.result.usage.reasoning_tokens) == (9, 7, 3)


def test_a_file_line_is_keyed_at_its_top() -> None:
    out = ipfs_accel_gemini.batch_result({"key": "k2", "response": generate_response()}, "chat")
    assert out.key == "k2" and isinstance(out.result, ChatResult)
    failed = ipfs_accel_gemini.batch_result(
        {"key": "k3", "status": {"code": 8, "message": "quota"}}, "chat")
    assert failed.key == "k3" and failed.failure is not None and failed.failure.status == 429


@pytest.mark.parametrize(("code", "status", "name", "kind"), [
    (3, 400, "INVALID_ARGUMENT", ErrorKind.BAD_REQUEST),
    (8, 429, "RESOURCE_EXHAUSTED", ErrorKind.RATE_LIMITED),
    (13, 500, "INTERNAL", ErrorKind.SERVER),
    (14, 503, "UNAVAILABLE", ErrorKind.OVERLOADED),
    (16, 401, "UNAUTHENTICATED", ErrorKind.AUTH),
    (7, 403, "PERMISSION_DENIED", ErrorKind.AUTH),
    (5, 404, "NOT_FOUND", ErrorKind.NOT_FOUND),
    (400, 400, "INVALID_ARGUMENT", ErrorKind.BAD_REQUEST),  # an HTTP status already
])
def test_an_error_is_the_online_failure(code: int, status: int, name: str,
                                        kind: ErrorKind) -> None:
    """A Status becomes the failure the online API answers: its HTTP status and the
    ``{"error": {code, message, status}}`` body, classified as online."""
    out = ipfs_accel_gemini.batch_result(
        {"error": {"code": code, "message": "no"}, "metadata": {"key": "k"}}, "chat")
    assert out.state == "failed" and out.result is None and out.failure is not None
    failure = out.failure
    assert (failure.operation, failure.status) == ("chat", status)
    assert failure.data == {"error": {"code": status, "message": "no", "status": name}}
    assert json.loads(failure.content) == failure.data
    assert ipfs_accel_gemini.classify_error(failure).kind is kind


def test_an_error_keeps_its_details() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
    out = ipfs_accel_gemini.batch_result(
        {"error": {"code": 8, "message": "slow", "details": [retry]}, "metadata": {"key": "k"}},
        "chat")
    assert out.failure is not None
    assert ipfs_accel_gemini.classify_error(out.failure).retry_after == 7


@pytest.mark.parametrize(("code", "state"), [(4, "expired"), (1, "cancelled")])
def test_items_that_never_ran(code: int, state: str) -> None:
    out = ipfs_accel_gemini.batch_result(
        {"error": {"code": code, "message": "too late"}, "metadata": {"key": "k"}}, "chat")
    assert (out.state, out.message, out.failure, out.result) == (state, "too late", None, None)


@pytest.mark.parametrize("data", [
    [], {"response": generate_response()}, {"metadata": {"key": "k"}},
    {"metadata": {"key": "k"}, "response": "text"},
])
def test_unreadable_results_are_refused(data: Any) -> None:
    with pytest.raises(ValueError):
        ipfs_accel_gemini.batch_result(data, "chat")

"""The OpenAI Batch API's wire (``ipfs_accel.openai_batch``), step by step: each step's
request (method, path, headers, the multipart upload read back as a form), the Batch
object's statuses and counts, and each kind of result line, a malformed one included."""

from __future__ import annotations

import email.parser
import email.policy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ipfs_accel import (
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchLine,
    BatchPoll,
    BatchSubmit,
    Call,
    ChatResult,
    ConfigurationError,
    EmbedResult,
    Exchange,
    InvokeResult,
    Response,
    UnsupportedOperationError,
    VendorBatch,
)
from ipfs_accel import openai_compat as oa
from ipfs_accel._batch_types import BATCH_STATES, streamed_body
from ipfs_accel._secrets import Secret
from ipfs_accel._settings import EndpointConfig, EndpointSettings
from ipfs_accel.openai_batch import STATES, OpenAIBatches, describe, outcome

KEY = "sk-openai-batch-" + "k" * 20


def _endpoint() -> EndpointConfig:
    return EndpointConfig(endpoint_id="e", base_url="http://oai.test/v1",
                          api_key=Secret(KEY), model=None, options=None,
                          settings=EndpointSettings())


BATCHES = OpenAIBatches(send=oa.exchange)


def _chat(key: str = "q1", **params: Any) -> BatchLine:
    return BatchLine(key=key, call=Call(operation="chat", model="m-1", params=params,
                                        messages=[{"role": "user", "content": "hi"}]))


def _response(data: Any) -> Response:
    return Response(status=200, headers={}, content=json.dumps(data).encode(), data=data)


def test_a_calls_line_is_its_online_request_under_the_operations_url() -> None:
    line = BATCHES.exchange(_chat(temperature=0.5), _endpoint())
    assert isinstance(line, Exchange)
    online = oa.exchange(_chat(temperature=0.5).call, _endpoint())
    assert line.json == {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
                         "body": online.json}
    assert line.json["body"] == {"messages": [{"role": "user", "content": "hi"}],
                                 "model": "m-1", "temperature": 0.5}
    embed = BATCHES.exchange(BatchLine(key="e1", call=Call(
        operation="embed", model="e-1", inputs=["a", "b"])), _endpoint())
    assert isinstance(embed, Exchange)
    assert embed.json == {"custom_id": "e1", "method": "POST", "url": "/v1/embeddings",
                          "body": {"input": ["a", "b"], "model": "e-1"}}
    assert KEY not in json.dumps(line.json)


def test_an_operation_without_a_batch_route_is_refused() -> None:
    chat_only = OpenAIBatches(send=oa.exchange, urls={"chat": "/v1/chat/completions"})
    with pytest.raises(UnsupportedOperationError, match="'embed' calls cannot be batched"):
        chat_only.exchange(BatchLine(key="x", call=Call(operation="embed", model="e",
                                                        inputs=["a"])), _endpoint())
    streamed = OpenAIBatches(send=lambda call, endpoint: Exchange(path="/x", stream="sse"))
    with pytest.raises(ConfigurationError, match="no JSON body to batch"):
        streamed.exchange(_chat(), _endpoint())
    assert BATCHES.exchange(object(), _endpoint()) is None


def _form(exchange: Exchange) -> tuple[dict[str, str], dict[str, str], bytes]:
    """The upload as the server reads it: its headers, its fields, the file's bytes."""
    assert exchange.body is not None
    headers = dict(exchange.headers)
    content = b"".join(streamed_body(exchange.body, headers, sync=True))  # type: ignore[arg-type]
    assert int(headers["content-length"]) == len(content)
    head = f"Content-Type: {headers['content-type']}\r\n\r\n".encode()
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + content)
    fields: dict[str, str] = {}
    file = b""
    for part in form.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        if name == "file":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            file = payload
            fields["filename"] = str(part.get_filename())
            fields["file content-type"] = part.get_content_type()
        else:
            fields[name] = part.get_content()
    return headers, fields, file


def test_submit_uploads_the_lines_as_a_batch_file_then_creates_the_batch(tmp_path: Path) -> None:
    lines = tmp_path / "part-1.jsonl"
    rows = [BATCHES.exchange(_chat(f"q{n}"), _endpoint()).json for n in (1, 2)]  # type: ignore[union-attr]
    lines.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in rows))
    step = BatchSubmit(lines=lines, count=2, operation="chat", model="m-1",
                       label='job "7"/1')
    upload = BATCHES.exchange(step, _endpoint())
    assert isinstance(upload, Exchange)
    assert (upload.method, upload.path, upload.json) == ("POST", "/files", None)
    headers, fields, file = _form(upload)
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    assert fields == {"purpose": "batch", "filename": "job-7-1.jsonl",
                      "file content-type": "application/jsonl"}
    assert [json.loads(x) for x in file.decode().splitlines()] == rows
    assert file.endswith(b"\n")

    assert upload.parse is not None
    create = upload.parse(_response({"id": "file-abc", "object": "file", "bytes": 1,
                                     "created_at": 1, "filename": "x", "purpose": "batch",
                                     "status": "processed"}))
    assert isinstance(create, Exchange)
    assert (create.method, create.path) == ("POST", "/batches")
    assert dict(create.headers) == {"authorization": f"Bearer {KEY}"}
    assert create.json == {"input_file_id": "file-abc", "endpoint": "/v1/chat/completions",
                           "completion_window": "24h", "metadata": {"label": 'job "7"/1'}}
    assert create.parse is not None
    created = create.parse(_response({"id": "batch_1", "object": "batch",
                                      "status": "validating"}))
    assert isinstance(created, InvokeResult)
    assert created.data == VendorBatch(id="batch_1", state="validating",
                                       native_state="validating")
    embed = BatchSubmit(lines=lines, count=2, operation="embed", model="e-1", label="l")
    create = BATCHES.exchange(embed, _endpoint()).parse(_response({"id": "f"}))  # type: ignore[union-attr,misc]
    assert create.json["endpoint"] == "/v1/embeddings"  # type: ignore[union-attr]


def test_poll_cancel_and_fetch_requests() -> None:
    poll = BATCHES.exchange(BatchPoll(batch_id="batch_1"), _endpoint())
    cancel = BATCHES.exchange(BatchCancel(batch_id="batch_1"), _endpoint())
    batch = VendorBatch(id="batch_1", state="completed", outputs=("file-out", "file-err"))
    fetch = BATCHES.exchange(BatchFetch(batch=batch, output="file-err"), _endpoint())
    assert isinstance(poll, Exchange) and isinstance(cancel, Exchange)
    assert isinstance(fetch, Exchange)
    assert (poll.method, poll.path, poll.json) == ("GET", "/batches/batch_1", None)
    assert (cancel.method, cancel.path, cancel.json) == ("POST", "/batches/batch_1/cancel", None)
    assert (fetch.method, fetch.path) == ("GET", "/files/file-err/content")
    for exchange in (poll, cancel, fetch):
        assert dict(exchange.headers) == {"authorization": f"Bearer {KEY}"}
        assert KEY not in repr(exchange)
    assert poll.parse is not None
    assert poll.parse(_response({"id": "batch_1", "status": "in_progress"})).data.state == (  # type: ignore[union-attr]
        "in_progress")
    groq = OpenAIBatches(send=oa.exchange, download_accept="application/octet-stream")
    fetched = groq.exchange(BatchFetch(batch=batch, output="file_x/../y"), _endpoint())
    assert isinstance(fetched, Exchange)
    assert fetched.path == "/files/file_x%2F..%2Fy/content"  # an ID is one path segment
    assert fetched.headers["accept"] == "application/octet-stream"


@pytest.mark.parametrize("status", list(STATES))
def test_every_status_is_the_cores_state_of_the_same_name(status: str) -> None:
    assert STATES[status] == status and status in BATCH_STATES
    batch = describe({"id": "b", "object": "batch", "status": status,
                      "request_counts": {"total": 5, "completed": 2, "failed": 1}})
    assert (batch.state, batch.native_state) == (status, status)
    never_ran = {"expired": {"expired": 2}, "cancelled": {"cancelled": 2}}.get(status, {})
    assert batch.counts == BatchCounts(total=5, completed=2, failed=1, **never_ran)
    assert set(STATES) == set(BATCH_STATES)


def test_a_batch_objects_outputs_error_and_nulls() -> None:
    ended = describe({"id": "b", "status": "completed", "output_file_id": "file-o",
                      "error_file_id": "file-e", "errors": None, "in_progress_at": None,
                      "request_counts": {"total": 2, "completed": 1, "failed": 1}})
    assert ended.outputs == ("file-o", "file-e") and ended.error is None
    nulls = describe({"id": "b", "status": "completed", "output_file_id": None,
                      "error_file_id": "file-e", "request_counts": None, "metadata": None})
    assert nulls.outputs == ("file-e",) and nulls.counts == BatchCounts()
    failed = describe({"id": "b", "status": "failed", "errors": {"object": "list", "data": [
        {"code": "invalid_json_line", "message": "not JSON.", "line": 3, "param": None},
        {"code": "missing_required_parameter", "message": "no model."},
        {"code": "c3", "message": "m3"}, {"code": "c4", "message": "m4"}]}})
    assert failed.error == ("invalid_json_line: not JSON. (line 3); "
                            "missing_required_parameter: no model.; c3: m3; and 1 more")
    with pytest.raises(ValueError, match="batch b: unknown status 'paused'"):
        describe({"id": "b", "status": "paused"})
    with pytest.raises(msgspec.ValidationError, match="status"):
        describe({"id": "b"})


COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m-1",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                           "logprobs": None, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
                        "completion_tokens_details": {"reasoning_tokens": 1}}}


def _line(key: str, response: Any = None, error: Any = None) -> dict[str, Any]:
    return {"id": "batch_req_1", "custom_id": key, "response": response, "error": error}


def test_an_answered_item_is_the_online_result_with_its_usage() -> None:
    out = outcome(_line("q1", {"status_code": 200, "request_id": "req_1",
                               "body": COMPLETION}), "chat")
    assert out.key == "q1" and out.state == "completed" and out.failure is None
    assert isinstance(out.result, ChatResult)
    assert (out.result.text, out.result.finish_reason, out.result.model) == ("pong", "stop", "m-1")
    usage = out.result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens,
            usage.reasoning_tokens) == (9, 3, 12, 1)
    assert out.result.server_request_id == "req_1"
    embeddings = {"object": "list", "model": "e-1", "usage": {"prompt_tokens": 2,
                                                              "total_tokens": 2},
                  "data": [{"object": "embedding", "index": 1, "embedding": [0.5]},
                           {"object": "embedding", "index": 0, "embedding": [0.25]}]}
    out = outcome(_line("e1", {"status_code": 200, "body": embeddings}), "embed")
    assert isinstance(out.result, EmbedResult)
    assert out.result.vectors == [[0.25], [0.5]] and out.result.usage.input_tokens == 2


def test_an_items_error_answer_is_its_failure_as_the_online_api_sent_it() -> None:
    error = {"error": {"message": "bad", "type": "invalid_request_error", "param": None,
                       "code": "context_length_exceeded"}}
    out = outcome(_line("q2", {"status_code": 400, "request_id": "req_2", "body": error}),
                  "chat")
    assert out.state == "failed" and out.result is None and out.failure is not None
    assert (out.failure.status, out.failure.data, out.failure.operation) == (400, error, "chat")
    assert oa.classify_error(out.failure).kind.name == "CONTEXT_LENGTH"


@pytest.mark.parametrize(("code", "state"), [("batch_expired", "expired"),
                                             ("batch_cancelled", "cancelled")])
def test_an_item_that_never_ran_is_expired_or_cancelled(code: str, state: str) -> None:
    out = outcome(_line("q3", error={"code": code, "message": "never ran."}), "chat")
    assert (out.key, out.state, out.message) == ("q3", state, "never ran.")
    assert out.result is None and out.failure is None


def test_any_other_item_error_is_a_server_failure_keeping_its_code() -> None:
    out = outcome(_line("q4", error={"code": "server_error", "message": "oops"}), "chat")
    assert out.state == "failed" and out.failure is not None
    assert out.failure.status == 500
    assert out.failure.data == {"error": {"code": "server_error", "message": "oops"}}
    c = oa.classify_error(out.failure)
    assert (c.kind.name, c.retryable, c.code, c.message) == ("SERVER", True, "server_error", "oops")


@pytest.mark.parametrize(("line", "says"), [
    ("not an object", "must be a JSON object, not str"),
    ({"response": {"status_code": 200, "body": COMPLETION}}, "has no custom_id"),
    (_line("q5"), "batch result 'q5' has neither a response nor an error"),
    (_line("q6", {"status_code": "200", "body": COMPLETION}), "status_code is not an integer"),
    (_line("q7", {"status_code": 200, "body": {"choices": "none"}}),
     r"batch result 'q7': its chat answer could not be read: .*choices"),
    (_line("q8", {"status_code": 200, "body": None}), "batch result 'q8': its chat answer"),
])
def test_a_malformed_line_says_what_is_wrong(line: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        outcome(line, "chat")


def test_an_operation_without_a_reader_is_refused() -> None:
    with pytest.raises(ValueError, match="no reader for 'rerank' answers"):
        outcome(_line("q9", {"status_code": 200, "body": {}}), "rerank")

"""The claude plugin's Message Batches hooks: each step's request, the MessageBatch read back,
and every kind of result line (shapes from the spec: ``MessageBatch``,
``MessageBatchIndividualResponse``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ipfs_accel_claude
import msgspec
import pytest
from _claude_fixtures import KEY, WEATHER_TOOL, error_body, make_backend, message, tool_use, usage
from ipfs_accel import (
    BatchCancel,
    BatchFetch,
    BatchLine,
    BatchPoll,
    BatchSubmit,
    Call,
    ConfigurationError,
    EndpointConfig,
    Exchange,
    InvokeResult,
    LinesBody,
    Response,
    VendorBatch,
)
from ipfs_accel.testing import Recorder
from ipfs_accel_claude._case_batch import message_batch, result_line

BATCH = "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"
HI = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"}]


def _config(**settings: Any) -> EndpointConfig:
    backend, eid = make_backend(Recorder(), **settings)
    return backend._endpoint(eid).config


def _step(step: Any, **settings: Any) -> Exchange:
    out = ipfs_accel_claude.batch_exchange(step=step, endpoint=_config(**settings))
    assert isinstance(out, Exchange)
    return out


def _parsed(exchange: Exchange, body: dict[str, Any]) -> VendorBatch:
    assert exchange.parse is not None and exchange.response_type is not None
    raw = json.dumps(body).encode()
    resp = Response(status=200, headers={}, content=raw,
                    data=msgspec.json.decode(raw, type=exchange.response_type))
    out = exchange.parse(resp)
    assert isinstance(out, InvokeResult) and isinstance(out.data, VendorBatch)
    return out.data


def test_backend_declares_batches() -> None:
    """Up to 100,000 requests and 256 MB (less the document's frame) of chat calls."""
    limits = ipfs_accel_claude.backend_info().batch
    assert limits is not None
    assert limits.max_requests == 100_000
    assert 255_000_000 < limits.max_bytes <= 256_000_000
    assert limits.operations == {"chat"}


def test_line_is_the_online_body_without_stream() -> None:
    """A call's line: its custom_id and, as params, the body send builds (tools, system,
    renamed params), never with "stream"."""
    call = Call(operation="chat", model="claude-sonnet-4-6", messages=HI,
                params={"max_tokens": 50, "stop": "\n", "tools": [WEATHER_TOOL],
                        "stream": True, "top_k": 5})
    config = _config()
    line = _step(BatchLine(key="L_12-a", call=call))
    online = ipfs_accel_claude.send(call=call, endpoint=config).json
    assert line.json == {"custom_id": "L_12-a", "params": online}
    params = line.json["params"]
    assert "stream" not in params and params["system"] == "Be terse."
    assert params["stop_sequences"] == ["\n"] and params["tools"][0]["name"] == "get_weather"
    assert line.body is None and not line.headers  # nothing is sent: no key in it


@pytest.mark.parametrize("key", ["", "a b", "x" * 65, "naïve", "a/b", "id\n", "1.2"])
def test_bad_custom_id_is_refused(key: str) -> None:
    """A key the API would refuse as custom_id is a ConfigurationError naming it and the
    rule."""
    call = Call(operation="chat", model="claude-sonnet-4-6", messages=HI)
    with pytest.raises(ConfigurationError) as info:
        _step(BatchLine(key=key, call=call))
    assert repr(key) in str(info.value) and "^[a-zA-Z0-9_-]{1,64}$" in str(info.value)


def test_longest_custom_id_is_taken() -> None:
    call = Call(operation="chat", model="claude-sonnet-4-6", messages=HI)
    assert _step(BatchLine(key="k" * 64, call=call)).json["custom_id"] == "k" * 64


def test_submit_streams_the_lines_as_one_requests_document(tmp_path: Path) -> None:
    """POST /v1/messages/batches with the online headers; the body streamed from the file
    is {"requests": [line, ...]}, valid JSON, every line in order."""
    lines = [{"custom_id": f"item-{n}", "params": {"model": "m", "max_tokens": 5,
                                                   "messages": [{"role": "user", "content": "hi"}]}}
             for n in range(1, 4)]
    path = tmp_path / "part-1.jsonl"
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    ex = _step(BatchSubmit(lines=path, count=3, operation="chat", model="m", label="job-1"),
               anthropic_beta=["files-api-2025-04-14"])
    assert (ex.method, ex.path, ex.json) == ("POST", "/v1/messages/batches", None)
    assert ex.headers == {"x-api-key": KEY, "anthropic-version": "2023-06-01",
                          "anthropic-beta": "files-api-2025-04-14"}
    assert isinstance(ex.body, LinesBody) and ex.body.multipart is None
    sent = b"".join(ex.body.chunks())
    assert json.loads(sent) == {"requests": lines}
    assert ex.body.length() == len(sent)
    created = _parsed(ex, message_batch(BATCH, "in_progress"))
    assert (created.id, created.state, created.native_state) == (BATCH, "in_progress",
                                                                "in_progress")


def test_poll_and_cancel_requests() -> None:
    """GET /v1/messages/batches/{id} and POST .../cancel (no body), with bearer auth too."""
    poll = _step(BatchPoll(batch_id=BATCH), auth="bearer", anthropic_version="2023-06-01")
    assert (poll.method, poll.path) == ("GET", f"/v1/messages/batches/{BATCH}")
    assert poll.headers == {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
    cancel = _step(BatchCancel(batch_id=BATCH))
    assert (cancel.method, cancel.path) == ("POST", f"/v1/messages/batches/{BATCH}/cancel")
    assert cancel.json is None and cancel.body is None
    assert cancel.headers["x-api-key"] == KEY
    assert _parsed(cancel, message_batch(BATCH, "canceling")).state == "cancelling"
    odd = _step(BatchPoll(batch_id="a/b?c"))
    assert odd.path == "/v1/messages/batches/a%2Fb%3Fc"  # an ID is one path segment


def _counts(**given: int) -> dict[str, int]:
    return {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0, **given}


def _batch(status: str, *, cancel: bool = False, **counts: int) -> dict[str, Any]:
    body = message_batch(BATCH, "ended" if status == "ended" else status)
    body["request_counts"] = _counts(**counts)
    body["cancel_initiated_at"] = "2024-08-20T18:37:24.100435Z" if cancel else None
    return body


@pytest.mark.parametrize(("body", "state"), [
    (_batch("in_progress", processing=4), "in_progress"),
    (_batch("canceling", cancel=True, processing=4), "cancelling"),
    (_batch("ended", succeeded=2, errored=1, expired=1), "completed"),
    (_batch("ended", errored=4), "completed"),
    (_batch("ended", succeeded=1, canceled=3, cancel=True), "cancelled"),
    (_batch("ended", succeeded=4, cancel=True), "cancelled"),
    (_batch("ended", canceled=4), "cancelled"),
    (_batch("ended", expired=4), "expired"),
    (_batch("ended", expired=2, canceled=2), "completed"),
    (_batch("archiving", processing=1), "in_progress"),  # a status added later: poll on
])
def test_states(body: dict[str, Any], state: str) -> None:
    """processing_status (and, once ended, what happened) in the core's words."""
    got = _parsed(_step(BatchPoll(batch_id=BATCH)), body)
    assert got.state == state and got.native_state == body["processing_status"]


def test_counts_and_outputs() -> None:
    """Counts in the core's names, the total with those processing; the results_url is the
    output once ended, none before."""
    running = _parsed(_step(BatchPoll(batch_id=BATCH)), _batch("in_progress", processing=7))
    assert (running.counts.total, running.counts.done, running.outputs) == (7, 0, ())
    ended = message_batch(BATCH, "ended")
    ended["request_counts"] = _counts(succeeded=5, errored=4, canceled=3, expired=2)
    got = _parsed(_step(BatchPoll(batch_id=BATCH)), ended)
    c = got.counts
    assert (c.total, c.completed, c.failed, c.cancelled, c.expired) == (14, 5, 4, 3, 2)
    assert got.outputs == (f"https://api.anthropic.com/v1/messages/batches/{BATCH}/results",)
    assert got.inline is None and got.error is None
    archived = {**ended, "results_url": None}
    assert _parsed(_step(BatchPoll(batch_id=BATCH)), archived).outputs == ()


@pytest.mark.parametrize(("base_url", "url", "path"), [
    ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages/batches/b1/results",
     "https://api.anthropic.com/v1/messages/batches/b1/results"),
    ("https://gw.example/anthropic", "https://gw.example/anthropic/v1/messages/batches/b1/results",
     "https://gw.example/anthropic/v1/messages/batches/b1/results"),
    # a gateway relaying the API's URL: read through the gateway, the key never goes elsewhere
    ("https://gw.example/anthropic", "https://api.anthropic.com/v1/messages/batches/b1/results",
     "/v1/messages/batches/b1/results"),
    ("https://api.anthropic.com.evil.example", "https://api.anthropic.com/x",
     "/v1/messages/batches/b1/results"),
    ("http://127.0.0.1:9", "/v1/messages/batches/b1/results", "/v1/messages/batches/b1/results"),
])
def test_fetch_reads_the_results_url(base_url: str, url: str, path: str) -> None:
    """GET the results_url with the online headers, when it lies under the endpoint's base
    URL; the documented route under the base URL otherwise."""
    batch = VendorBatch(id="b1", state="completed", outputs=(url,))
    ex = _step(BatchFetch(batch=batch, output=url), base_url=base_url)
    assert (ex.method, ex.path, ex.json, ex.body) == ("GET", path, None, None)
    assert ex.headers == {"x-api-key": KEY, "anthropic-version": "2023-06-01",
                          "accept": "application/x-jsonl"}


def test_not_a_batch_step() -> None:
    assert ipfs_accel_claude.batch_exchange(step=object(), endpoint=_config()) is None


def test_succeeded_line_is_read_as_an_online_answer() -> None:
    """A succeeded line: the Message through the online reader: text, finish reason, tool
    calls, model, raw, and its usage (cache tokens counted as input)."""
    body = message("Sunny.", stop_reason="tool_use",
                   content=[{"citations": None, "text": "Sunny.", "type": "text"}, tool_use()],
                   use=usage(10, 4, cache_read=6))
    line = {"custom_id": "item-1", "result": {"type": "succeeded", "message": body}}
    out = ipfs_accel_claude.batch_result(data=line, operation="chat")
    assert (out.key, out.state, out.failure) == ("item-1", "completed", None)
    result = out.result
    assert result is not None and result.text == "Sunny."
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "tool_use")
    assert result.tool_calls is not None and result.tool_calls[0].arguments == {"city": "Paris"}
    assert result.model == "claude-sonnet-4-6" and result.raw == body
    u = result.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.cache_read_tokens) == (16, 4, 20, 6)


@pytest.mark.parametrize(("kind", "status"), [
    ("invalid_request_error", 400), ("authentication_error", 401), ("billing_error", 402),
    ("permission_error", 403), ("not_found_error", 404), ("request_too_large", 413),
    ("rate_limit_error", 429), ("api_error", 500), ("timeout_error", 504),
    ("overloaded_error", 529), ("some_new_error", 500),
])
def test_errored_line_is_a_failure(kind: str, status: int) -> None:
    """An errored line: a Failure with the status the API answers that error type with and
    the error envelope as the online API sends it."""
    envelope = error_body(kind, "bad things")
    line = {"custom_id": "item-2", "result": {"type": "errored", "error": envelope}}
    out = ipfs_accel_claude.batch_result(data=line, operation="chat")
    assert (out.key, out.state, out.result, out.message) == ("item-2", "failed", None, "bad things")
    failure = out.failure
    assert failure is not None
    assert (failure.operation, failure.status, failure.data) == ("chat", status, envelope)
    assert json.loads(failure.content) == envelope


def test_bare_error_is_put_in_an_envelope() -> None:
    """An errored line carrying only {type, message} is classified as the envelope would be."""
    line = {"custom_id": "k", "result": {"type": "errored", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}}
    out = ipfs_accel_claude.batch_result(data=line, operation="chat")
    assert out.failure is not None and out.failure.status == 529
    assert out.failure.data == {"type": "error", "request_id": None,
                                "error": {"type": "overloaded_error", "message": "Overloaded"}}
    c = ipfs_accel_claude.classify_error(failure=out.failure)
    assert (c.kind.value, c.retryable) == ("overloaded", True)


@pytest.mark.parametrize(("kind", "state"), [("canceled", "cancelled"), ("expired", "expired")])
def test_lines_that_never_ran(kind: str, state: str) -> None:
    out = ipfs_accel_claude.batch_result(data={"custom_id": "k", "result": {"type": kind}},
                                         operation="chat")
    assert (out.key, out.state, out.result, out.failure) == ("k", state, None, None)
    assert out.message


def test_case_result_lines_are_read() -> None:
    """The case's lines (each kind) are read as the kit expects."""
    states = [ipfs_accel_claude.batch_result(data=result_line("k", kind), operation="chat").state
              for kind in ("completed", "failed", "expired", "cancelled")]
    assert states == ["completed", "failed", "expired", "cancelled"]


@pytest.mark.parametrize("line", [
    [], "x", {"result": {"type": "expired"}}, {"custom_id": "k"},
    {"custom_id": "k", "result": {"type": "mystery"}},
    {"custom_id": "k", "result": {"type": "succeeded", "message": {"content": "no list"}}},
])
def test_unreadable_lines_raise_value_error(line: Any) -> None:
    """A line that is no MessageBatchIndividualResponse is a ValueError (the core counts
    its call as missing and reads on)."""
    with pytest.raises(ValueError):
        ipfs_accel_claude.batch_result(data=line, operation="chat")


def test_key_is_in_no_repr(tmp_path: Path) -> None:
    """The step exchanges carry the key in a header, masked in their repr."""
    for ex in (_step(BatchPoll(batch_id=BATCH)), _step(BatchSubmit(
            lines=tmp_path / "x", count=1, operation="chat", model=None, label="l"))):
        assert KEY not in repr(ex)

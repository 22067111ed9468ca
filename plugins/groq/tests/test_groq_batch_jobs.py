"""The groq plugin's batches: each call's line is its online request (as Groq's chat
takes it), every step goes with the key, downloads ask for octet-stream, and a whole job
against the Batch API as the plugin's conformance case plays it gives each call its
outcome, usage and Groq's timings included."""

from __future__ import annotations

import json
from typing import Any

import ipfs_accel_groq
import pytest
from ipfs_accel import (
    BadRequestError,
    BatchCancelledError,
    BatchExpiredError,
    ChatResult,
    Registry,
    ToolCall,
    UnsupportedOperationError,
)
from ipfs_accel._plugin import PluginHooks
from ipfs_accel.testing import FAST_RETRIES, OpenAIBatchPlayer, mock_backend
from ipfs_accel_groq import conformance_case

KEY = "gsk_batch_" + "k" * 24
PREFIX = "/openai/v1"
BID = "batch_01jh6xa7reempvjyh6n3yst2zw"


def _player(states: tuple[str, ...]) -> OpenAIBatchPlayer:
    case = conformance_case().batch
    assert case is not None
    return OpenAIBatchPlayer(case, states, prefix=PREFIX, batch_id=BID)


def _job(states: tuple[str, ...], *messages: Any) -> tuple[OpenAIBatchPlayer, Any]:
    player = _player(states)
    backend = mock_backend(ipfs_accel_groq, player)
    backend.create_endpoint("e", api_key=KEY, **FAST_RETRIES)
    items = [{"id": f"item-{n}", "messages": m if isinstance(m, list) else [
        {"role": "user", "content": m}], "params": {"max_tokens": 8}}
             for n, m in enumerate(messages, start=1)]
    return player, backend.submit_batch(items, label="nightly")


_CALL = ToolCall.of(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
TOOL_TURN = [{"role": "user", "content": "Weather?"}, ChatResult(text="", tool_calls=[_CALL]).message,
             {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]


def test_each_line_is_the_online_request_and_every_step_has_the_key() -> None:
    player, job = _job(("in_progress", "finalizing", "completed"), "ping", TOOL_TURN)
    assert job.wait(every=0) == "completed"
    list(job.results())
    assert [(x["custom_id"], x["method"], x["url"]) for x in player.lines] == [
        ("item-1", "POST", "/v1/chat/completions"), ("item-2", "POST", "/v1/chat/completions")]
    assert player.lines[0]["body"] == {"messages": [{"role": "user", "content": "ping"}],
                                       "model": "llama-3.3-70b-versatile",
                                       "max_completion_tokens": 8}
    # as Groq's chat takes it: no content: null beside the tool calls
    assert "content" not in player.lines[1]["body"]["messages"][1]
    assert [(r.method, r.url.path) for r in player.requests] == [
        ("POST", "/openai/v1/files"), ("POST", "/openai/v1/batches"),
        *[("GET", f"/openai/v1/batches/{BID}")] * 3,
        ("GET", f"/openai/v1/files/file_{BID}-out/content")]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in player.requests)
    assert player.requests[-1].headers["accept"] == "application/octet-stream"
    assert json.loads(player.requests[1].content) == {
        "input_file_id": f"file_{BID}-in", "endpoint": "/v1/chat/completions",
        "completion_window": "24h", "metadata": {"label": "nightly-1"}}


def test_a_job_gives_answers_errors_and_expired_items_as_the_case_plays_them() -> None:
    _, job = _job(("in_progress", "finalizing", "expired"), "ping", "fail", "expire")
    assert job.wait(every=0) == "expired"
    out = dict(job.results())
    answer = out["item-1"]
    assert isinstance(answer, ChatResult)
    assert (answer.text, answer.finish_reason, answer.request_id) == ("pong", "stop", "item-1")
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (9, 3)
    assert answer.raw["x_groq"] == {"id": "req_01jd5x"}
    assert isinstance(out["item-2"], BadRequestError)
    assert isinstance(out["item-3"], BatchExpiredError)
    assert KEY not in repr(job) + "".join(repr(v) + str(v) for v in out.values())


def test_a_cancelled_job_keeps_what_ran() -> None:
    player, job = _job(("in_progress",), "ping", "fail")
    job.status()
    assert job.cancel() == "cancelled"
    assert player.requests[-1].url.path == f"/openai/v1/batches/{BID}/cancel"
    out = dict(job.results())
    assert isinstance(out["item-1"], ChatResult)
    assert isinstance(out["item-2"], BatchCancelledError)


def test_an_answers_timings_and_a_capacity_error() -> None:
    hooks = Registry(plugins=[ipfs_accel_groq], entry_points=False).hooks("groq")
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                      "queue_time": 0.01, "total_time": 0.2}}
    out = hooks.batch_result({"custom_id": "c1", "response": {"status_code": 200,
                                                              "body": body}}, "chat")
    assert isinstance(out.result, ChatResult)
    assert out.result.usage.details == {"queue_time": 0.01, "total_time": 0.2}
    full = hooks.batch_result({"custom_id": "c2", "response": {"status_code": 498, "body": {
        "error": {"message": "flex tier at capacity", "type": "capacity_exceeded"}}}}, "chat")
    assert full.failure is not None
    assert hooks.classify_error(full.failure).kind.name == "OVERLOADED"


def test_only_chat_is_batched_and_a_batch_step_reports_no_usage() -> None:
    backend = mock_backend(ipfs_accel_groq, _player(()))
    backend.create_endpoint("e", api_key=KEY)
    with pytest.raises(UnsupportedOperationError, match="batches take chat, not 'embed'"):
        backend.submit_batch([{"id": "e1", "input": "hi"}])
    assert PluginHooks(ipfs_accel_groq).parse_usage("batch", {"id": BID, "usage": {
        "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}) is None

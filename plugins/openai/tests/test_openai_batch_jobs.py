"""The openai plugin's batches: each call's line is its online request, every step goes
with the endpoint's headers, and a whole job against the Batch API as the plugin's
conformance case plays it (the answers the kit replays) gives each call its outcome."""

from __future__ import annotations

import json
from typing import Any

import ipfs_accel_openai
from _openai_fixtures import EMBEDDINGS, KEY
from ipfs_accel import (
    BadRequestError,
    BatchCancelledError,
    BatchExpiredError,
    ChatResult,
    EmbedResult,
    Registry,
)
from ipfs_accel._plugin import PluginHooks
from ipfs_accel.testing import FAST_RETRIES, OpenAIBatchPlayer, mock_backend
from ipfs_accel_openai import conformance_case

PREFIX = "/v1"
BID = "batch_abc123"


def _player(states: tuple[str, ...]) -> OpenAIBatchPlayer:
    case = conformance_case().batch
    assert case is not None
    return OpenAIBatchPlayer(case, states, prefix=PREFIX, batch_id=BID)


def _job(states: tuple[str, ...], *texts: str, **calls: Any) -> tuple[OpenAIBatchPlayer, Any]:
    player = _player(states)
    backend = mock_backend(ipfs_accel_openai, player)
    backend.create_endpoint("e", api_key=KEY, organization="org-1", project="proj_1",
                            **FAST_RETRIES)
    items = [{"id": f"item-{n}", "messages": [{"role": "user", "content": t}],
              "params": {"max_tokens": 8}} for n, t in enumerate(texts, start=1)]
    return player, backend.submit_batch(items, label="nightly")


def test_each_line_is_the_online_request_and_every_step_has_the_endpoints_headers() -> None:
    player, job = _job(("in_progress", "finalizing", "completed"), "ping", "pong")
    assert job.wait(every=0) == "completed"
    list(job.results())
    assert player.lines == [
        {"custom_id": f"item-{n}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"messages": [{"role": "user", "content": t}], "model": "gpt-4o-mini",
                  "max_completion_tokens": 8}}
        for n, t in ((1, "ping"), (2, "pong"))]
    assert [(r.method, r.url.path) for r in player.requests] == [
        ("POST", "/v1/files"), ("POST", "/v1/batches"), *[("GET", f"/v1/batches/{BID}")] * 3,
        ("GET", f"/v1/files/file-{BID}-out/content")]
    for request in player.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert (request.headers["openai-organization"], request.headers["openai-project"]) == (
            "org-1", "proj_1")
    assert json.loads(player.requests[1].content) == {
        "input_file_id": f"file-{BID}-in", "endpoint": "/v1/chat/completions",
        "completion_window": "24h", "metadata": {"label": "nightly-1"}}


def test_a_job_gives_answers_errors_and_expired_items_as_the_case_plays_them() -> None:
    _, job = _job(("in_progress", "finalizing", "expired"), "ping", "fail", "expire")
    assert job.wait(every=0) == "expired"
    out = dict(job.results())
    answer = out["item-1"]
    assert isinstance(answer, ChatResult)
    assert (answer.text, answer.finish_reason, answer.request_id) == ("pong", "stop", "item-1")
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (9, 3)
    assert answer.server_request_id == "req_1"
    assert isinstance(out["item-2"], BadRequestError)
    assert isinstance(out["item-3"], BatchExpiredError)
    stats = job.backend.get_stats("e")
    assert (stats.batch_results, stats.batch_input_tokens, stats.batch_output_tokens) == (
        1, 9, 3)
    assert KEY not in repr(job) + "".join(repr(v) + str(v) for v in out.values())


def test_a_cancelled_job_keeps_what_ran() -> None:
    player, job = _job(("in_progress",), "ping", "fail")
    job.status()
    assert job.cancel() == "cancelled"
    assert player.requests[-1].url.path == f"/v1/batches/{BID}/cancel"
    out = dict(job.results())
    assert isinstance(out["item-1"], ChatResult)
    assert isinstance(out["item-2"], BatchCancelledError)


def test_an_embeddings_line_and_an_items_quota_error() -> None:
    hooks = Registry(plugins=[ipfs_accel_openai], entry_points=False).hooks("openai")
    out = hooks.batch_result({"custom_id": "e1", "response": {
        "status_code": 200, "request_id": "req_9", "body": EMBEDDINGS}, "error": None}, "embed")
    assert isinstance(out.result, EmbedResult)
    assert out.result.vectors == [[0.0023064255, -0.009327292], [0.5, 0.25]]
    assert out.result.usage.input_tokens == 8
    quota = hooks.batch_result({"custom_id": "q1", "response": {"status_code": 429, "body": {
        "error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                  "param": None, "code": "insufficient_quota"}}}}, "chat")
    assert quota.failure is not None
    assert hooks.classify_error(quota.failure).kind.name == "QUOTA_EXCEEDED"


def test_a_batch_step_reports_no_usage() -> None:
    """A Batch object's usage is the whole batch's: its items count it, one by one."""
    batch = {"id": BID, "status": "completed", "usage": {
        "input_tokens": 9, "output_tokens": 3, "total_tokens": 12}}
    assert PluginHooks(ipfs_accel_openai).parse_usage("batch", batch) is None

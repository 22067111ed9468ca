"""A whole batch job through ``ipfs_accel.openai_batch``, against the OpenAI Batch API as
its ``batch_case`` plays it (the answers the conformance kit replays): upload, create, a
poll per state, the output and error files, and every call's outcome."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from ipfs_accel import (
    BackendInfo,
    BadRequestError,
    BatchCancelledError,
    BatchExpiredError,
    BatchFailedError,
    BatchLimits,
    BatchOutcome,
    Call,
    ChatResult,
    Classification,
    ConfigurationError,
    EndpointConfig,
    Exchange,
    Failure,
    Registry,
    Usage,
    hookimpl,
)
from ipfs_accel import openai_compat as oa
from ipfs_accel.openai_batch import OpenAIBatches, batch_case
from ipfs_accel.testing import OpenAIBatchPlayer

KEY = "sk-openai-batch-flow-" + "k" * 20
BID = "batch_abc123"


class _Plugin:
    """A backend of the OpenAI wire, online and batched."""

    batches = OpenAIBatches(send=oa.exchange)

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="oaish", provider="oaish", default_base_url="http://oai.test/v1",
                           default_model="m-1", operations=frozenset({"chat", "embed"}),
                           batch=BatchLimits(max_requests=50, max_bytes=10_000))

    @hookimpl
    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        return oa.exchange(call, endpoint)

    @hookimpl
    def parse_usage(self, operation: str, data: Any) -> Usage | None:
        return None if operation == "batch" else oa.parse_usage(data)

    @hookimpl
    def classify_error(self, failure: Failure) -> Classification:
        return oa.classify_error(failure)

    @hookimpl
    def batch_exchange(self, step: Any, endpoint: EndpointConfig) -> Exchange | None:
        return self.batches.exchange(step, endpoint)

    @hookimpl
    def batch_result(self, data: Any, operation: str) -> BatchOutcome:
        return self.batches.result(data, operation)


CASE = batch_case(model="m-1", file_extra={"status": "processed"})


def _run(end: str, *texts: str) -> tuple[OpenAIBatchPlayer, Any]:
    player = OpenAIBatchPlayer(CASE, ("in_progress", "finalizing", end), batch_id=BID)
    registry = Registry(plugins=[_Plugin()], entry_points=False, telemetry=False,
                        transport=httpx2.MockTransport(player), environ={})
    backend = registry.get("oaish")
    backend.create_endpoint("e", api_key=KEY, max_retries=0)
    calls = [{"id": f"item-{n}", "messages": [{"role": "user", "content": t}]}
             for n, t in enumerate(texts, start=1)]
    return player, backend.submit_batch(calls, label="job")


def test_a_completed_batch_gives_each_answer_and_each_error_as_online() -> None:
    player, job = _run("completed", "ping", "fail", "ping")
    assert job.batches == [BID]
    assert job.wait(every=0) == "completed"
    assert (job.counts.total, job.counts.completed, job.counts.failed) == (3, 2, 1)
    out = dict(job.results())
    assert isinstance(out["item-1"], ChatResult) and out["item-1"].text == "pong"
    assert out["item-1"].request_id == "item-1"
    assert (out["item-1"].usage.input_tokens, out["item-1"].usage.output_tokens) == (9, 3)
    assert isinstance(out["item-2"], BadRequestError)
    assert "conformance: bad request" in str(out["item-2"])
    assert isinstance(out["item-3"], ChatResult)
    stats = job.backend.get_stats("e")
    assert (stats.batch_input_tokens, stats.batch_output_tokens) == (18, 6)
    assert [(r.method, r.url.path) for r in player.requests] == [
        ("POST", "/v1/files"), ("POST", "/v1/batches"),
        ("GET", f"/v1/batches/{BID}"), ("GET", f"/v1/batches/{BID}"),
        ("GET", f"/v1/batches/{BID}"),
        ("GET", f"/v1/files/file-{BID}-out/content"),
        ("GET", f"/v1/files/file-{BID}-err/content")]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in player.requests)
    created = json.loads(player.requests[1].content)
    assert created == {"input_file_id": f"file-{BID}-in", "endpoint": "/v1/chat/completions",
                       "completion_window": "24h", "metadata": {"label": "job-1"}}


class _FewInputs(_Plugin):
    """Embeddings batches of at most five texts in all."""

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="oaish", provider="oaish", default_base_url="http://oai.test/v1",
                           default_model="m-1", operations=frozenset({"chat", "embed"}),
                           batch=BatchLimits(max_requests=50, max_bytes=10_000, max_inputs=5,
                                             operations=frozenset({"chat", "embed"})))


def test_embeddings_are_split_at_the_providers_input_limit() -> None:
    """Requests of 2, 3, 1 and 4 texts under a limit of five inputs a batch: [2, 3], [1, 4];
    a request of six could never fit and is refused before anything is sent."""
    player = OpenAIBatchPlayer(CASE, (), batch_id=BID)
    registry = Registry(plugins=[_FewInputs()], entry_points=False, telemetry=False,
                        transport=httpx2.MockTransport(player), environ={})
    backend = registry.get("oaish")
    backend.create_endpoint("e", api_key=KEY, max_retries=0)
    told: list[list[str]] = []
    backend.submit_batch([{"id": f"e{n}", "input": ["t"] * n} for n in (2, 3, 1, 4)],
                         on_batch=lambda batch, keys: told.append(keys))
    assert told == [["e2", "e3"], ["e1", "e4"]]
    sent = len(player.requests)
    with pytest.raises(ConfigurationError, match=r"6 inputs, more than one of oaish's "
                                                 r"batches takes \(5\)"):
        backend.submit_batch([{"id": "big", "input": ["t"] * 6}])
    assert len(player.requests) == sent


@pytest.mark.parametrize("way", ["sync", "async"])
def test_a_create_refused_for_a_limit_is_retried_without_uploading_again(way: str) -> None:
    """The upload answered, the create refused 429 then 503: the retries send the create
    again with the same file, never the file (Exchange.resume)."""
    player = OpenAIBatchPlayer(CASE, ("completed",), batch_id=BID)
    refusals = [httpx2.Response(429, headers={"retry-after": "0"}, json={"error": {
        "message": "Too many requests", "type": "requests", "code": "rate_limit_exceeded"}}),
        httpx2.Response(503, json={"error": {"message": "busy", "type": "server_error"}})]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v1/batches" and refusals:
            player.requests.append(request)
            return refusals.pop(0)
        return player(request)

    registry = Registry(plugins=[_Plugin()], entry_points=False, telemetry=False,
                        transport=httpx2.MockTransport(handler), environ={})
    backend = registry.get("oaish")
    backend.create_endpoint("e", api_key=KEY, max_retries=3, initial_retry_delay=0.001,
                            retry_jitter=0)
    calls = [{"id": "q1", "prompt": "ping"}]
    job = (backend.submit_batch(calls) if way == "sync"
           else asyncio.run(backend.asubmit_batch(calls)))
    assert job.batches == [BID]
    assert [(r.method, r.url.path) for r in player.requests] == [
        ("POST", "/v1/files"), ("POST", "/v1/batches"), ("POST", "/v1/batches"),
        ("POST", "/v1/batches")]
    bodies = [json.loads(r.content) for r in player.requests[1:]]
    assert all(b["input_file_id"] == f"file-{BID}-in" for b in bodies)
    assert backend.get_stats("e").retries == 2


def test_an_expired_batch_gives_its_answers_and_expires_the_rest() -> None:
    _, job = _run("expired", "ping", "expire")
    assert job.wait(every=0) == "expired"
    assert job.counts.expired == 1
    out = dict(job.results())
    assert isinstance(out["item-1"], ChatResult)
    assert isinstance(out["item-2"], BatchExpiredError) and out["item-2"].retryable
    assert "completion window expired" in str(out["item-2"])


def test_a_cancelled_batch_keeps_what_ran() -> None:
    player, job = _run("completed", "ping", "fail")
    job.status()
    assert job.cancel() == "cancelled"
    assert player.requests[-1].url.path == f"/v1/batches/{BID}/cancel"
    out = dict(job.results())
    assert isinstance(out["item-1"], ChatResult)
    assert isinstance(out["item-2"], BatchCancelledError)


def test_a_failed_batch_fails_every_call_with_its_errors() -> None:
    _, job = _run("failed", "ping", "ping")
    assert job.wait(every=0) == "failed"
    out = dict(job.results())
    assert all(isinstance(v, BatchFailedError) for v in out.values())
    assert "invalid_json_line: This line is not parseable as valid JSON. (line 1)" in str(
        out["item-1"])
    text = repr(job) + "".join(repr(v) + str(v) for v in out.values())
    assert KEY not in text


@pytest.mark.parametrize("state", ["validating", "in_progress", "finalizing", "completed",
                                   "failed", "expired", "cancelling", "cancelled"])
def test_the_cases_batch_in_each_state_has_no_nulls_and_reads_back(state: str) -> None:
    outcomes = [("item-1", "completed"), ("item-2", "failed"), ("item-3", "expired")]
    body = CASE.described(BID, state, outcomes).json
    assert None not in body.values() and body["status"] == state
    assert {"id", "object", "endpoint", "input_file_id", "completion_window", "status",
            "created_at"} <= set(body)
    assert set(body["request_counts"]) == {"total", "completed", "failed"}

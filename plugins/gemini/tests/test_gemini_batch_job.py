"""Batch jobs through the core with the gemini plugin: submit, poll, cancel and results
against a scripted Batch API (the answers shaped as the kit's case shapes them)."""

from __future__ import annotations

import json

import httpx2
import ipfs_accel_gemini
from _gemini_fixtures import KEY, backend, endpoint
from ipfs_accel import BadRequestError, BatchCancelledError, Call, ChatResult, RateLimitError
from ipfs_accel.testing import Recorder
from ipfs_accel_gemini._batch_case import operation


class _Provider:
    """The API's side: created pending, running at the first poll, then done."""

    def __init__(self, *states: str) -> None:
        self.states = list(states)
        self.cancelled = False

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith(":batchGenerateContent"):
            body = json.loads(request.content)
            requests = body["batch"]["inputConfig"]["requests"]["requests"]
            self.items = tuple((r["metadata"]["key"], "completed" if "fail" not in json.dumps(
                r["request"]) else "failed") for r in requests)
            return httpx2.Response(200, json=operation("b1", "JOB_STATE_PENDING", self.items))
        if path.endswith(":cancel"):
            self.cancelled = True
            return httpx2.Response(200, json={})
        state = "cancelled" if self.cancelled else self.states.pop(0)
        return httpx2.Response(200, json=operation("b1", state, self.items))


def test_a_job_through_the_core() -> None:
    """submit_batch sends one body with every line; polls read the state; the results are
    the inline answers, a failed item classified as the online 400."""
    provider = _Provider("BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED")
    recorder = Recorder(provider)
    b = backend(recorder)
    eid = endpoint(b)
    calls = [{"id": "one", "messages": [{"role": "user", "content": "ping"}]},
             {"id": "two", "messages": [{"role": "user", "content": "fail"}]}]
    job = b.submit_batch(calls, endpoint_id=eid, label="night")
    assert job.status() == "in_progress"
    assert job.status() == "completed"
    out = dict(job.results())
    assert isinstance(out["one"], ChatResult) and out["one"].text == "pong"
    assert isinstance(out["two"], BadRequestError)
    paths = [r.url.path for r in recorder.requests]
    assert paths == ["/v1beta/models/gemini-2.5-flash:batchGenerateContent",
                     "/v1beta/batches/b1", "/v1beta/batches/b1"]
    submitted = recorder.body(0)["batch"]
    assert submitted["displayName"].startswith("night")
    assert [r["metadata"]["key"] for r in submitted["inputConfig"]["requests"]["requests"]] \
        == ["one", "two"]
    assert all(r.headers["x-goog-api-key"] == KEY and KEY not in str(r.url)
               for r in recorder.requests)
    stats = b.get_stats(eid)
    assert (stats.batch_input_tokens, stats.batch_output_tokens) == (7, 2)


def test_a_cancelled_job_through_the_core() -> None:
    """cancel posts :cancel, then polls for the batch's state; the items that never ran
    are cancelled."""
    provider = _Provider("JOB_STATE_RUNNING")
    recorder = Recorder(provider)
    b = backend(recorder)
    eid = endpoint(b)
    job = b.submit_batch([{"id": "one", "messages": [{"role": "user", "content": "x"}]}],
                         endpoint_id=eid)
    assert job.status() == "in_progress"
    provider.items = (("one", "cancelled"),)
    assert job.cancel() == "cancelled"
    assert [(r.method, r.url.path) for r in recorder.requests][-2:] == [
        ("POST", "/v1beta/batches/b1:cancel"), ("GET", "/v1beta/batches/b1")]
    out = dict(job.results())
    assert isinstance(out["one"], BatchCancelledError)
    assert job.counts.cancelled == 1


def test_a_rate_limited_item_is_classified_as_the_online_429() -> None:
    rate = ipfs_accel_gemini.batch_result(
        {"error": {"code": 8, "message": "quota"}, "metadata": {"key": "k"}}, "chat")
    assert rate.failure is not None
    recorder = Recorder(httpx2.Response(200, json=operation("b1", "JOB_STATE_PENDING", ())))
    b = backend(recorder)
    eid = endpoint(b)
    error = b._engine.x.error(b._endpoint(eid).config, Call(operation="chat", request_id="k"),
                              rate.failure)
    assert isinstance(error, RateLimitError) and error.retryable

"""A claude batch job through the library (``backend.submit_batch`` ... ``job.results``)
against a fake of the Message Batches API that checks each request as the API would."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import pytest
from _claude_fixtures import KEY, error_body, make_backend, message, usage
from ipfs_accel import (
    BadRequestError,
    BatchCancelledError,
    BatchExpiredError,
    ChatResult,
    ConfigurationError,
    OverloadedError,
)
from ipfs_accel_claude._case_batch import message_batch

_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class Provider:
    """The API's side: a batch is created from the posted requests, is in progress at the
    first poll and ended at the next; each request's outcome is what its message asks for
    ("fail", "busy", "expire", "cancel"; anything else is answered)."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.batches: dict[str, list[dict[str, Any]]] = {}
        self.polls = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        assert request.headers["x-api-key"] == KEY
        assert request.headers["anthropic-version"] == "2023-06-01"
        path = request.url.path
        if request.method == "POST" and path == "/v1/messages/batches":
            body = json.loads(request.content)
            assert set(body) == {"requests"} and 1 <= len(body["requests"]) <= 100_000
            for item in body["requests"]:
                assert set(item) == {"custom_id", "params"} and _ID.match(item["custom_id"])
                assert "stream" not in item["params"]
            bid = f"msgbatch_{len(self.batches) + 1}"
            self.batches[bid] = body["requests"]
            return httpx2.Response(200, json=message_batch(bid, "in_progress"))
        bid = path.split("/")[4]
        if path.endswith("/results"):
            return self._results(bid)
        self.polls += 1
        state = "cancelled" if path.endswith("/cancel") else (
            "ended" if self.polls > 1 else "in_progress")
        kinds = [(item["custom_id"], self._kind(item)) for item in self.batches[bid]]
        return httpx2.Response(200, json=message_batch(bid, state, kinds))

    @staticmethod
    def _kind(item: dict[str, Any]) -> str:
        text = item["params"]["messages"][-1]["content"]
        return {"fail": "failed", "busy": "failed", "expire": "expired",
                "cancel": "cancelled"}.get(text, "completed")

    def _results(self, bid: str) -> httpx2.Response:
        rows = []
        for item in self.batches[bid]:
            text = item["params"]["messages"][-1]["content"]
            kind = self._kind(item)
            if kind == "completed":
                result: dict[str, Any] = {"type": "succeeded", "message": message(
                    f"re: {text}", use=usage(5, 2))}
            elif kind == "failed":
                error = ("overloaded_error", "Overloaded") if text == "busy" else (
                    "invalid_request_error", "messages: text content blocks must be non-empty")
                result = {"type": "errored", "error": error_body(*error)}
            else:
                result = {"type": "canceled" if kind == "cancelled" else "expired"}
            rows.append(json.dumps({"custom_id": item["custom_id"], "result": result}))
        return httpx2.Response(200, content="\n".join(rows).encode() + b"\n",
                               headers={"content-type": "application/x-jsonl"})


def _calls(*texts: str) -> list[dict[str, Any]]:
    return [{"id": f"item-{n}", "messages": [{"role": "user", "content": t}]}
            for n, t in enumerate(texts, start=1)]


def test_job_end_to_end() -> None:
    """Submitted as one batch, polled to its end, every result read as an online call's:
    answers with usage, the errors classified, expired and canceled requests."""
    provider = Provider()
    backend, eid = make_backend(provider)
    job = backend.submit_batch(_calls("hi", "fail", "busy", "expire", "cancel", "bye"),
                               endpoint_id=eid)
    assert job.batches == ["msgbatch_1"]
    assert job.wait(every=0) == "completed"
    out = dict(job.results())
    assert list(out) == [f"item-{n}" for n in range(1, 7)]
    first, last = out["item-1"], out["item-6"]
    assert isinstance(first, ChatResult) and first.text == "re: hi"
    assert isinstance(last, ChatResult) and last.text == "re: bye"
    assert (first.usage.input_tokens, first.usage.output_tokens) == (5, 2)
    assert first.request_id == "item-1"
    assert isinstance(out["item-2"], BadRequestError)
    assert "non-empty" in str(out["item-2"])
    assert isinstance(out["item-3"], OverloadedError) and out["item-3"].retryable
    assert isinstance(out["item-4"], BatchExpiredError)
    assert isinstance(out["item-5"], BatchCancelledError)
    c = job.counts
    assert (c.total, c.completed, c.failed, c.expired, c.cancelled) == (6, 2, 2, 1, 1)
    stats = backend.get_stats(eid)
    assert (stats.batch_input_tokens, stats.batch_output_tokens) == (10, 4)
    paths = [(r.method, r.url.path) for r in provider.requests]
    assert paths == [("POST", "/v1/messages/batches"),
                     ("GET", "/v1/messages/batches/msgbatch_1"),
                     ("GET", "/v1/messages/batches/msgbatch_1"),
                     ("GET", "/v1/messages/batches/msgbatch_1/results")]
    for r in provider.requests:
        assert KEY not in str(r.url) and KEY.encode() not in r.content


def test_cancel() -> None:
    """job.cancel posts .../cancel; the ended batch is cancelled, its results still read."""
    provider = Provider()
    backend, eid = make_backend(provider)
    job = backend.submit_batch(_calls("hi", "cancel"), endpoint_id=eid)
    assert job.cancel() == "cancelled"
    assert provider.requests[-1].url.path == "/v1/messages/batches/msgbatch_1/cancel"
    out = dict(job.results())
    assert isinstance(out["item-1"], ChatResult)
    assert isinstance(out["item-2"], BatchCancelledError)


def test_followed_again_by_id() -> None:
    """get_batch(job.id) follows the same batch from a new job."""
    provider = Provider()
    backend, eid = make_backend(provider)
    job = backend.submit_batch(_calls("hi"), endpoint_id=eid)
    again = backend.get_batch(job.id, endpoint_id=eid)
    assert again.wait(every=0) == "completed"
    assert [k for k, _ in again.results()] == ["item-1"]


@pytest.mark.parametrize("key", ["line 1", "a" * 65, "é"])
def test_bad_key_refused_before_anything_is_sent(key: str) -> None:
    """A key that is no custom_id is refused while the batch is prepared: nothing is sent,
    and the error names the key and the rule."""
    provider = Provider()
    backend, eid = make_backend(provider)
    calls = [*_calls("hi"), {"id": key, "messages": [{"role": "user", "content": "x"}]}]
    with pytest.raises(ConfigurationError) as info:
        backend.submit_batch(calls, endpoint_id=eid)
    assert repr(key) in str(info.value) and "^[a-zA-Z0-9_-]{1,64}$" in str(info.value)
    assert provider.requests == []

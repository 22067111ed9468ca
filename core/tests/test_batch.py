"""Provider batches through the core: splitting, the lifecycle, results, stats, resume."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import _batch_plugin
import httpx2
import pytest
from _batch_plugin import Provider
from ipfs_accel import (
    BadRequestError,
    BatchCancelledError,
    BatchExpiredError,
    BatchFailedError,
    BatchMissingError,
    ChatResult,
    ConfigurationError,
    Registry,
    UnsupportedOperationError,
)

KEY = "sk-batch-canary-" + "k" * 20


def _backend(provider: Provider, **settings: Any) -> Any:
    registry = Registry(plugins=[_batch_plugin], entry_points=False, telemetry=False,
                        transport=provider.transport)
    backend = registry.get("batchy")
    backend.create_endpoint("e", api_key=KEY, initial_retry_delay=0.001, retry_jitter=0,
                            **settings)
    return backend


def _calls(*texts: str) -> list[dict[str, Any]]:
    return [{"id": f"q{n}", "messages": [{"role": "user", "content": t}]}
            for n, t in enumerate(texts, start=1)]


def test_calls_are_split_at_the_providers_limit_and_by_model() -> None:
    provider = Provider()
    backend = _backend(provider)
    calls = [*_calls("a", "b", "c", "d"), {"id": "other", "prompt": "e", "model": "m-2"}]
    told: list[tuple[str, list[str]]] = []
    job = backend.submit_batch(calls, on_batch=lambda b, keys: told.append((b.id, keys)))
    # three per batch (BatchLimits.max_requests); the m-2 call in a batch of its own
    assert [keys for _, keys in told] == [["q1", "q2", "q3"], ["q4"], ["other"]]
    assert job.batches == [bid for bid, _ in told]
    assert [line["custom_id"] for line in provider.lines_of(job.batches[0])] == ["q1", "q2", "q3"]
    assert provider.lines_of(job.batches[2])[0]["body"]["model"] == "m-2"


def test_a_bad_call_is_refused_before_anything_is_sent() -> None:
    provider = Provider()
    backend = _backend(provider)
    bad = [*_calls("a", "b", "c", "d"), {"id": "x", "messages": "not a list"}]
    with pytest.raises(ConfigurationError, match=r"batch call 5: .messages. must be"):
        backend.submit_batch(bad)
    with pytest.raises(ConfigurationError, match=r"batch call 2 \(.q1.\): the key is used twice"):
        backend.submit_batch(_calls("a") + _calls("b"))
    with pytest.raises(UnsupportedOperationError, match="batches take chat, not 'embed'"):
        backend.submit_batch([{"input": "x"}])
    assert provider.requests == []


def test_a_job_waits_to_its_end_and_gives_every_call_one_outcome() -> None:
    provider = Provider()
    backend = _backend(provider)
    job = backend.submit_batch(_calls("hi", "fail", "expire", "lose", "there"))
    seen: list[tuple[str, int]] = []
    assert job.wait(lambda state, counts: seen.append((state, counts.done)), every=0) == (
        "completed")
    assert seen[-1] == ("completed", 3 + 1)  # the lost one is in no count
    out = dict(job.results())
    assert isinstance(out["q1"], ChatResult) and out["q1"].text == "re: hi"
    assert out["q1"].request_id == "q1"
    assert isinstance(out["q2"], BadRequestError) and out["q2"].request_id == "q2"
    assert out["q2"].attempts == 1  # the provider ran it once
    assert isinstance(out["q3"], BatchExpiredError) and out["q3"].retryable
    assert out["q3"].attempts == 0  # it never ran
    assert isinstance(out["q4"], BatchMissingError)
    assert isinstance(out["q5"], ChatResult)
    assert len(out) == 5
    stats = backend.get_stats("e")
    assert (stats.batch_results, stats.batch_input_tokens, stats.batch_output_tokens) == (
        2, 6, 4)
    assert stats.input_tokens == 6 and stats.total_tokens == 10
    list(job.results())  # read again: counted once
    list(backend.get_batch(job.id, "e").results())  # by another job object too
    assert backend.get_stats("e").batch_input_tokens == 6


def test_a_job_followed_again_by_its_id_gives_the_same_answers() -> None:
    provider = Provider()
    backend = _backend(provider)
    job = backend.submit_batch(_calls("a", "b", "c", "d"))
    again = _backend(provider).get_batch(job.id, "e")
    assert again.batches == job.batches
    again.wait(every=0)
    assert sorted(k for k, v in again.results() if isinstance(v, ChatResult)) == [
        "q1", "q2", "q3", "q4"]
    with pytest.raises(ConfigurationError, match="not a batch job ID"):
        backend.get_batch("batch_123")


def test_a_rate_limited_poll_is_retried_after_retry_after() -> None:
    provider = Provider()
    backend = _backend(provider, max_retries=2)
    job = backend.submit_batch(_calls("a"))
    provider.faults.append(httpx2.Response(429, headers={"retry-after": "0"},
                                           json={"error": {"message": "slow down"}}))
    assert job.wait(every=0) == "completed"
    assert backend.get_stats("e").retries == 1


def test_a_download_cut_short_is_read_again_without_a_line_twice() -> None:
    provider = Provider()
    backend = _backend(provider, max_retries=2)
    job = backend.submit_batch(_calls("a", "b", "c"))
    job.wait(every=0)
    provider.cut_once = True
    out = list(job.results())
    assert [k for k, _ in out] == ["q1", "q2", "q3"]
    assert all(isinstance(v, ChatResult) for _, v in out)
    downloads = [r for r in provider.requests if r.url.path.endswith("/content")]
    assert len(downloads) == 2


def test_a_failed_batch_fails_each_of_its_calls_and_cancel_cancels() -> None:
    provider = Provider(end="failed")
    backend = _backend(provider)
    job = backend.submit_batch(_calls("a", "b"))
    assert job.wait(every=0) == "failed"
    out = dict(job.results())
    assert all(isinstance(v, BatchFailedError) for v in out.values())
    assert "not valid" in str(out["q1"])
    provider2 = Provider()
    backend2 = _backend(provider2)
    job2 = backend2.submit_batch(_calls("a", "b"))
    assert job2.cancel() == "cancelled"
    assert all(isinstance(v, BatchCancelledError) for _, v in job2.results())


def test_await_batch_on_the_event_loop() -> None:
    provider = Provider()
    backend = _backend(provider)

    async def run() -> list[str]:
        job = await backend.asubmit_batch(_calls("a", "b"))
        await job.await_batch(every=0)
        return [k for k, _ in job.results()]

    assert asyncio.run(run()) == ["q1", "q2"]


def test_openai_batch_lines_are_taken_as_they_are() -> None:
    provider = Provider()
    backend = _backend(provider)
    job = backend.submit_batch([
        {"custom_id": "r-1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m-3", "messages": [{"role": "user", "content": "a"}],
                  "temperature": 0.5}}])
    [line] = provider.lines_of(job.batches[0])
    assert line["custom_id"] == "r-1" and line["body"]["model"] == "m-3"


def test_a_prompt_becomes_the_call_the_batch_takes() -> None:
    """The backend generates online, its batches only chat: a completions line's prompt (a
    generate call online) and our prompt line are batched as chat turns, not refused."""
    provider = Provider()
    backend = _backend(provider)
    job = backend.submit_batch([
        {"custom_id": "r-1", "method": "POST", "url": "/v1/completions",
         "body": {"prompt": "a"}},
        {"id": "q-2", "prompt": "b"}])
    lines = provider.lines_of(job.batches[0])
    assert [line["body"]["messages"] for line in lines] == [
        [{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]


def test_a_batch_never_exceeds_max_bytes_counting_each_newline() -> None:
    """Two lines that fill max_bytes exactly without their newlines do not fit together."""
    provider = Provider()
    backend = _backend(provider)
    empty = len(json.dumps({"custom_id": "q1", "body": {"model": "m-1", "messages": [
        {"role": "user", "content": ""}]}}, separators=(",", ":")))
    text = "x" * (_batch_plugin.MAX_BYTES // 2 - empty)
    job = backend.submit_batch(_calls(text, text))
    assert len(job.batches) == 2
    sizes = [provider.sizes[provider.batches[b]["input_file_id"]] for b in job.batches]
    assert sizes == [_batch_plugin.MAX_BYTES // 2 + 1] * 2


def test_no_key_in_the_job_or_its_errors() -> None:
    provider = Provider(end="failed")
    backend = _backend(provider)
    job = backend.submit_batch(_calls("a"))
    job.wait(every=0)
    text = repr(job) + job.id + "".join(repr(v) + str(v) for _, v in job.results())
    assert KEY not in text
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in provider.requests)

"""The call engine over httpx2's MockTransport: retries, request IDs, errors, stats, streams."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
import stamina.instrumentation as instr
from ipfs_accel import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    OverloadedError,
    QueueFullError,
    QuotaExceededError,
    RateLimitError,
    Registry,
    ServerError,
    StreamInterruptedError,
    TransportError,
    UnsupportedOperationError,
)

MSG = [{"role": "user", "content": "hi"}]
FAST = {"initial_retry_delay": 0.001, "max_retry_delay": 0.01}


def ok_body(text: str = "hello", usage: tuple[int, int] = (3, 2)) -> dict[str, Any]:
    return {
        "model": "echo-1",
        "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
    }


def backend(handler: Callable[[httpx2.Request], httpx2.Response], **defaults: Any) -> ipfs_accel.Backend:
    registry = Registry(
        plugins=[_echo_plugin], entry_points=False, transport=httpx2.MockTransport(handler)
    )
    return registry.get("echo", **defaults)


def scripted(*responses: httpx2.Response | Exception) -> tuple[Callable[..., httpx2.Response], list]:
    seen: list[httpx2.Request] = []
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def test_chat_result_usage_and_request_ids():
    """A chat call returns the uniform result with usage, our request ID and the server's."""
    handler, seen = scripted(httpx2.Response(200, json=ok_body(), headers={"x-request-id": "srv-9"}))
    b = backend(handler)
    r = b.chat(MSG, request_id="abc-1")
    assert (r.text, r.finish_reason, r.model) == ("hello", "stop", "echo-1")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (3, 2, 5)
    assert r.request_id == "abc-1" and r.server_request_id == "srv-9"
    assert seen[0].headers["x-request-id"] == "abc-1"
    assert json.loads(seen[0].content)["model"] == "echo-1"


def test_generated_request_ids_are_unique():
    """Without a request_id the core generates a fresh one per call."""
    handler, seen = scripted(httpx2.Response(200, json=ok_body()))
    b = backend(handler)
    ids = {b.chat(MSG).request_id for _ in range(20)}
    assert len(ids) == 20
    assert {r.headers["x-request-id"] for r in seen} == ids


def test_generated_request_ids_have_their_form():
    ids = [ipfs_accel.new_request_id() for _ in range(200)]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_repeats_its_parents_request_ids():
    """The ID generator is seeded again in a forked child: the same state in two
    processes would give both the same IDs."""
    ipfs_accel.new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, ",".join(ipfs_accel.new_request_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        child = set(f.read().split(","))
    parent = {ipfs_accel.new_request_id() for _ in range(5)}
    assert len(child) == 5 and not child & parent


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_a_retried_calls_last_error_does_not_chain_its_first_attempts(mode: str):
    """Each attempt's failure is its own: the error a call ends with after retries carries
    no earlier attempt's error as its context (a traceback shows the last attempt only)."""
    handler, _ = scripted(httpx2.Response(500, json={"error": "first"}),
                          httpx2.Response(503, json={"error": "last"}))
    b = backend(handler, max_retries=1, initial_retry_delay=0.001)
    with pytest.raises(ipfs_accel.CallError) as info:
        if mode == "sync":
            b.chat(MSG)
        elif mode == "async":
            asyncio.run(b.achat(MSG))
        else:
            async def read() -> None:
                async for _ in b.astream_chat(MSG):
                    pass

            asyncio.run(read())
    assert info.value.status == 503 and info.value.attempts == 2
    seen, cause = [], info.value.__context__
    while cause is not None:
        seen.append(cause)
        cause = cause.__context__
    assert not [e for e in seen if isinstance(e, ipfs_accel.CallError)]


def test_429_retry_after_is_honoured_with_same_request_id():
    """429 with Retry-After waits that long, reuses the request ID, and counts the retry."""
    handler, seen = scripted(
        httpx2.Response(429, headers={"retry-after": "0.2"}, json={"error": {"message": "slow"}}),
        httpx2.Response(200, json=ok_body()),
    )
    b = backend(handler, **FAST)
    start = time.monotonic()
    r = b.chat(MSG, request_id="rid-7")
    elapsed = time.monotonic() - start
    assert r.text == "hello"
    assert elapsed >= 0.2
    assert [s.headers["x-request-id"] for s in seen] == ["rid-7", "rid-7"]
    stats = b.get_stats()
    assert (stats.retries, stats.successful_requests, stats.total_requests) == (1, 1, 1)
    assert stats.retry_wait_seconds >= 0.2


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(500, ServerError), (502, ServerError), (503, OverloadedError), (529, OverloadedError),
     (429, RateLimitError)],
)
def test_retryable_statuses_give_up_after_max_retries(status, exc_type):
    """Retryable statuses are tried max_retries + 1 times, then the typed error is raised."""
    handler, seen = scripted(httpx2.Response(status, json={"error": {"message": "nope"}}))
    b = backend(handler, max_retries=3, **FAST)
    with pytest.raises(exc_type) as info:
        b.chat(MSG, request_id="r-1")
    assert len(seen) == 4
    err = info.value
    assert (err.attempts, err.status, err.request_id, err.backend) == (4, status, "r-1", "echo")
    assert err.message == "nope"
    stats = b.get_stats()
    assert (stats.failed_requests, stats.retries, stats.total_requests) == (1, 3, 1)


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(400, BadRequestError), (401, AuthenticationError), (403, AuthenticationError),
     (404, ipfs_accel.NotFoundError), (422, BadRequestError)],
)
def test_client_errors_are_not_retried(status, exc_type):
    """4xx errors fail at once (one attempt)."""
    handler, seen = scripted(httpx2.Response(status, json={"error": {"message": "bad"}}))
    b = backend(handler, **FAST)
    with pytest.raises(exc_type) as info:
        b.chat(MSG)
    assert len(seen) == 1 and info.value.attempts == 1


def test_quota_429_is_not_retried():
    """A plugin's classification wins: insufficient_quota is final."""
    handler, seen = scripted(
        httpx2.Response(429, json={"error": {"message": "pay", "code": "insufficient_quota"}})
    )
    b = backend(handler, **FAST)
    with pytest.raises(QuotaExceededError) as info:
        b.chat(MSG)
    assert len(seen) == 1 and info.value.code == "insufficient_quota"


def test_x_should_retry_false_stops_retries():
    """x-should-retry: false overrides a retryable status."""
    handler, seen = scripted(httpx2.Response(500, headers={"x-should-retry": "false"}))
    b = backend(handler, **FAST)
    with pytest.raises(ServerError):
        b.chat(MSG)
    assert len(seen) == 1


def test_transport_errors_are_retried_then_succeed():
    """A dropped connection is retried; the call then succeeds."""
    handler, seen = scripted(httpx2.ConnectError("refused"), httpx2.Response(200, json=ok_body()))
    b = backend(handler, **FAST)
    assert b.chat(MSG).text == "hello"
    assert len(seen) == 2


def test_transport_error_exhausted_is_transport_error():
    """A connection that never works ends in TransportError with the cause kept."""
    handler, _ = scripted(httpx2.ConnectError("refused"))
    b = backend(handler, max_retries=2, **FAST)
    with pytest.raises(TransportError) as info:
        b.chat(MSG)
    assert isinstance(info.value.__cause__, httpx2.ConnectError)
    assert info.value.attempts == 3


def test_a_request_that_cannot_be_written_is_not_retried():
    """A local protocol error (an illegal header a plugin built) fails on its first attempt."""
    handler, seen = scripted(httpx2.LocalProtocolError("Illegal header value"))
    b = backend(handler, **FAST)
    with pytest.raises(TransportError, match="could not be sent") as info:
        b.chat(MSG)
    assert info.value.attempts == 1 and len(seen) == 1 and b.get_stats().retries == 0


def test_retry_after_past_deadline_fails_fast():
    """A Retry-After longer than what is left of the deadline fails at once instead of sleeping."""
    handler, seen = scripted(httpx2.Response(429, headers={"retry-after": "30"}))
    b = backend(handler, deadline=2.0, **FAST)
    with pytest.raises(RateLimitError) as info:
        b.chat(MSG)
    assert info.value.retry_after == 30 and len(seen) == 1 and info.value.attempts == 1
    stats = b.get_stats()
    assert (stats.retries, stats.retry_wait_seconds) == (0, 0)  # no wait was even begun


def test_chained_exchanges_run_in_order():
    """An Exchange whose parser returns another Exchange is followed to the end."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if request.url.path == "/count/1":
            return httpx2.Response(200, json={"n": 41})
        return httpx2.Response(200, json={"n": body["n"] + 1})

    b = backend(handler)
    assert b.invoke("count").data == "42"


@pytest.mark.parametrize("way", ["sync", "async"])
@pytest.mark.parametrize("resume", [True, False])
def test_a_retry_starts_a_chain_again_where_a_resume_exchange_says(resume, way):
    """The second exchange fails once (503): with resume, the retry sends it alone; without,
    the chain starts over from the first."""
    paths: list[str] = []
    refused = [httpx2.Response(503)]

    def handler(request: httpx2.Request) -> httpx2.Response:
        paths.append(request.url.path)
        if request.url.path == "/count/1":
            return httpx2.Response(200, json={"n": 41})
        if refused:
            return refused.pop()
        return httpx2.Response(200, json={"n": json.loads(request.content)["n"] + 1})

    b = backend(handler, **FAST)
    params = {"resume": True} if resume else {}
    result = (b.invoke("count", **params) if way == "sync"
              else asyncio.run(b.ainvoke("count", **params)))
    assert result.data == "42"
    assert paths == (["/count/1", "/count/2", "/count/2"] if resume
                     else ["/count/1", "/count/2", "/count/1", "/count/2"])


def test_a_result_of_the_wrong_type_for_the_operation_is_refused(monkeypatch):
    """A parser that answers chat with an InvokeResult gives a ResponseError, counted failed."""
    monkeypatch.setattr(_echo_plugin, "_chat", lambda resp: ipfs_accel.InvokeResult(data=1))
    b = backend(lambda request: httpx2.Response(200, json=ok_body()))
    with pytest.raises(ipfs_accel.ResponseError,
                       match="returned InvokeResult for 'chat', expected ChatResult"):
        b.chat(MSG)
    assert b.get_stats().failed_requests == 1


def test_unparseable_body_is_a_response_error():
    """A 2xx body the plugin cannot read raises ResponseError, not a KeyError."""
    handler, _ = scripted(httpx2.Response(200, json={"unexpected": True}))
    b = backend(handler)
    with pytest.raises(ipfs_accel.ResponseError, match="could not read"):
        b.chat(MSG)
    assert b.get_stats().failed_requests == 1


def test_unsupported_operation_is_clear():
    """An operation the plugin does not declare raises before anything is sent."""
    handler, seen = scripted(httpx2.Response(200, json=ok_body()))
    b = backend(handler)
    with pytest.raises(UnsupportedOperationError, match="does not support 'stream_generate'"):
        list(b.stream_generate("x"))
    assert not seen


def test_embed_accepts_string_or_list_and_keeps_order():
    """embed takes a string or a list; vectors come back in input order."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        inputs = json.loads(request.content)["input"]
        data = [{"index": i, "embedding": [float(i)]} for i in range(len(inputs))][::-1]
        return httpx2.Response(200, json={"data": data, "model": "e"})

    b = backend(handler)
    assert b.embed("one").vectors == [[0.0]]
    assert b.embed(["a", "b", "c"]).vectors == [[0.0], [1.0], [2.0]]
    with pytest.raises(ConfigurationError):
        b.embed([1, 2])  # type: ignore[list-item]


SSE_OK = (
    'data: {"choices":[{"delta":{"content":"he"}}]}\n\n'
    'data: {"choices":[{"delta":{"content":"llo"},"finish_reason":"stop"}]}\n\n'
    'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
    "data: [DONE]\n\n"
)


def sse(text: str, status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, headers={"content-type": "text/event-stream"}, content=text.encode())


def test_stream_yields_deltas_then_usage_and_counts_it():
    """A stream yields text deltas, then a done chunk with usage; the stats count the tokens."""
    handler, _ = scripted(sse(SSE_OK))
    b = backend(handler)
    chunks = list(b.stream_chat(MSG, request_id="s-1"))
    assert "".join(c.delta for c in chunks) == "hello"
    last = chunks[-1]
    assert last.done and last.finish_reason == "stop"
    assert last.usage is not None and last.usage.total_tokens == 6
    assert all(c.request_id == "s-1" for c in chunks)
    stats = b.get_stats()
    assert (stats.successful_requests, stats.total_tokens) == (1, 6)


@pytest.mark.asyncio
async def test_async_stream_matches_sync():
    """astream_chat yields the same chunks as stream_chat."""
    handler, _ = scripted(sse(SSE_OK))
    b = backend(handler)
    chunks = [c async for c in b.astream_chat(MSG)]
    assert "".join(c.delta for c in chunks) == "hello" and chunks[-1].done
    assert b.get_stats().total_tokens == 6


def test_mid_stream_error_raises_not_text():
    """An error event inside a 200 stream raises; its text never reaches the caller as output."""
    handler, _ = scripted(sse(
        'data: {"choices":[{"delta":{"content":"he"}}]}\n\n'
        'data: {"error":{"message":"model crashed"}}\n\n'
    ))
    b = backend(handler, **FAST)
    got = []
    with pytest.raises(ServerError, match="model crashed"):
        for chunk in b.stream_chat(MSG):
            got.append(chunk.delta)
    assert got == ["he"]
    assert b.get_stats().failed_requests == 1


def test_truncated_stream_is_interrupted():
    """A stream that ends without its terminal event raises StreamInterruptedError."""
    handler, _ = scripted(sse('data: {"choices":[{"delta":{"content":"he"}}]}\n\n'))
    b = backend(handler, max_retries=0)
    with pytest.raises(StreamInterruptedError):
        list(b.stream_chat(MSG))


def test_stream_error_before_first_chunk_is_retried():
    """A 503 when opening a stream is retried like any call."""
    handler, seen = scripted(sse("", status=503), sse(SSE_OK))
    b = backend(handler, **FAST)
    assert "".join(c.delta for c in b.stream_chat(MSG)) == "hello"
    assert len(seen) == 2


def test_queue_full_rejects_at_once_and_counts():
    """With every slot busy and the queue full, a call fails at once with QueueFullError."""
    release, entered = threading.Event(), threading.Semaphore(0)

    def handler(request: httpx2.Request) -> httpx2.Response:
        entered.release()
        assert release.wait(30)
        return httpx2.Response(200, json=ok_body())

    b = backend(handler, max_concurrent_requests=1, queue_size=1)
    threads = [threading.Thread(target=b.chat, args=(MSG,)) for _ in range(2)]
    threads[0].start()
    assert entered.acquire(timeout=30)  # the first holds the only slot
    threads[1].start()
    while b.get_stats().queued < 1:  # the second waits: the queue is full
        threading.Event().wait(0.001)
    # The slot stays taken until after this call: had it waited, it could only have failed
    # another way, so QueueFullError shows it was turned away at once.
    with pytest.raises(QueueFullError) as info:
        b.chat(MSG, request_id="late")
    assert info.value.request_id == "late"
    release.set()
    for t in threads:
        t.join()
    stats = b.get_stats()
    assert (stats.total_requests, stats.successful_requests, stats.rejected) == (3, 2, 1)
    assert stats.failed_requests == 1 and stats.in_flight == stats.queued == 0


@pytest.mark.asyncio
async def test_deadline_while_queued_times_out_and_leaves():
    """A call that waits in the queue past its deadline raises TimeoutError and frees its place."""
    gate, entered = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        entered.set()
        await gate.wait()
        return httpx2.Response(200, json=ok_body())

    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        async_transport=httpx2.MockTransport(slow))
    b = registry.get("echo", max_concurrent_requests=1)
    first = asyncio.create_task(b.achat(MSG))  # no deadline: it holds the only slot
    await entered.wait()
    b.update_endpoint("default", deadline=0.05)
    with pytest.raises(ipfs_accel.TimeoutError, match="waiting in the queue"):
        await b.achat(MSG)
    assert b.get_stats().queued == 0
    gate.set()
    assert (await first).text == "hello"
    stats = b.get_stats()
    assert (stats.queued, stats.in_flight, stats.failed_requests, stats.successful_requests) == (
        0, 0, 1, 1)


@pytest.mark.asyncio
async def test_cancelled_call_ends_once_and_frees_slot():
    """Cancelling running and waiting calls frees their slots; each is counted once as failed."""
    gate, entered = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        entered.set()
        await gate.wait()
        return httpx2.Response(200, json=ok_body())

    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        async_transport=httpx2.MockTransport(slow))
    b = registry.get("echo", max_concurrent_requests=1)
    tasks = [asyncio.create_task(b.achat(MSG)) for _ in range(3)]
    await entered.wait()  # the first runs; the other two were admitted to the queue before it
    assert b.get_stats().in_flight == 1 and b.get_stats().queued == 2
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stats = b.get_stats()
    assert (stats.total_requests, stats.failed_requests, stats.in_flight, stats.queued) == (3, 3, 0, 0)
    gate.set()
    assert (await b.achat(MSG)).text == "hello"


def test_stamina_sees_and_reports_every_retry():
    """Retries run under stamina: its instrumentation hears of each one, with our waits."""
    heard: list[float] = []
    previous = instr.get_on_retry_hooks()
    instr.set_on_retry_hooks([lambda details: heard.append(details.wait_for)])
    try:
        handler, seen = scripted(
            httpx2.Response(503), httpx2.Response(429, headers={"retry-after": "0.05"}),
            httpx2.Response(200, json=ok_body()),
        )
        b = backend(handler, **FAST)
        assert b.chat(MSG).text == "hello"
    finally:
        instr.set_on_retry_hooks(previous)
    assert len(seen) == 3 and len(heard) == 2
    assert heard[1] >= 0.05


def test_user_headers_replace_ours_whatever_their_case():
    """Header names are case-insensitive: an endpoint's "Accept" replaces the default one."""
    handler, seen = scripted(httpx2.Response(200, json=ok_body()))
    b = backend(handler, headers={"Accept": "text/plain", "X-Extra": "1"})
    b.chat(MSG)
    assert seen[0].headers.get_list("accept") == ["text/plain"]
    assert seen[0].headers["x-extra"] == "1"

"""The engine over real sockets: 429 with Retry-After, 500, 503, drops and timeouts."""

from __future__ import annotations

import asyncio
import itertools

import _echo_plugin
import ipfs_accel
import pytest
from ipfs_accel import Registry
from ipfs_accel.testing import Drop, FaultServer, Hang, Reply, Stream, TruncatedStream
from ipfs_accel.testing._waits import planned_waits

MSG = [{"role": "user", "content": "hi"}]
OK = Reply(200, json={"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
           headers={"x-request-id": "srv-1"})


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def make(server: FaultServer, **settings):
    b = Registry(plugins=[_echo_plugin], entry_points=False).get("echo")
    eid = b.create_endpoint(base_url=server.base_url, api_key="k", **settings)
    return b, eid


def gaps(server: FaultServer) -> list[float]:
    times = [r.received_at for r in server.requests]
    return [b - a for a, b in itertools.pairwise(times)]


def test_waits_follow_backoff_and_retry_after(server):
    """500 then 503 wait the configured backoff; 429 waits its Retry-After; one request ID."""
    server.script([Reply(500), Reply(503), Reply(429, headers={"retry-after": "0.5"}), OK])
    b, eid = make(server, initial_retry_delay=0.1, backoff_factor=2, retry_jitter=0,
                  max_retry_delay=5)
    with planned_waits("loop-1") as planned:
        r = b.chat(MSG, endpoint_id=eid, request_id="loop-1")
    assert r.text == "fine" and r.server_request_id == "srv-1"
    # backoff 1 and 2, then Retry-After 0.5 beats backoff 3 (0.4): exactly as planned, and
    # the server saw at least those gaps (a loaded machine may only make them longer)
    assert planned == pytest.approx([0.1, 0.2, 0.5])
    g = gaps(server)
    assert len(g) == 3 and all(gap >= want for gap, want in zip(g, planned, strict=True))
    assert {q.header("x-request-id") for q in server.requests} == {"loop-1"}
    stats = b.get_stats(eid)
    assert (stats.retries, stats.successful_requests, stats.failed_requests) == (3, 1, 0)


def test_gives_up_after_max_retries(server):
    """Retryable failures stop after max_retries + 1 attempts."""
    server.script([Reply(503) for _ in range(5)])
    b, eid = make(server, max_retries=2, initial_retry_delay=0.01, retry_jitter=0)
    with pytest.raises(ipfs_accel.OverloadedError) as info:
        b.chat(MSG, endpoint_id=eid, request_id="loop-2")
    assert info.value.attempts == 3 and len(server.requests) == 3
    assert info.value.request_id == "loop-2"


def test_dropped_connection_and_timeout_are_retried(server):
    """A dropped connection and an attempt that hangs past the timeout are both retried."""
    server.script([Drop(), Hang(2.0), OK])
    b, eid = make(server, timeout=0.3, initial_retry_delay=0.01, retry_jitter=0)
    assert b.chat(MSG, endpoint_id=eid).text == "fine"
    assert len(server.requests) == 3
    assert b.get_stats(eid).retries == 2


def test_timeout_exhausted_is_a_timeout_error(server):
    """An endpoint that always hangs ends in ipfs_accel.TimeoutError after the retries."""
    server.script([Hang(2.0), Hang(2.0)])
    b, eid = make(server, timeout=0.2, max_retries=1, initial_retry_delay=0.01)
    with pytest.raises(ipfs_accel.TimeoutError):
        b.chat(MSG, endpoint_id=eid)
    assert isinstance(ipfs_accel.TimeoutError("x"), TimeoutError)  # builtins catch it too


def test_truncated_stream_over_sockets(server):
    """A chunked stream cut short raises StreamInterruptedError after the text so far."""
    server.script([TruncatedStream([
        'data: {"choices":[{"delta":{"content":"par"}}]}', "",
        'data: {"choices":[{"delta":{"content":"tial"}}]}', "",
    ], content_type="text/event-stream")])
    b, eid = make(server, max_retries=0)
    got = []
    with pytest.raises(ipfs_accel.StreamInterruptedError):
        for chunk in b.stream_chat(MSG, endpoint_id=eid):
            got.append(chunk.delta)
    assert "".join(got) in ("", "par", "partial")


@pytest.mark.asyncio
async def test_async_concurrency_cap_over_sockets(server):
    """64 async calls through max_concurrent_requests=4: the server never sees more than 4."""
    server.script([Hang(0.05, then=OK) for _ in range(64)])
    b, eid = make(server, max_concurrent_requests=4)
    results = await asyncio.gather(*(b.achat(MSG, endpoint_id=eid) for _ in range(64)))
    assert all(r.text == "fine" for r in results)
    assert server.peak_concurrency <= 4
    assert b.get_stats(eid).successful_requests == 64
    await b.aclose()


def test_stream_over_sockets(server):
    """A real chunked SSE stream is read to its [DONE]."""
    server.script([Stream([
        'data: {"choices":[{"delta":{"content":"a"}}]}', "",
        'data: {"choices":[{"delta":{"content":"b"}}],"usage":{"prompt_tokens":2,'
        '"completion_tokens":2}}', "",
        "data: [DONE]", "",
    ], content_type="text/event-stream")])
    b, eid = make(server)
    chunks = list(b.stream_chat(MSG, endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == "ab"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4


def test_sync_deadline_bounds_a_hanging_attempt(server):
    """A thread's call ends at its deadline even when one attempt would hang for longer."""
    server.script([Hang(30.0, then=OK)])  # an unbounded call would get this answer
    b, eid = make(server, timeout=60, deadline=0.5, initial_retry_delay=0.01)
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline"):
        b.chat(MSG, endpoint_id=eid)
    assert b.get_stats(eid).failed_requests == 1

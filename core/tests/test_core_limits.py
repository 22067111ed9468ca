"""Every call is bounded: timeout per attempt, deadline per call, idle limit per stream,
and a cap on the waits a server asks for, however slowly the server sends its bytes.

The servers here trickle until the client cuts them off; if it never does, they complete
the answer after a cap, so a missing bound shows as a result where an error was expected.
"""

from __future__ import annotations

import asyncio

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from _slow_server import SlowServer, ok, sse_steady, sse_then, trickled_json
from ipfs_accel import RateLimitError, Registry

MSG = [{"role": "user", "content": "hi"}]
KEEPALIVE = b": keep-alive\n\n"
PING = b"event: ping\ndata: {}\n\n"


@pytest.fixture
def server():
    with SlowServer() as s:
        yield s


def make(server: SlowServer, **settings):
    b = Registry(plugins=[_echo_plugin], entry_points=False).get("echo")
    eid = b.create_endpoint(base_url=server.base_url, api_key="k", initial_retry_delay=0.01,
                            retry_jitter=0, **settings)
    return b, eid


def drain_sync(b, eid) -> list[str]:
    got: list[str] = []
    for chunk in b.stream_chat(MSG, endpoint_id=eid):
        got.append(chunk.delta)
    return got


async def drain_async(b, eid, got: list[str]) -> None:
    async for chunk in b.astream_chat(MSG, endpoint_id=eid):
        got.append(chunk.delta)


# -- unary calls -----------------------------------------------------------------------


def test_sync_deadline_bounds_a_trickling_body(server):
    """Headers at once, then a byte now and then: a sync call still ends at its deadline."""
    server.script(trickled_json())
    b, eid = make(server, deadline=0.5, timeout=30)
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline") as info:
        b.chat(MSG, endpoint_id=eid, request_id="d-1")
    assert info.value.request_id == "d-1" and info.value.endpoint_id == eid
    assert server.requests == 1
    stats = b.get_stats(eid)
    assert (stats.failed_requests, stats.in_flight) == (1, 0)


@pytest.mark.asyncio
async def test_async_deadline_bounds_a_trickling_body(server):
    """The same on the event loop."""
    server.script(trickled_json())
    b, eid = make(server, deadline=0.5, timeout=30)
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline"):
        await b.achat(MSG, endpoint_id=eid)
    await b.aclose()


def test_sync_timeout_bounds_a_whole_attempt(server):
    """`timeout` bounds the attempt, not each socket read: a trickle is cut off and retried."""
    server.script(trickled_json(), trickled_json())
    b, eid = make(server, timeout=0.3, max_retries=1)
    with pytest.raises(ipfs_accel.TimeoutError, match=r"timeout of 0\.3s") as info:
        b.chat(MSG, endpoint_id=eid)
    assert info.value.attempts == 2 and server.requests == 2
    assert b.get_stats(eid).retries == 1


@pytest.mark.asyncio
async def test_async_timeout_bounds_a_whole_attempt(server):
    """The same on the event loop; a retry after the cut-off succeeds."""
    server.script(trickled_json(), ok())
    b, eid = make(server, timeout=0.3, max_retries=1)
    assert (await b.achat(MSG, endpoint_id=eid)).text == "slowly"
    assert server.requests == 2 and b.get_stats(eid).retries == 1
    await b.aclose()


# -- streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("filler", [KEEPALIVE, PING], ids=["comments", "pings"])
def test_sync_stream_idle_limit(server, filler):
    """After the first delta, keep-alive comments and pings are not progress: the idle
    limit ends the stream with TimeoutError, after the text so far, without a retry."""
    server.script(sse_then(filler))
    b, eid = make(server, stream_idle_timeout=0.3, timeout=30)
    got: list[str] = []
    with pytest.raises(ipfs_accel.TimeoutError, match="stalled") as info:
        for chunk in b.stream_chat(MSG, endpoint_id=eid):
            got.append(chunk.delta)
    assert got == ["one"] and server.requests == 1
    assert info.value.attempts == 1
    assert b.get_stats(eid).failed_requests == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("filler", [KEEPALIVE, PING], ids=["comments", "pings"])
async def test_async_stream_idle_limit(server, filler):
    """The same on the event loop."""
    server.script(sse_then(filler))
    b, eid = make(server, stream_idle_timeout=0.3, timeout=30)
    got: list[str] = []
    with pytest.raises(ipfs_accel.TimeoutError, match="stalled"):
        await drain_async(b, eid, got)
    assert got == ["one"]
    await b.aclose()


def test_sync_stream_deadline_bounds_the_whole_stream(server):
    """A deadline ends a stream that keeps its connection alive with comments."""
    server.script(sse_then(KEEPALIVE))
    b, eid = make(server, deadline=0.5, timeout=30, stream_idle_timeout=30)
    got: list[str] = []
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline"):
        for chunk in b.stream_chat(MSG, endpoint_id=eid):
            got.append(chunk.delta)
    assert got == ["one"]


@pytest.mark.asyncio
async def test_async_stream_deadline_bounds_the_whole_stream(server):
    """The same on the event loop."""
    server.script(sse_then(KEEPALIVE))
    b, eid = make(server, deadline=0.5, timeout=30, stream_idle_timeout=30)
    got: list[str] = []
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline"):
        await drain_async(b, eid, got)
    assert got == ["one"]
    await b.aclose()


def test_stream_data_events_keep_it_alive(server):
    """Data events reset the idle limit: a stream longer than the limit, never silent for
    long, completes (sync and async)."""
    server.script(sse_steady(30), sse_steady(30))
    b, eid = make(server, stream_idle_timeout=1.0)
    assert "".join(drain_sync(b, eid)) == "." * 30
    got: list[str] = []
    asyncio.run(drain_async(b, eid, got))
    assert "".join(got) == "." * 30


# -- waits the server asks for ----------------------------------------------------------


def _rate_limited(retry_after: str):
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, headers={"retry-after": retry_after},
                               json={"error": {"message": "slow down"}})
    return handler


def test_retry_after_past_the_cap_fails_fast():
    """A 429 asking for a day fails at once with RateLimitError carrying retry_after."""
    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        transport=httpx2.MockTransport(_rate_limited("86400")))
    b = registry.get("echo")
    with pytest.raises(RateLimitError) as info:
        b.chat(MSG)
    assert info.value.retry_after == 86_400 and info.value.attempts == 1
    stats = b.get_stats()
    assert (stats.retries, stats.retry_wait_seconds) == (0, 0)


def test_retry_after_within_the_cap_is_waited():
    """Up to max_retry_after the server's wait is honoured, and the time really waited is
    what retry_wait_seconds counts."""
    answers = iter([httpx2.Response(429, headers={"retry-after": "0.2"}),
                    httpx2.Response(200, json={"choices": [{"message": {"content": "ok"}}]})])
    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        transport=httpx2.MockTransport(lambda request: next(answers)))
    b = registry.get("echo", max_retry_after=0.5, retry_jitter=0)
    assert b.chat(MSG).text == "ok"
    stats = b.get_stats()
    assert stats.retries == 1 and stats.retry_wait_seconds >= 0.2


@pytest.mark.asyncio
async def test_retry_wait_counts_time_waited_not_planned():
    """A call cancelled during a 200 s Retry-After wait counts the moments it waited."""
    asked = asyncio.Event()

    async def handler(request: httpx2.Request) -> httpx2.Response:
        asked.set()
        return httpx2.Response(429, headers={"retry-after": "200"})

    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        async_transport=httpx2.MockTransport(handler))
    b = registry.get("echo", max_retry_after=300)
    task = asyncio.create_task(b.achat(MSG))
    await asyncio.wait_for(asked.wait(), 30)
    while b.get_stats().retries == 0:  # noqa: ASYNC110 - no event marks a scheduled retry
        await asyncio.sleep(0)  # one loop turn, not a timed wait
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = b.get_stats()
    assert stats.retries == 1 and 0 < stats.retry_wait_seconds < 200
    assert (stats.failed_requests, stats.cancelled) == (1, 1)

"""Pacing, pauses and health through a real Backend against a loopback FaultServer.

A 429 (or a spent budget in the headers) pauses the endpoint, not just the call that saw
it; rpm spaces calls; a pause too long, or past the deadline, fails a call at once;
consecutive failures make the endpoint unhealthy and an auth failure disables it until
its key changes; all of it in get_stats. Times are checked only from below (a call never
went before it was allowed to), on the one monotonic clock the client and the loopback
server share: never that something happened fast.
"""

from __future__ import annotations

import asyncio
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import _echo_plugin
import ipfs_accel
import pytest
from _threads import auntil, thread, until
from ipfs_accel import (
    AuthenticationError,
    ChatResult,
    OverloadedError,
    RateLimitError,
    RateLimits,
    Registry,
    _pace,
    hookimpl,
)
from ipfs_accel import _endpoint as endpoint_module
from ipfs_accel.testing import FaultServer, Hold, Reply, Stream

MSG = [{"role": "user", "content": "hi"}]
BODY = {"model": "echo-1", "choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}]}
OK = Reply(200, json={**BODY, "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
OK_NO_USAGE = Reply(200, json=BODY)
SSE = Stream(['data: {"choices": [{"delta": {"content": "hel"}}]}', "",
              'data: {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]}', "",
              "data: [DONE]", ""])
EPS = 0.01  # timer granularity: a sleep may end a hair before its mark on the loop's clock


def limited(seconds: float, status: int = 429) -> Reply:
    return Reply(status, json={"error": {"message": "slow down"}},
                 headers={"retry-after": str(seconds)})


def spent(reset: float) -> Reply:
    """A success whose headers say the request budget is spent until ``reset``."""
    return Reply(200, json=OK.json, headers={"x-test-remaining": "0", "x-test-reset": str(reset)})


@hookimpl
def _parse_rate_limits(headers: Any) -> RateLimits | None:
    remaining = headers.get("x-test-remaining")
    if remaining is None:
        return None
    return RateLimits(requests_remaining=int(remaining),
                      requests_reset=float(headers.get("x-test-reset", "0")))


def _plugin_reading_headers() -> types.ModuleType:
    """The echo test plugin plus parse_rate_limits (x-test-remaining, x-test-reset)."""
    mod = types.ModuleType("echo_reading_limits")
    for name in ("backend_info", "send", "parse_usage", "classify_error"):
        setattr(mod, name, getattr(_echo_plugin, name))
    mod.parse_rate_limits = _parse_rate_limits  # type: ignore[attr-defined]
    return mod


HEADERS_PLUGIN = _plugin_reading_headers()


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def make(server: FaultServer, plugin: Any = _echo_plugin, **settings: Any):
    b = Registry(plugins=[plugin], entry_points=False).get("echo")
    values: dict[str, Any] = {"base_url": server.base_url, "api_key": "k", "max_retries": 0,
                              "initial_retry_delay": 0.01, "retry_jitter": 0}
    eid = b.create_endpoint(**{**values, **settings})
    return b, eid








# -- a 429 pauses the endpoint ----------------------------------------------------------


def test_sync_429_holds_the_call_queued_behind_it():
    """A 429 with Retry-After on one call pauses the endpoint: the call waiting in the
    queue behind it is sent only after the pause."""
    go = threading.Event()
    with FaultServer() as server:
        server.script([Hold(release=go, then=limited(0.2)), OK])
        b, eid = make(server, max_concurrent_requests=1)
        t1, first = thread(lambda: b.chat(MSG, endpoint_id=eid))
        assert server.wait_for(1)
        t2, second = thread(lambda: b.chat(MSG, endpoint_id=eid))
        until(lambda: b.get_stats(eid).queued == 1, "the second call queued")
        released = time.monotonic()
        go.set()
        t1.join(10)
        t2.join(10)
        assert isinstance(first[0], RateLimitError) and first[0].retry_after == 0.2
        assert isinstance(second[0], ChatResult) and second[0].text == "hello"
        requests = server.requests
    assert len(requests) == 2
    assert requests[1].received_at >= released + 0.2 - EPS
    stats = b.get_stats(eid)
    assert (stats.rate_limited, stats.successful_requests, stats.failed_requests) == (1, 1, 1)
    assert stats.paced <= 1 and stats.consecutive_failures == 0


@pytest.mark.asyncio
async def test_async_429_holds_the_call_queued_behind_it():
    """The same on the event loop."""
    go = threading.Event()
    with FaultServer() as server:
        server.script([Hold(release=go, then=limited(0.2)), OK])
        b, eid = make(server, max_concurrent_requests=1)
        first = asyncio.create_task(b.achat(MSG, endpoint_id=eid))
        assert await asyncio.to_thread(server.wait_for, 1)
        second = asyncio.create_task(b.achat(MSG, endpoint_id=eid))
        await auntil(lambda: b.get_stats(eid).queued == 1, "the second call queued")
        released = time.monotonic()
        go.set()
        with pytest.raises(RateLimitError):
            await first
        assert (await second).text == "hello"
        requests = server.requests
        await b.aclose()
    assert requests[1].received_at >= released + 0.2 - EPS
    assert b.get_stats(eid).rate_limited == 1


@pytest.mark.parametrize(("first", "second"), [(0.2, 0.05), (0.05, 0.2)],
                         ids=["shorter-later", "longer-later"])
def test_a_later_pause_extends_and_never_shortens(server, first, second):
    """Two calls in flight get 429s one after the other: the next call waits for the
    longer pause, whichever came first."""
    go = threading.Event()
    server.script([Hold(release=go, then=limited(second)), limited(first), OK])
    b, eid = make(server, max_concurrent_requests=2)
    t1, out1 = thread(lambda: b.chat(MSG, endpoint_id=eid))  # answered second
    assert server.wait_for(1)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)  # answered first
    first_seen = server.requests[1].received_at
    released = time.monotonic()
    go.set()
    t1.join(10)
    assert isinstance(out1[0], RateLimitError)
    assert b.chat(MSG, endpoint_id=eid).text == "hello"
    third = server.requests[2].received_at
    assert third >= first_seen + first - EPS
    assert third >= released + second - EPS
    assert b.get_stats(eid).rate_limited == 2


@pytest.mark.parametrize("status", [429, 503, 529])
def test_pause_beyond_max_retry_after_fails_the_next_call_at_once(server, status):
    """A pause longer than max_retry_after: the next call fails at once with a
    RateLimitError carrying the wait, nothing is sent; the state says paused."""
    server.script([limited(30, status)])
    b, eid = make(server, max_retry_after=1)
    with pytest.raises(ipfs_accel.CallError):
        b.chat(MSG, endpoint_id=eid)
    before = time.time()
    stats = b.get_stats(eid)
    assert stats.state == "paused" and stats.rate_limited == 1
    assert stats.paused_until is not None and before < stats.paused_until <= before + 30
    with pytest.raises(RateLimitError, match="max_retry_after") as info:
        b.chat(MSG, endpoint_id=eid, request_id="held-1")
    err = info.value
    assert err.retry_after is not None and 0 < err.retry_after <= 30
    assert (err.request_id, err.endpoint_id, err.attempts) == ("held-1", eid, 1)
    assert len(server.requests) == 1
    stats = b.get_stats(eid)
    assert (stats.failed_requests, stats.paced, stats.paced_seconds) == (2, 0, 0.0)
    assert stats.total_requests == stats.successful_requests + stats.failed_requests


@pytest.mark.asyncio
async def test_async_pause_beyond_max_retry_after_fails_at_once(server):
    """The same on the event loop."""
    server.script([limited(30)])
    b, eid = make(server, max_retry_after=1)
    with pytest.raises(RateLimitError):
        await b.achat(MSG, endpoint_id=eid)
    with pytest.raises(RateLimitError, match="max_retry_after") as info:
        await b.achat(MSG, endpoint_id=eid)
    assert info.value.retry_after is not None and info.value.retry_after > 0
    assert len(server.requests) == 1
    await b.aclose()


def test_the_call_that_got_the_429_gives_up_when_the_wait_is_too_long(server):
    """Retries on: a Retry-After beyond max_retry_after ends the call after one attempt."""
    server.script([limited(30), OK])
    b, eid = make(server, max_retries=3, max_retry_after=1)
    with pytest.raises(RateLimitError) as info:
        b.chat(MSG, endpoint_id=eid)
    assert info.value.attempts == 1 and len(server.requests) == 1


def test_pause_past_the_deadline_fails_at_once(server):
    """A pause that outlasts the call's deadline: TimeoutError at once, not a sleep."""
    server.script([limited(30)])
    b, eid = make(server, deadline=2.0)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline") as info:
        b.chat(MSG, endpoint_id=eid)
    assert not info.value.retryable and len(server.requests) == 1
    assert b.get_stats(eid).consecutive_failures == 0  # the call's deadline says nothing of it


@pytest.mark.asyncio
async def test_async_pause_past_the_deadline_fails_at_once(server):
    """The same on the event loop."""
    server.script([limited(30)])
    b, eid = make(server, deadline=2.0)
    with pytest.raises(RateLimitError):
        await b.achat(MSG, endpoint_id=eid)
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline"):
        await b.achat(MSG, endpoint_id=eid)
    assert len(server.requests) == 1
    await b.aclose()


def test_a_short_pause_is_waited_out_and_counted(server):
    """A pause within the limits: the next call waits for it and is counted as paced."""
    server.script([limited(0.2), OK])
    b, eid = make(server)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)
    assert b.chat(MSG, endpoint_id=eid).text == "hello"
    first, second = server.requests
    assert second.received_at >= first.received_at + 0.2 - EPS
    stats = b.get_stats(eid)
    assert stats.rate_limited == 1 and stats.paced <= 1
    assert stats.state == "ready" and stats.paused_until is None


# -- rpm, tpm --------------------------------------------------------------------------


def spaced(times: list[float], since: float, interval: float) -> bool:
    """Call k (0-based) reached the server no sooner than ``since + k * interval``: a
    bound from below, whatever delays sending (a first connection, a loaded machine)."""
    return all(t >= since + k * interval - EPS for k, t in enumerate(sorted(times)))


def test_rpm_spaces_sequential_calls(server):
    """rpm=600 (one call per 0.1 s): calls made back to back go one per 0.1 s."""
    b, eid = make(server, rpm=600)
    server.script([OK] * 4)
    since = time.monotonic()
    for _ in range(4):
        b.chat(MSG, endpoint_id=eid)
    assert spaced([r.received_at for r in server.requests], since, 0.1)
    stats = b.get_stats(eid)
    assert stats.successful_requests == 4 and stats.state == "ready"


def test_rpm_spaces_concurrent_calls(server):
    """Four calls started together with room for all: still one per interval."""
    b, eid = make(server, rpm=600, max_concurrent_requests=4)
    server.script([OK] * 4)
    since = time.monotonic()
    threads = [thread(lambda: b.chat(MSG, endpoint_id=eid)) for _ in range(4)]
    for t, _ in threads:
        t.join(10)
    assert all(isinstance(out[0], ChatResult) for _, out in threads)
    assert spaced([r.received_at for r in server.requests], since, 0.1)
    stats = b.get_stats(eid)
    assert stats.paced >= 1 and stats.paced_seconds > 0


@pytest.mark.asyncio
async def test_async_rpm_spaces_concurrent_calls(server):
    """The same on the event loop."""
    b, eid = make(server, rpm=600, max_concurrent_requests=4)
    server.script([OK] * 4)
    since = time.monotonic()
    await asyncio.gather(*(b.achat(MSG, endpoint_id=eid) for _ in range(4)))
    assert spaced([r.received_at for r in server.requests], since, 0.1)
    assert b.get_stats(eid).paced >= 1
    await b.aclose()


def test_tpm_settles_with_the_usage_reported(server):
    """tpm books the estimate (input size / 4 + max_tokens) and, after the call, keeps only
    what the server reported using (5 tokens)."""
    b, eid = make(server, tpm=6000)  # 0.01 s a token
    gate = b._endpoint(eid).gate
    server.script([OK])
    b.chat(MSG, endpoint_id=eid, max_tokens=40)
    sent = server.requests[0].received_at
    assert gate.tokens is not None and gate.tokens.tat <= sent + 5 * 0.01 + 1e-9


def test_tpm_keeps_the_estimate_when_no_usage_is_reported(server):
    """No usage in the answer: the estimate stands (the next call is held by it)."""
    b, eid = make(server, tpm=6000)
    gate = b._endpoint(eid).gate
    server.script([OK_NO_USAGE])
    before = time.monotonic()
    b.chat(MSG, endpoint_id=eid, max_tokens=40)
    assert gate.tokens is not None and gate.tokens.tat >= before + 40 * 0.01


# -- what the headers say -----------------------------------------------------------------


def test_spent_budget_in_the_headers_holds_the_next_call(server):
    """A success whose headers say the budget is spent (remaining 0, reset 0.2 s): the
    next call waits for the reset instead of going into a 429."""
    server.script([spent(0.2), OK])
    b, eid = make(server, plugin=HEADERS_PLUGIN)
    b.chat(MSG, endpoint_id=eid)
    b.chat(MSG, endpoint_id=eid)
    first, second = server.requests
    assert second.received_at >= first.received_at + 0.2 - EPS
    assert b.get_stats(eid).rate_limited == 0


def test_spent_budget_longer_than_max_retry_after_refuses_at_once(server):
    """A reset far off: the next call fails at once, naming the spent budget."""
    server.script([spent(30)])
    b, eid = make(server, plugin=HEADERS_PLUGIN, max_retry_after=1)
    b.chat(MSG, endpoint_id=eid)
    assert b.get_stats(eid).state == "paused"
    with pytest.raises(RateLimitError, match="requests budget is spent"):
        b.chat(MSG, endpoint_id=eid)
    assert len(server.requests) == 1


def test_budget_left_in_the_headers_holds_nothing(server):
    """remaining > 0: nothing held, the gate stays off."""
    server.script([Reply(200, json=OK.json, headers={"x-test-remaining": "3",
                                                     "x-test-reset": "30"}), OK])
    b, eid = make(server, plugin=HEADERS_PLUGIN)
    b.chat(MSG, endpoint_id=eid)
    b.chat(MSG, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.paced, stats.state, stats.paused_until) == (0, "ready", None)


@pytest.mark.asyncio
async def test_async_spent_budget_in_error_headers_pauses(server):
    """Headers are read on errors too: a 500 saying the budget is spent pauses."""
    server.script([Reply(500, json={"error": {"message": "x"}},
                         headers={"x-test-remaining": "0", "x-test-reset": "30"})])
    b, eid = make(server, plugin=HEADERS_PLUGIN, max_retry_after=1)
    with pytest.raises(ipfs_accel.ServerError):
        await b.achat(MSG, endpoint_id=eid)
    with pytest.raises(RateLimitError, match="budget is spent"):
        await b.achat(MSG, endpoint_id=eid)
    await b.aclose()


# -- health ----------------------------------------------------------------------------


def test_three_failures_make_the_endpoint_unhealthy(server):
    """Three 503s in a row (no retries): unhealthy, three consecutive failures; a success
    makes it ready again."""
    server.script([Reply(503, json={"error": {"message": "down"}})] * 3 + [OK])
    b, eid = make(server)
    for n in range(3):
        assert b.get_stats(eid).state == "ready"
        with pytest.raises(OverloadedError):
            b.chat(MSG, endpoint_id=eid)
        assert b.get_stats(eid).consecutive_failures == n + 1
    stats = b.get_stats(eid)
    assert (stats.state, stats.consecutive_failures) == ("unhealthy", 3)
    assert b.chat(MSG, endpoint_id=eid).text == "hello"
    stats = b.get_stats(eid)
    assert (stats.state, stats.consecutive_failures) == ("ready", 0)


@pytest.mark.asyncio
async def test_async_failures_make_the_endpoint_unhealthy(server):
    """The same on the event loop, with 500s and unhealthy_after=2."""
    server.script([Reply(500, json={"error": {"message": "down"}})] * 2)
    b, eid = make(server, unhealthy_after=2)
    for _ in range(2):
        with pytest.raises(ipfs_accel.ServerError):
            await b.achat(MSG, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.state, stats.consecutive_failures) == ("unhealthy", 2)
    await b.aclose()


def test_retries_of_one_call_count_as_consecutive_failures(server):
    """Each failed attempt counts, not each call: one call retried twice is three."""
    server.script([Reply(502)] * 3)
    b, eid = make(server, max_retries=2)
    with pytest.raises(ipfs_accel.ServerError) as info:
        b.chat(MSG, endpoint_id=eid)
    assert info.value.attempts == 3
    assert b.get_stats(eid).state == "unhealthy"


def test_a_400_breaks_the_run_of_failures(server):
    """A 400 is an answer about the call: the endpoint is well."""
    server.script([Reply(503), Reply(503), Reply(400, json={"error": {"message": "bad"}}),
                   Reply(503)])
    b, eid = make(server)
    for _ in range(4):
        with pytest.raises(ipfs_accel.CallError):
            b.chat(MSG, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.state, stats.consecutive_failures) == ("ready", 1)


def test_auth_failure_disables_until_the_key_changes(server):
    """A 401: disabled; another setting changed: still disabled; a new key: ready."""
    server.script([Reply(401, json={"error": {"message": "bad key"}}), OK])
    b, eid = make(server)
    with pytest.raises(AuthenticationError):
        b.chat(MSG, endpoint_id=eid)
    assert b.get_stats(eid).state == "disabled"
    b.update_endpoint(eid, timeout=30)
    assert b.get_stats(eid).state == "disabled"
    b.update_endpoint(eid, api_key="k")  # the same key again
    assert b.get_stats(eid).state == "disabled"
    b.update_endpoint(eid, api_key="new-key")
    assert b.get_stats(eid).state == "ready"
    assert b.chat(MSG, endpoint_id=eid).text == "hello"
    assert server.requests[-1].header("authorization") == "Bearer new-key"


@pytest.mark.asyncio
async def test_async_auth_failure_disables(server):
    """The same on the event loop (403)."""
    server.script([Reply(403, json={"error": {"message": "forbidden"}})])
    b, eid = make(server)
    with pytest.raises(AuthenticationError):
        await b.achat(MSG, endpoint_id=eid)
    assert b.get_stats(eid).state == "disabled"
    b.update_endpoint(eid, api_key="other")
    assert b.get_stats(eid).state == "ready"
    await b.aclose()


def test_aggregate_state_is_shared_or_mixed(server):
    """Backend.get_stats(): the state every endpoint shares, else "mixed"."""
    server.script([Reply(401)])
    b, one = make(server)
    two = b.create_endpoint(base_url=server.base_url, api_key="k2")
    assert b.get_stats().state == "ready"
    with pytest.raises(AuthenticationError):
        b.chat(MSG, endpoint_id=one)
    assert b.get_stats().state == "mixed"
    assert b.get_stats(two).state == "ready"
    server.script([Reply(401)])
    with pytest.raises(AuthenticationError):
        b.chat(MSG, endpoint_id=two)
    assert b.get_stats().state == "disabled"


def test_reset_stats_keeps_the_state(server):
    """reset_stats zeroes rate_limited and paced; the pause stays."""
    server.script([limited(30)])
    b, eid = make(server, max_retry_after=1)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)
    b.reset_stats(eid)
    stats = b.get_stats(eid)
    assert (stats.rate_limited, stats.paced, stats.state) == (0, 0, "paused")


# -- streams ---------------------------------------------------------------------------


def test_sync_stream_429_pauses_the_endpoint(server):
    """A 429 on opening a stream pauses the endpoint: the next stream (and call) is held,
    or refused when the pause is beyond max_retry_after."""
    server.script([limited(30)])
    b, eid = make(server, max_retry_after=1)
    with pytest.raises(RateLimitError):
        list(b.stream_chat(MSG, endpoint_id=eid))
    assert b.get_stats(eid).state == "paused"
    with pytest.raises(RateLimitError, match="max_retry_after"):
        list(b.stream_chat(MSG, endpoint_id=eid))
    with pytest.raises(RateLimitError, match="max_retry_after"):
        b.chat(MSG, endpoint_id=eid)
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_async_stream_429_pauses_the_endpoint(server):
    """The same on the event loop."""
    server.script([limited(30)])
    b, eid = make(server, max_retry_after=1)
    with pytest.raises(RateLimitError):
        async for _ in b.astream_chat(MSG, endpoint_id=eid):
            pass
    with pytest.raises(RateLimitError, match="max_retry_after"):
        async for _ in b.astream_chat(MSG, endpoint_id=eid):
            pass
    assert len(server.requests) == 1
    await b.aclose()


def test_stream_held_by_a_short_pause_then_streams(server):
    """A short pause from a stream's 429: the next stream waits for it, then streams."""
    server.script([limited(0.2), SSE])
    b, eid = make(server)
    with pytest.raises(RateLimitError):
        list(b.stream_chat(MSG, endpoint_id=eid))
    text = "".join(c.delta for c in b.stream_chat(MSG, endpoint_id=eid))
    assert text == "hello"
    first, second = server.requests
    assert second.received_at >= first.received_at + 0.2 - EPS


@pytest.mark.asyncio
async def test_async_stream_spent_budget_in_its_headers_pauses(server):
    """A stream's response headers are read too: a spent budget pauses the endpoint."""
    server.script([Stream(SSE.lines, headers={"x-test-remaining": "0", "x-test-reset": "30"})])
    b, eid = make(server, plugin=HEADERS_PLUGIN, max_retry_after=1)
    got = [c.delta async for c in b.astream_chat(MSG, endpoint_id=eid)]
    assert "".join(got) == "hello"
    assert b.get_stats(eid).state == "paused"
    with pytest.raises(RateLimitError):
        await b.achat(MSG, endpoint_id=eid)
    await b.aclose()


def test_stream_failures_count_toward_health(server):
    """Opening streams that fail with 5xx makes the endpoint unhealthy like calls do."""
    server.script([Reply(500)] * 3)
    b, eid = make(server)
    for _ in range(3):
        with pytest.raises(ipfs_accel.ServerError):
            list(b.stream_chat(MSG, endpoint_id=eid))
    assert b.get_stats(eid).state == "unhealthy"


# -- the engine's once= and deadline_at= ---------------------------------------------------


def engine_parts(b: Any, eid: str, operation: str = "chat"):
    endpoint, call = b._prepare(operation, eid, None, None, {}, messages=MSG)
    return b._engine, endpoint, call


def test_once_makes_exactly_one_attempt(server):
    """once=True: one attempt however many retries the endpoint allows."""
    server.script([Reply(503), OK])
    b, eid = make(server, max_retries=5)
    engine, endpoint, call = engine_parts(b, eid)
    with pytest.raises(OverloadedError) as info:
        engine.call(endpoint, call, ChatResult, once=True)
    assert info.value.attempts == 1 and len(server.requests) == 1
    assert b.get_stats(eid).retries == 0


@pytest.mark.asyncio
async def test_async_once_makes_exactly_one_attempt(server):
    """The same on the event loop."""
    server.script([Reply(503), OK])
    b, eid = make(server, max_retries=5)
    engine, endpoint, call = engine_parts(b, eid)
    with pytest.raises(OverloadedError) as info:
        await engine.acall(endpoint, call, ChatResult, once=True)
    assert info.value.attempts == 1 and len(server.requests) == 1
    await b.aclose()


def test_stream_once_makes_exactly_one_attempt(server):
    """once=True on a stream: one attempt at opening it."""
    server.script([Reply(503), SSE])
    b, eid = make(server, max_retries=5)
    engine, endpoint, call = engine_parts(b, eid, "stream_chat")
    with pytest.raises(OverloadedError) as info:
        list(engine.stream(endpoint, call, once=True))
    assert info.value.attempts == 1 and len(server.requests) == 1


@pytest.mark.asyncio
async def test_async_stream_once_makes_exactly_one_attempt(server):
    """The same on the event loop."""
    server.script([Reply(503), SSE])
    b, eid = make(server, max_retries=5)
    engine, endpoint, call = engine_parts(b, eid, "stream_chat")
    with pytest.raises(OverloadedError) as info:
        async for _ in engine.astream(endpoint, call, once=True):
            pass
    assert info.value.attempts == 1 and len(server.requests) == 1
    await b.aclose()


def test_once_still_succeeds_when_the_attempt_does(server):
    """once=True returns the result of its one attempt."""
    server.script([OK])
    b, eid = make(server, max_retries=5)
    engine, endpoint, call = engine_parts(b, eid)
    assert engine.call(endpoint, call, ChatResult, once=True).text == "hello"


def test_deadline_at_shortens_the_deadline(server):
    """deadline_at earlier than the endpoint's own deadline (none here) bounds the call: a
    pause past it fails the call at once."""
    server.script([limited(30)])
    b, eid = make(server)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)
    engine, endpoint, call = engine_parts(b, eid)
    with pytest.raises(ipfs_accel.TimeoutError, match="deadline") as info:
        engine.call(endpoint, call, ChatResult, deadline_at=time.monotonic() + 5)
    assert not info.value.retryable and len(server.requests) == 1
    assert "None" not in str(info.value)


@pytest.mark.asyncio
async def test_async_deadline_at_shortens_the_deadline(server):
    """The same on the event loop, and for a stream."""
    server.script([limited(30)])
    b, eid = make(server)
    with pytest.raises(RateLimitError):
        await b.achat(MSG, endpoint_id=eid)
    engine, endpoint, call = engine_parts(b, eid)
    with pytest.raises(ipfs_accel.TimeoutError):
        await engine.acall(endpoint, call, ChatResult, deadline_at=time.monotonic() + 5)
    engine, endpoint, call = engine_parts(b, eid, "stream_chat")
    with pytest.raises(ipfs_accel.TimeoutError):
        async for _ in engine.astream(endpoint, call, deadline_at=time.monotonic() + 5):
            pass
    assert len(server.requests) == 1
    await b.aclose()


def test_deadline_at_already_past_sends_nothing(server):
    """A deadline_at already gone: TimeoutError, no request."""
    b, eid = make(server)
    engine, endpoint, call = engine_parts(b, eid)
    with pytest.raises(ipfs_accel.TimeoutError):
        engine.call(endpoint, call, ChatResult, deadline_at=time.monotonic() - 1)
    assert server.requests == []


def test_deadline_at_later_than_the_endpoints_does_not_lengthen_it(server):
    """The endpoint's own deadline still holds when deadline_at is later."""
    server.script([limited(30)])
    b, eid = make(server, deadline=2.0)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)
    engine, endpoint, call = engine_parts(b, eid)
    with pytest.raises(ipfs_accel.TimeoutError):
        engine.call(endpoint, call, ChatResult, deadline_at=time.monotonic() + 1000)


# -- the hold itself, on a fake clock ---------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda n: None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.on_sleep(len(self.slept))
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(endpoint_module, "_monotonic", c)
    monkeypatch.setattr(_pace, "_monotonic", c)
    monkeypatch.setattr(_pace, "_sleep", c.sleep)
    monkeypatch.setattr(_pace, "_asleep", c.asleep)
    return c


def hold_parts(**settings: Any):
    b = Registry(plugins=[_echo_plugin], entry_points=False).get("echo")
    eid = b.create_endpoint(base_url="http://127.0.0.1:9", api_key="k", **settings)
    endpoint, call = b._prepare("chat", eid, None, None, {}, messages=MSG)
    return b._engine.x, endpoint, call


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_pause_extended_during_the_wait_holds_the_attempt_on(clock, mode):
    """An attempt waiting out a pause that another call's 429 extends meanwhile does not
    go at the old end: it waits for the new one."""
    x, endpoint, call = hold_parts()
    gate = endpoint.gate
    gate.pause(clock.now + 1.0, "first 429")

    def extend(n: int) -> None:
        if n == 1:
            with endpoint.limiter.lock:
                gate.pause(clock.now + 3.0, "a later, longer 429")

    clock.on_sleep = extend
    if mode == "sync":
        res, _ = _pace.hold_sync(x, endpoint, endpoint.config, call, None)
    else:
        res, _ = asyncio.run(_pace.hold_async(x, endpoint, endpoint.config, call, None))
    assert res is not None and res.at == 1003.0 and clock.now == 1003.0
    assert clock.slept == [1.0, 2.0]
    assert (gate.paced, gate.paced_seconds) == (1, 3.0)  # one attempt held, 3 s in all


def test_attempts_held_by_a_pause_extended_go_paced_after_it(clock):
    """Attempts waiting on a pause that grows are booked again behind it, still spaced
    by rpm (not all at once at its end)."""
    x, endpoint, call = hold_parts(rpm=60)
    gate = endpoint.gate
    gate.pause(clock.now + 1.0, "first")
    early = endpoint.reserve(0)  # another attempt, booked first, at 1001
    assert early is not None and early.at == 1001.0

    def extend(n: int) -> None:
        if n == 1:
            gate.pause(clock.now + 5.0, "longer")

    clock.on_sleep = extend
    res, _ = _pace.hold_sync(x, endpoint, endpoint.config, call, None)
    assert res is not None and res.at == 1005.0 and clock.now == 1005.0
    other = endpoint.reserve(0)  # the early attempt, booking again as it wakes
    assert other is not None and other.at == 1006.0


def test_a_pause_too_long_refuses_even_with_pacing_after_it(clock):
    """Calls queued behind a pause longer than max_retry_after are refused, even when
    pacing (not the pause) is what ends their wait."""
    x, endpoint, call = hold_parts(rpm=6, max_retry_after=10)  # 10 s a request
    endpoint.reserve(0)
    endpoint.reserve(0)  # requests booked until +20
    endpoint.gate.pause(clock.now + 15.0, "the server asked to wait (rate_limited)")
    with pytest.raises(RateLimitError, match="max_retry_after") as info:
        _pace.hold_sync(x, endpoint, endpoint.config, call, None)
    assert info.value.retry_after is not None and info.value.retry_after >= 15.0
    assert clock.slept == []


def test_pacing_alone_is_not_bounded_by_max_retry_after(clock):
    """A long wait from rpm pacing alone is waited out (the deadline bounds it, not
    max_retry_after, which caps what a server asks)."""
    x, endpoint, call = hold_parts(rpm=1, max_retry_after=10)  # 60 s a request
    endpoint.reserve(0)
    res, _ = _pace.hold_sync(x, endpoint, endpoint.config, call, None)
    assert res is not None and clock.slept == [60.0]


def test_a_refused_attempt_is_not_counted_as_paced_and_gives_its_booking_back(clock):
    """A call refused for the deadline leaves no trace in the budget or the counters."""
    x, endpoint, call = hold_parts(rpm=60)
    endpoint.reserve(0)
    gate = endpoint.gate
    paced = gate.paced
    with pytest.raises(ipfs_accel.TimeoutError):
        _pace.hold_sync(x, endpoint, endpoint.config, call, clock.now + 0.5)
    assert gate.paced == paced and gate.paced_seconds == 0.0
    assert gate.requests is not None and gate.requests.tat == clock.now + 1.0


def test_estimate_tokens_is_input_size_over_four_plus_max_tokens():
    """The tpm estimate: the encoded input's size / 4, plus the output it allows."""
    call = ipfs_accel.Call(operation="chat", model="m", messages=[{"role": "user",
                           "content": "x" * 400}], params={"max_tokens": 50})
    estimate = _pace.estimate_tokens(call)
    assert 100 + 50 <= estimate <= 100 + 50 + 20
    unbounded = ipfs_accel.Call(operation="embed", model="m", inputs=["abcd" * 10])
    assert 10 <= _pace.estimate_tokens(unbounded) <= 15


# -- what the later review fixed ----------------------------------------------------------


def test_honor_retry_after_false_does_not_pause_the_endpoint(server):
    """honor_retry_after=False: a 429's Retry-After neither delays the retry nor pauses
    the endpoint for the calls behind it."""
    server.script([limited(30), OK])
    b, eid = make(server, honor_retry_after=False)
    with pytest.raises(RateLimitError):
        b.chat(MSG, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.state, stats.paused_until, stats.rate_limited) == ("ready", None, 1)
    assert b.chat(MSG, endpoint_id=eid).text == "hello"


def test_a_stream_reporting_no_usage_keeps_its_token_estimate(server):
    """tpm: a stream whose server reports no usage keeps the tokens it booked (as a unary
    call does); settling to 0 would let the next call go as if nothing was used."""
    server.script([Stream(SSE.lines)])
    b, eid = make(server, tpm=60)  # a token a second
    deltas = [c.delta for c in b.stream_chat(MSG, endpoint_id=eid, max_tokens=5)]
    assert "".join(deltas) == "hello"
    gate = b._endpoint(eid).gate
    assert gate.tokens is not None
    assert gate.tokens.tat - time.monotonic() > 4  # the 5 max_tokens still booked


def test_a_direct_call_cancelled_leaves_a_pools_probe_out(server):
    """Only the pool that took an endpoint's probe gives it back: a direct call cancelled
    on that endpoint says nothing about the probe (a second probe would go out)."""
    server.script([Hold(release=threading.Event())])
    b, eid = make(server, unhealthy_after=1, cooldown=0.01)
    endpoint = b._endpoint(eid)
    with endpoint._lock:
        endpoint.gate.failed(ipfs_accel.ErrorKind.SERVER, None, time.monotonic() - 1)
    assert endpoint.take() == "probe"

    async def main() -> None:
        task = asyncio.ensure_future(b.achat(MSG, endpoint_id=eid))
        await auntil(lambda: len(server.requests) == 1, "the call reached the server")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await b.aclose()

    asyncio.run(main())
    assert endpoint.gate.probing and endpoint.take() == ""

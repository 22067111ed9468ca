"""Pools under load, where a surprise would hurt: a member whose own pacing would hold a
call past the deadline hands it to another, asking the same member again after a 429
that did not pause it still backs off, max_wait bounds a wait for another call's probe,
the conservation laws survive reset_stats with a call in flight, and (a design question)
an ordered pool's paced primary.

Each member has its own FaultServer, answering with its own letter. Tests wait on events;
times are only checked from below."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import _echo_plugin
import pytest
from ipfs_accel import CallError, Pool, RateLimitError, Registry
from ipfs_accel.testing import FaultServer, Hold, Reply

MSG = [{"role": "user", "content": "hi"}]


def body(text: str) -> dict[str, Any]:
    return {"model": "echo-1", "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def failing(status: int, retry_after: str | None = None) -> Reply:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    return Reply(status, json={"error": {"message": f"status {status}"}}, headers=headers)


@pytest.fixture
def servers() -> Iterator[list[FaultServer]]:
    """Two servers; each answers every unscripted request with its letter."""
    with contextlib.ExitStack() as stack:
        out = []
        for letter in "AB":
            reply = Reply(200, json=body(letter))
            out.append(stack.enter_context(FaultServer(responder=lambda r, reply=reply: reply)))
        yield out


def make(servers: list[FaultServer], settings: list[dict[str, Any]], strategy: str = "least-busy",
         **options: Any) -> tuple[Any, Any, list[str]]:
    registry = Registry(plugins=[_echo_plugin], entry_points=False, environ={})
    backend = registry.get("echo")
    eids = [backend.create_endpoint(base_url=srv.base_url, api_key=f"k{i}", **own)
            for i, (srv, own) in enumerate(zip(servers, settings, strict=True))]
    pool = registry.pool([("echo", eid) for eid in eids], strategy=strategy, **options)
    return pool, backend, eids


def conserved(pool: Any) -> None:
    """The pool's counters against its members' (nothing in flight)."""
    stats = pool.get_stats()
    members = list(stats.members.values())
    assert stats.in_flight == 0 and stats.calls == stats.ok + stats.failed
    assert stats.attempts == sum(m.total_requests for m in members)
    assert stats.ok == sum(m.successful_requests for m in members)
    assert stats.attempts - stats.ok == sum(m.failed_requests for m in members)
    assert stats.attempts == stats.calls - stats.unsent + stats.retries


def chat(pool: Any, use_async: bool) -> str:
    if use_async:
        return asyncio.run(pool.achat(MSG)).text  # type: ignore[no-any-return]
    return pool.chat(MSG).text  # type: ignore[no-any-return]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("strategy", ["round-robin", "ordered", "weighted"])
def test_a_member_paced_past_the_deadline_hands_the_call_to_another(servers, strategy, use_async):
    """A's rpm of 1 would hold a second call for a minute, past the pool's deadline: the
    call goes to B, which is idle, instead of failing with A's TimeoutError."""
    pool, _, _ = make(servers, [{"rpm": 1}, {}], strategy, deadline=30)
    got = [chat(pool, use_async) for _ in range(4)]
    assert got[0] == "A" and got[1:] == ["B", "B", "B"]
    assert len(servers[0].requests) == 1  # the refused attempts were never sent to A
    stats = pool.get_stats()
    assert (stats.ok, stats.failed) == (4, 0)
    conserved(pool)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("retry_after", "honor"), [("0", True), ("5", False), ("0.001", True)],
                         ids=["retry-after-0", "not-honored", "retry-after-1ms"])
def test_asking_the_same_member_again_after_a_429_backs_off(servers, retry_after, honor,
                                                          use_async):
    """A 429 whose Retry-After does not pause the member (0, 1 ms, or not honored) is
    retried on the only member no sooner than the pool's backoff, as on one endpoint,
    not at once max_retries times."""
    pool, _, _ = make(servers[:1], [{"honor_retry_after": honor}], max_retries=2,
                      initial_retry_delay=0.05, backoff_factor=2, retry_jitter=0)
    servers[0].script([failing(429, retry_after)] * 3)
    start = time.monotonic()
    with pytest.raises(RateLimitError):
        chat(pool, use_async)
    elapsed = time.monotonic() - start
    stats = pool.get_stats()
    assert stats.attempts == 3 and len(servers[0].requests) == 3
    assert stats.retry_wait_seconds >= 0.14  # 0.05 + 0.1, less the 1 ms pauses
    assert elapsed >= 0.14


@pytest.mark.parametrize("max_wait", [0.0, 0.3])
def test_max_wait_bounds_a_wait_for_another_calls_probe(servers, max_wait):
    """The only member is cooling down with another call's probe out (held by the
    server): a call of another pool waits at most max_wait for it, and the error says
    so; it is counted as one wait however often the pool looked again."""
    arrived, go = threading.Event(), threading.Event()
    calls = []

    def responder(r: Any) -> Any:
        calls.append(r)
        if len(calls) == 1:
            return failing(500)
        arrived.set()
        return Hold(release=go, then=Reply(200, json=body("A")))

    with FaultServer(responder=responder) as srv:
        pool, backend, eids = make([srv], [{"unhealthy_after": 1, "cooldown": 0.01}],
                                   max_retries=0)
        with pytest.raises(CallError):  # the 500 makes it unhealthy
            pool.chat(MSG)
        probe: list[Any] = []
        waiting = Pool([(backend, eids[0])], max_wait=max_wait)
        t = threading.Thread(target=lambda: probe.append(pool.chat(MSG).text))
        t.start()
        assert arrived.wait(10)
        start = time.monotonic()
        try:
            with pytest.raises(RateLimitError, match="probe call out") as info:
                waiting.chat(MSG)
            assert f"max_wait ({max_wait}s)" in str(info.value)
            assert time.monotonic() - start >= max_wait
        finally:
            go.set()
            t.join(10)
        assert probe == ["A"]
        stats = waiting.get_stats()
        assert stats.waits == (1 if max_wait else 0)  # once, however often it looked again
        assert (stats.wait_seconds > 0) == (max_wait > 0)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_reset_stats_with_a_call_in_flight_keeps_the_laws(servers, use_async):
    """A call fails over from A (500) to B, where it is held; the pool's stats are reset
    meanwhile. Once it ends, the pool's counters still match its members': the attempt
    running at the reset stays counted on both sides, the one before it on neither."""
    go = threading.Event()
    pool, _, _ = make(servers, [{}, {}], "ordered", initial_retry_delay=0.01)
    servers[0].script([failing(500)])
    servers[1].script([Hold(release=go, then=Reply(200, json=body("B")))])
    out: list[str] = []

    def run() -> None:
        out.append(chat(pool, use_async))

    t = threading.Thread(target=run)
    t.start()
    try:
        assert servers[1].wait_for(1)
        pool.reset_stats()
    finally:
        go.set()
        t.join(10)
    assert out == ["B"]
    stats = pool.get_stats()
    assert (stats.calls, stats.ok, stats.attempts, stats.retries) == (1, 1, 1, 0)
    conserved(pool)
    assert pool.chat(MSG).text == "A"  # and the laws go on holding
    conserved(pool)


def test_ordered_spills_past_a_primary_held_by_its_own_pacing(servers):
    """ordered: A's rpm of 1 is spent, B is idle: the next call is picked for B."""
    pool, _, _ = make(servers, [{"rpm": 1}, {}], "ordered")
    assert pool.chat(MSG).text == "A"
    run = pool.begin("chat", "req_ordered")
    try:
        picked = pool.pick(run)
        assert not isinstance(picked, float)
        assert picked.key == pool.members()[1]
    finally:
        pool.counter.ended(run.tally, ok=False, cancelled=True)

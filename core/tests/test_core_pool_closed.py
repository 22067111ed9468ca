"""A pool's calls queued at a member that turns unhealthy (or is disabled) while they wait
are not sent there: they move on, and the dead member gets only the attempts that found it
open. Without this, every call queued behind the first failures went on to the dead
server one by one (37 of 40 attempts in a run with a concurrency of 1)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import _echo_plugin
import pytest
from ipfs_accel import Registry, TransportError
from ipfs_accel.testing import FaultServer, Reply

MSG = [{"role": "user", "content": "hi"}]
OK = Reply(200, json={"model": "echo-1", "choices": [{"message": {"content": "A"},
                                                       "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 1, "completion_tokens": 1}})


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def _pool(server: FaultServer, **dead: Any) -> tuple[Any, Any]:
    reg = Registry(plugins=[_echo_plugin], entry_points=False)
    backend = reg.get("echo")
    bad = backend.create_endpoint("dead", base_url=dead_url(), max_concurrent_requests=1,
                                  unhealthy_after=2, cooldown=300, **dead)
    good = backend.create_endpoint("live", base_url=server.base_url, max_concurrent_requests=4)
    return reg.pool([("echo", bad), ("echo", good)], strategy="round-robin", max_retries=20), backend


def test_calls_queued_at_a_member_that_died_move_on() -> None:
    """40 concurrent calls, one member refusing connections with a concurrency of 1: its
    queue fills at once, but after two failures it is unhealthy and the calls queued there
    leave without sending."""
    with FaultServer(default=OK) as server:
        pool, backend = _pool(server)

        async def main() -> list[Any]:
            return await asyncio.gather(*(pool.achat(MSG) for _ in range(40)))

        results = asyncio.run(main())
        assert len(results) == 40 and all(r.text == "A" for r in results)
        dead = backend.get_stats("dead")
        assert dead.state == "unhealthy"
        assert dead.consecutive_failures == 2  # the attempts really sent there
        stats = pool.get_stats()
        assert stats.ok == 40 and stats.failed == 0
        # the calls that found it closed were refused without a request: they count as
        # failed attempts on the member (conservation holds), not as its failures
        assert dead.total_requests == stats.attempts - backend.get_stats("live").total_requests
        # and they say so: unsent, beside the two really sent
        assert dead.unsent == dead.total_requests - 2 and dead.unsent > 0


def test_a_direct_call_on_an_unhealthy_endpoint_still_goes() -> None:
    """Only a pool routes around an unhealthy endpoint: a call made on it directly has
    nowhere else to go and is sent."""
    with FaultServer(default=OK) as server:
        reg = Registry(plugins=[_echo_plugin], entry_points=False)
        backend = reg.get("echo")
        eid = backend.create_endpoint(base_url=server.base_url, unhealthy_after=1, max_retries=0)
        backend._endpoint(eid).gate.failed(TransportError.kind, None, 0.0)
        backend._endpoint(eid).gate.unhealthy_until = float("inf")
        assert backend.get_stats(eid).state == "unhealthy"
        assert backend.chat(MSG, endpoint_id=eid).text == "A"
        assert len(server.requests) == 1


def test_refused_without_sending_is_a_retryable_transport_error() -> None:
    """What a pool sees from a member that closed under a queued call."""
    with FaultServer(default=OK) as server:
        reg = Registry(plugins=[_echo_plugin], entry_points=False)
        backend = reg.get("echo")
        eid = backend.create_endpoint(base_url=server.base_url)
        endpoint = backend._endpoint(eid)
        endpoint.gate.disabled = True
        from ipfs_accel._types import ChatResult  # noqa: PLC0415

        _, call = backend._prepare("chat", eid, "req-1", None, {}, messages=MSG)
        with pytest.raises(TransportError, match="not sent: the endpoint is disabled") as caught:
            backend._engine.call(endpoint, call, ChatResult, once=True)
        assert caught.value.retryable and caught.value.attempts == 1
        assert server.requests == []


def test_least_busy_sends_a_call_where_pacing_would_let_it_go_soonest() -> None:
    """Members paced by rpm are not 'unready': least-busy picks the member where the call
    would go soonest (then the least loaded), and when every member is paced it still
    picks one (whose pacing then holds the call) rather than make the call sleep in the
    pool, which woke every waiting call for each freed slot. rpm=60 (1 s apart) keeps the
    order far above any scheduling noise."""
    with FaultServer(default=OK) as a, FaultServer(default=OK) as b:
        reg = Registry(plugins=[_echo_plugin], entry_points=False)
        backend = reg.get("echo")
        ea = backend.create_endpoint("a", base_url=a.base_url, rpm=60)
        eb = backend.create_endpoint("b", base_url=b.base_url, rpm=60)
        pool = reg.pool([("echo", ea), ("echo", eb)])
        endpoint_a, endpoint_b = backend._endpoint(ea), backend._endpoint(eb)
        assert endpoint_a.reserve(0) is not None  # a's next free moment: 1 s from now
        run = pool.begin("chat", "req-1")
        try:
            first = pool.pick(run)
            assert getattr(first, "endpoint_id", None) == "b"  # b would send at once
            assert endpoint_b.reserve(0) is not None  # now both are paced
            second = pool.pick(run)
            assert not isinstance(second, float)  # a member, not a wait in the pool
        finally:
            pool.counter.ended(run.tally, ok=False, cancelled=True)


def test_backoff_between_attempts_on_one_member_is_counted() -> None:
    """A one-member pool retries the member after a backoff; the time slept is the pool's
    retry_wait_seconds."""
    failing = Reply(500, json={"error": {"message": "oops"}})
    with FaultServer() as server:
        server.script([failing, OK])
        reg = Registry(plugins=[_echo_plugin], entry_points=False)
        backend = reg.get("echo")
        eid = backend.create_endpoint(base_url=server.base_url)
        pool = reg.pool([("echo", eid)], initial_retry_delay=0.02, retry_jitter=0)
        assert pool.chat(MSG).text == "A"
        stats = pool.get_stats()
        assert (stats.attempts, stats.retries, stats.failovers) == (2, 1, 0)
        assert stats.retry_wait_seconds >= 0.02


def test_a_probe_refused_before_it_was_sent_is_given_back() -> None:
    """A pool's probe whose attempt never reached the server (its member's queue full)
    gives the probe back, so the member can be probed again rather than stay 'probing'."""
    with FaultServer(default=OK) as server:
        reg = Registry(plugins=[_echo_plugin], entry_points=False)
        backend = reg.get("echo")
        eid = backend.create_endpoint(base_url=server.base_url, unhealthy_after=1,
                                      cooldown=0.01, max_concurrent_requests=1, queue_size=0)
        endpoint = backend._endpoint(eid)
        with endpoint._lock:
            endpoint.gate.failed(TransportError.kind, None, 0.0)  # long cooled down
        endpoint.limiter.enter()  # the one slot taken: the next call finds the queue full
        pool = reg.pool([("echo", eid)], max_retries=0)
        from ipfs_accel import QueueFullError  # noqa: PLC0415

        with pytest.raises(QueueFullError):
            pool.chat(MSG)
        assert not endpoint.gate.probing
        endpoint.limiter.leave()
        assert pool.chat(MSG).text == "A"  # the next probe goes, and succeeds
        assert backend.get_stats(eid).state == "ready"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_member_removed_between_pick_and_call_moves_the_call_on(use_async: bool) -> None:
    """remove_endpoint on a member's backend right after the pool picked that member: the
    call picks again (the removed member is skipped) instead of failing with 'no endpoint'."""
    with FaultServer(default=OK) as a, FaultServer(default=OK) as b:
        reg = Registry(plugins=[_echo_plugin], entry_points=False)
        backend = reg.get("echo")
        ea = backend.create_endpoint("a", base_url=a.base_url)
        eb = backend.create_endpoint("b", base_url=b.base_url)
        pool = reg.pool([("echo", ea), ("echo", eb)], strategy="ordered")
        pick = pool.pick

        def pick_then_remove(run: Any) -> Any:
            got = pick(run)
            if getattr(got, "endpoint_id", None) == "a" and "a" in backend.endpoints():
                backend.remove_endpoint("a")  # the race: removed after the pick
            return got

        pool.pick = pick_then_remove  # type: ignore[method-assign]
        result = asyncio.run(pool.achat(MSG)) if use_async else pool.chat(MSG)
        assert result.text == "A"
        assert (len(a.requests), len(b.requests)) == (0, 1)
        stats = pool.get_stats()
        assert (stats.calls, stats.ok, stats.failed) == (1, 1, 0)

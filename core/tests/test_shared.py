"""Limits shared on a real Redis, in one process: identity without keys, the shared pause,
cluster-wide leases, opting out, Redis going away and coming back, async calls."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from typing import Any

import _echo_plugin
import httpx2
import pytest
from ipfs_accel import RateLimitError, Registry, TimeoutError, TransportError
from ipfs_accel.testing import RedisServer, import_or_skip

import_or_skip("redis")  # shared limits' client: a skip here, a failure under CI
pytestmark = pytest.mark.usefixtures("redis_emptied")  # conftest: each test on an empty Redis

OK = {"model": "echo-1", "choices": [{"message": {"role": "assistant", "content": "hi"},
                                      "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
MSG = [{"role": "user", "content": "hi"}]
KEY = "sk-shared-" + "k" * 24


def _registry(redis: RedisServer, handler: Any = None) -> Registry:
    def ok(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=OK)

    return Registry(plugins=[_echo_plugin], entry_points=False, shared=redis.url,
                    transport=httpx2.MockTransport(handler or ok),
                    async_transport=httpx2.MockTransport(handler or ok))


def _backend(redis: RedisServer, handler: Any = None, **settings: Any) -> Any:
    backend = _registry(redis, handler).get("echo")
    backend.create_endpoint("e", api_key=KEY, initial_retry_delay=0.001, **settings)
    return backend


def _everything(redis: RedisServer) -> str:
    """Every key and every value Redis holds, as one text."""
    parts: list[str] = []
    for key in redis.command("KEYS", "*") or []:
        name = key.decode() if isinstance(key, bytes) else str(key)
        kind = redis.command("TYPE", name)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        value: Any = {"string": ("GET",), "hash": ("HGETALL",),
                      "zset": ("ZRANGE", 0, -1, "WITHSCORES")}.get(kind)
        parts += [name, repr(redis.command(value[0], name, *value[1:]) if value else kind)]
    return "\n".join(parts)


def test_no_key_nor_its_plain_hash_reaches_redis(redis: RedisServer) -> None:
    """The endpoint is known by backend, ID and a salted fingerprint: neither the key nor
    an unsalted hash of it is anywhere in Redis."""
    backend = _backend(redis, rpm=600, max_concurrent_requests=2)
    backend.chat(MSG, endpoint_id="e")
    held = _everything(redis)
    assert "echo:e:" in held  # the endpoint's state is there...
    for secret in (KEY, hashlib.sha256(KEY.encode()).hexdigest(),
                   hashlib.sha256(KEY.encode()).hexdigest()[:24]):
        assert secret not in held  # ...but nothing that gives its key away


def test_same_name_and_key_share_other_key_does_not(redis: RedisServer) -> None:
    """Two processes naming an endpoint alike with the same key share one state; another
    key is another budget."""
    a = _backend(redis, rpm=60)._endpoint("e").shared
    b = _backend(redis, rpm=60)._endpoint("e").shared
    other = _registry(redis).get("echo")
    other.create_endpoint("e", api_key=KEY + "x", rpm=60)
    assert a.keys() == b.keys()
    assert other._endpoint("e").shared.keys() != a.keys()


def test_a_429_pause_in_one_holds_the_others(redis: RedisServer) -> None:
    """A Retry-After one worker is told holds every worker: the next admission elsewhere
    is a pause for about as long."""
    answers = [httpx2.Response(429, headers={"retry-after": "3"},
                               json={"error": {"message": "slow"}}), httpx2.Response(200, json=OK)]
    a = _backend(redis, lambda r: answers.pop(0), max_retry_after=0)
    b = _backend(redis)
    with pytest.raises(RateLimitError):  # 3 s is past its max_retry_after: not waited
        a.chat(MSG, endpoint_id="e")
    held = b._endpoint("e").shared.admit(0.0)
    assert held.why == "pause" and 2.0 < held.wait <= 3.0


def test_leases_are_cluster_wide_and_given_back(redis: RedisServer) -> None:
    """max_concurrent_requests counts every process's calls: a stream held open by one
    worker takes the only slot; once it ends, the slot is free again."""
    body = b'data: {"choices": [{"delta": {"content": "h"}, "finish_reason": null}]}\n\n' \
           b'data: {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}]}\n\n' \
           b"data: [DONE]\n\n"
    a = _backend(redis, lambda r: httpx2.Response(200, content=body), max_concurrent_requests=1)
    b = _backend(redis, max_concurrent_requests=1)
    stream = a.stream_chat(MSG, endpoint_id="e")
    assert next(stream).delta == "h"
    busy = b._endpoint("e").shared.admit(0.0, lease="b1")
    assert busy.why == "busy" and busy.wait > 0
    assert "".join(c.delta for c in stream) == "i"
    go = b._endpoint("e").shared.admit(0.0, lease="b1")  # first in the queue: its turn
    assert go.why == "go"
    b._endpoint("e").shared.settle(go.lease, 0.0, None)


def test_a_call_that_gives_up_waiting_for_a_slot_leaves_the_queue(redis: RedisServer) -> None:
    """A call queued in Redis for the one shared slot whose deadline comes first fails with
    the core's TimeoutError and takes itself out of the queue: the next waiter is first in
    line at once (a waiter left behind would hold the freed slot from it until it lapses)."""
    body = b'data: {"choices": [{"delta": {"content": "h"}, "finish_reason": null}]}\n\n' \
           b'data: {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}]}\n\n' \
           b"data: [DONE]\n\n"
    a = _backend(redis, lambda r: httpx2.Response(200, content=body), max_concurrent_requests=1)
    b = _backend(redis, max_concurrent_requests=1, deadline=0.2, max_retries=0)
    queue = b._endpoint("e").shared.keys()[3]
    stream = a.stream_chat(MSG, endpoint_id="e")
    assert next(stream).delta == "h"
    with pytest.raises(TimeoutError, match="shared limits"):
        b.chat(MSG, endpoint_id="e")
    assert redis.command("ZCARD", queue) == 0
    assert "".join(c.delta for c in stream) == "i"
    assert b._endpoint("e").shared.admit(0.0, lease="next").why == "go"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_waiter_is_told_when_its_turn_comes(redis: RedisServer, mode: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A call queued for the one shared slot does not find it free by asking again: the
    settle that frees it publishes that it is the waiter's turn, and the waiter goes at
    once (every poll here is a minute: only that word can bring it in time)."""
    from ipfs_accel import _shared_endpoint  # noqa: PLC0415

    for name in ("_POLL", "_POLL_NEXT", "_POLL_TOLD"):
        monkeypatch.setattr(_shared_endpoint, name, 60.0)
    body = b'data: {"choices": [{"delta": {"content": "h"}, "finish_reason": null}]}\n\n' \
           b'data: {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}]}\n\n' \
           b"data: [DONE]\n\n"
    # leases of two minutes: the waiter's wait is not cut short by the held one's expiry
    a = _backend(redis, lambda r: httpx2.Response(200, content=body), max_concurrent_requests=1,
                 lease_seconds=120)
    b = _backend(redis, max_concurrent_requests=1, lease_seconds=120)
    shared = b._endpoint("e").shared.shared
    stream = a.stream_chat(MSG, endpoint_id="e")
    assert next(stream).delta == "h"
    answers: list[str] = []

    def call() -> None:
        if mode == "sync":
            answers.append(b.chat(MSG, endpoint_id="e").text)
        else:
            answers.append(asyncio.run(b.achat(MSG, endpoint_id="e")).text)

    waiter = threading.Thread(target=call, daemon=True)
    waiter.start()
    for _ in range(3000):  # bounded: until it waits for its turn, with the turns heard
        if shared._waiters and shared.listening:
            break
        waiter.join(0.01)
    assert shared._waiters and shared.listening
    assert "".join(c.delta for c in stream) == "i"  # the stream ends: its lease comes back
    waiter.join(30)
    assert answers == ["hi"]


def test_opting_out_keeps_an_endpoint_local(redis: RedisServer) -> None:
    """shared=False: the endpoint keeps its limits to itself; nothing of it goes to Redis."""
    backend = _backend(redis, shared=False, rpm=600)
    assert backend._endpoint("e").shared is None
    backend.chat(MSG, endpoint_id="e")
    assert "echo:e" not in _everything(redis)


def test_redis_away_goes_on_locally_warns_once_and_resumes(
        redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """Redis stopped: calls go on with local limits, one warning per outage, no Redis
    exception reaches the caller; back again, shared state resumes."""
    backend = _backend(redis, rpm=6000)
    shared = backend._endpoint("e").shared.shared
    redis.stop()
    with caplog.at_level(logging.WARNING, logger="ipfs_accel"):
        for _ in range(3):
            assert backend.chat(MSG, endpoint_id="e").text == "hi"
        shared.down_until = 0.0  # ask Redis again now, not a second later
        assert backend.chat(MSG, endpoint_id="e").text == "hi"
    unavailable = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(unavailable) == 1
    redis.start()
    shared.down_until = 0.0
    with caplog.at_level(logging.WARNING, logger="ipfs_accel"):
        assert backend.chat(MSG, endpoint_id="e").text == "hi"
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert "echo:e:" in _everything(redis)


def test_redis_away_fails_closed_when_asked(redis: RedisServer) -> None:
    """shared_fail='closed': the call fails with the core's TransportError, retried and then
    final, never a Redis client exception."""
    backend = _backend(redis, shared_fail="closed", max_retries=1)
    redis.stop()
    with pytest.raises(TransportError, match="shared limits unavailable") as info:
        backend.chat(MSG, endpoint_id="e")
    assert type(info.value.__cause__).__module__.split(".")[0] != "redis"
    assert backend.get_stats("e").failed_requests == 1


def test_async_calls_share_and_give_their_lease_back(redis: RedisServer) -> None:
    """achat and astream_chat admit through Redis's asyncio client and give the lease back
    before they return, even under asyncio.run per call."""
    backend = _backend(redis, max_concurrent_requests=1, rpm=6000)
    leases = backend._endpoint("e").shared.keys()[2]
    for _ in range(3):
        assert asyncio.run(backend.achat(MSG, endpoint_id="e")).text == "hi"
        assert redis.command("ZCARD", leases) == 0


def test_a_cancelled_call_gives_its_lease_back(redis: RedisServer) -> None:
    """A call cancelled while its request is in flight stops renewing its lease at once and
    gives it back: the cluster-wide slot is free for the next call (it was kept renewed
    forever when the cancellation also cancelled the settle)."""
    started = asyncio.Event()

    async def held(request: httpx2.Request) -> httpx2.Response:
        started.set()
        await asyncio.Event().wait()  # never answers: the caller cancels
        raise AssertionError("unreachable")

    backend = _backend(redis, held, max_concurrent_requests=1)
    shared = backend._endpoint("e").shared
    leases = shared.keys()[2]

    async def main() -> None:
        task = asyncio.create_task(backend.achat(MSG, endpoint_id="e"))
        await started.wait()
        assert redis.command("ZCARD", leases) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not shared.shared._leases  # not renewed
        for _ in range(200):  # the settle runs as its own task: bounded wait for it
            if redis.command("ZCARD", leases) == 0:
                break
            await asyncio.sleep(0.01)
        assert redis.command("ZCARD", leases) == 0
        assert shared.admit(0.0).why == "go"

    asyncio.run(main())


def test_a_lease_stops_renewing_even_if_its_settle_never_runs(redis: RedisServer) -> None:
    """The settle of a call's end runs as a task on the loop; cancelled before its first
    step (as a caller's cancellation used to cancel it), the lease must still stop being
    renewed, or it would hold a cluster-wide slot for ever."""
    from ipfs_accel._limits import Reservation  # noqa: PLC0415
    from ipfs_accel._pace_shared import release  # noqa: PLC0415

    backend = _backend(redis, max_concurrent_requests=1)
    endpoint = backend._endpoint("e")
    renewing = endpoint.shared.shared._leases

    async def main() -> None:
        adm = await endpoint.shared.aadmit(0.0)
        assert adm.why == "go" and adm.lease in renewing
        res = Reservation(0.0, 0.0, None)
        res.lease = adm.lease
        task = release(endpoint, res, None, None, 0.0)
        assert task is not None
        task.cancel()  # before it ever ran
        assert adm.lease not in renewing

    asyncio.run(main())

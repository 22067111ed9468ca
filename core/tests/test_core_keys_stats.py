"""Keys never leak; each endpoint sends only its own; stats are exact under concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import threading

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipfs_accel import Registry, Stats

CANARY = "sk-canary-4f1c9e2b7d"
MSG = [{"role": "user", "content": "hi"}]


def echo_key_handler(request: httpx2.Request) -> httpx2.Response:
    """Fails with a body that quotes the key back, as some real APIs do."""
    auth = request.headers.get("authorization", "")
    return httpx2.Response(
        401, json={"error": {"message": f"Incorrect API key provided: {auth[7:]}"}}
    )


def test_canary_key_never_in_repr_log_or_error(caplog, capsys):
    """The key appears in no repr, log record, exception text or printed output."""
    caplog.set_level(logging.DEBUG)
    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        transport=httpx2.MockTransport(echo_key_handler))
    backend = registry.get("echo", api_key=CANARY)
    eid = backend.create_endpoint(api_key=CANARY)
    texts = [repr(backend), repr(backend.get_endpoint(eid)), str(backend.get_endpoint(eid)),
             repr(backend.get_endpoint(eid).settings), repr(backend.get_stats(eid))]
    with pytest.raises(ipfs_accel.AuthenticationError) as info:
        backend.chat(MSG, endpoint_id=eid)
    err = info.value
    texts += [str(err), repr(err), err.message, repr(err.body), repr(err.__dict__)]
    texts += [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    out = capsys.readouterr()
    texts += [out.out, out.err]
    assert "Incorrect API key provided: ********" in err.message
    for text in texts:
        assert CANARY not in text
    with pytest.raises(TypeError):
        pickle.dumps(backend.get_endpoint(eid).api_key)


def test_each_endpoint_sends_only_its_own_key():
    """Two endpoints, two keys: every request carries exactly its endpoint's key."""
    seen: list[tuple[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.host, request.headers.get("authorization", "")))
        return httpx2.Response(200, json={"choices": [{"message": {"content": "x"}}]})

    backend = Registry(plugins=[_echo_plugin], entry_points=False,
                       transport=httpx2.MockTransport(handler)).get("echo")
    a = backend.create_endpoint(base_url="http://a.test", api_key="key-a")
    b = backend.create_endpoint(base_url="http://b.test", api_key="key-b")
    c = backend.create_endpoint(base_url="http://c.test")  # no key at all
    for eid in (a, b, c, b, a):
        backend.chat(MSG, endpoint_id=eid)
    assert seen == [("a.test", "Bearer key-a"), ("b.test", "Bearer key-b"), ("c.test", ""),
                    ("b.test", "Bearer key-b"), ("a.test", "Bearer key-a")]


outcomes = st.lists(st.sampled_from(["ok", "429", "400", "500", "drop"]), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes, st.integers(1, 4), st.booleans())
def test_stats_conservation_under_concurrency(plan, concurrency, use_async):
    """Under concurrent calls: total == ok + failed, tokens add up, aggregate == sum of endpoints."""
    lock = threading.Lock()
    script = {f"r{i}": o for i, o in enumerate(plan)}
    attempts: dict[str, int] = {}

    def handler(request: httpx2.Request) -> httpx2.Response:
        rid = request.headers["x-request-id"]
        with lock:
            attempts[rid] = attempts.get(rid, 0) + 1
            first = attempts[rid] == 1
        outcome = script[rid]
        if outcome == "ok" or (outcome in ("429", "500", "drop") and not first):
            return httpx2.Response(200, json={
                "choices": [{"message": {"content": "x"}}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 3}})
        if outcome == "drop":
            raise httpx2.RemoteProtocolError("dropped")
        return httpx2.Response(int(outcome), json={"error": {"message": outcome}})

    transport = httpx2.MockTransport(handler)
    backend = Registry(plugins=[_echo_plugin], entry_points=False, transport=transport).get(
        "echo", max_concurrent_requests=concurrency, initial_retry_delay=0.001,
        max_retry_delay=0.002)
    eids = [backend.create_endpoint(), backend.create_endpoint()]
    results: dict[str, str] = {}

    def one(i: int) -> None:
        rid = f"r{i}"
        try:
            backend.chat(MSG, endpoint_id=eids[i % 2], request_id=rid)
            outcome = "ok"
        except ipfs_accel.CallError:
            outcome = "err"
        with lock:
            assert rid not in results  # ended exactly once
            results[rid] = outcome

    if use_async:
        async def run() -> None:
            async def aone(i: int) -> None:
                rid = f"r{i}"
                try:
                    await backend.achat(MSG, endpoint_id=eids[i % 2], request_id=rid)
                    results[rid] = "ok"
                except ipfs_accel.CallError:
                    results[rid] = "err"
            await asyncio.gather(*(aone(i) for i in range(len(plan))))
        asyncio.run(run())
    else:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(plan))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert len(results) == len(plan)
    expected_ok = sum(1 for o in plan if o != "400")
    assert sum(1 for v in results.values() if v == "ok") == expected_ok
    parts = [backend.get_stats(e) for e in eids]
    agg = backend.get_stats()
    assert agg == Stats.sum(parts) and agg.endpoints_count == 2
    assert agg.total_requests == agg.successful_requests + agg.failed_requests == len(plan)
    assert agg.successful_requests == expected_ok
    assert agg.input_tokens == 2 * expected_ok and agg.output_tokens == 3 * expected_ok
    assert agg.total_tokens == agg.input_tokens + agg.output_tokens
    assert agg.retries == sum(1 for o in plan if o in ("429", "500", "drop"))
    assert agg.in_flight == agg.queued == 0
    assert agg["total_requests"] == agg.total_requests
    for s in parts:
        assert s.total_requests == s.successful_requests + s.failed_requests


def test_reset_stats_keeps_live_calls():
    """reset_stats zeroes finished counts; the aggregate resets with it."""
    backend = Registry(plugins=[_echo_plugin], entry_points=False, transport=httpx2.MockTransport(
        lambda r: httpx2.Response(200, json={"choices": [{"message": {"content": "x"}}]})
    )).get("echo")
    backend.chat(MSG)
    assert backend.get_stats().total_requests == 1
    backend.reset_stats()
    assert backend.get_stats().total_requests == 0
    assert dict(backend.get_stats())["successful_requests"] == 0


def test_snapshots_taken_mid_run_always_add_up():
    """Every snapshot, even while calls are queued and running, has total == ok + failed +
    in flight + queued, and in flight never exceeds the limit."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.headers["x-request-id"].endswith("7"):
            return httpx2.Response(400, json={"error": {"message": "bad"}})
        return httpx2.Response(200, json={"choices": [{"message": {"content": "x"}}],
                                          "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    backend = Registry(plugins=[_echo_plugin], entry_points=False,
                       transport=httpx2.MockTransport(handler)).get(
        "echo", max_concurrent_requests=3, queue_size=1000)
    eid = backend.create_endpoint()
    done = threading.Event()
    samples: list[Stats] = []

    def sample() -> None:
        while not done.is_set():
            samples.append(backend.get_stats(eid))

    def calls(k: int) -> None:
        for i in range(40):
            with contextlib.suppress(ipfs_accel.BadRequestError):
                backend.chat(MSG, endpoint_id=eid, request_id=f"c{k}-{i}")

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=calls, args=(k,)) for k in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    sampler.join()
    assert len(samples) > 10
    for s in samples:
        assert s.total_requests == s.successful_requests + s.failed_requests + s.in_flight + s.queued
        assert s.in_flight <= 3
    final = backend.get_stats(eid)
    assert (final.total_requests, final.failed_requests) == (320, 32)

"""Property tests of pools: whatever each member answers (success, 429 with or without a
tiny Retry-After, 503, 400, a transport error), whatever the strategy, the members' limits
and the concurrency, every call ends exactly once (a result or an error), the pool's
conservation laws with its members' counters hold once nothing is in flight, no error
claims more attempts than the budget allows, and no member's pause ever gets shorter.

A small OpenAI-shaped plugin over httpx2's MockTransport keeps each example fast; member
``i`` is the host ``m{i}.test`` and answers from its own script, then with successes."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipfs_accel import (
    BackendInfo,
    Call,
    CallError,
    ChatResult,
    EndpointConfig,
    Event,
    Exchange,
    Registry,
    Response,
    StreamChunk,
    StreamFailure,
    Usage,
    hookimpl,
)
from ipfs_accel._pool_pick import STRATEGIES

MSG = [{"role": "user", "content": "hi"}]
USAGE = (3, 2)


class FakePlugin:
    """An OpenAI-shaped backend ("fake") offering chat and stream_chat."""

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="fake", description="property-test backend",
                           default_base_url="http://fake.test", default_model="f-1",
                           operations=frozenset({"chat", "stream_chat"}))

    @hookimpl
    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        body = {"model": call.model, "messages": call.messages}
        if call.operation == "stream_chat":
            return Exchange(path="/chat", json={**body, "stream": True}, stream="sse",
                            parse_event=_event)
        return Exchange(path="/chat", json=body, parse=_chat)

    @hookimpl
    def parse_usage(self, operation: str, data: Any) -> Usage | None:
        usage = data.get("usage") if isinstance(data, dict) else None
        if not isinstance(usage, dict):
            return None
        return Usage(input_tokens=usage["in"], output_tokens=usage["out"])


def _chat(resp: Response) -> ChatResult:
    return ChatResult(text=resp.data["text"], finish_reason="stop")


def _event(event: Event) -> StreamChunk | StreamFailure | None:
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    data = event.json
    if not isinstance(data, dict):
        return None
    if "error" in data:
        return StreamFailure(data=data)
    return StreamChunk(delta=data.get("text", ""), finish_reason=data.get("finish"))


ACTIONS = ("ok", "429", "429-tiny", "503", "400", "transport", "error-event")
_USAGE = {"in": USAGE[0], "out": USAGE[1]}


class Members:
    """Each member's script of answers, and the pauses seen so far (checked per request)."""

    def __init__(self, scripts: list[list[str]]) -> None:
        self.scripts = [list(s) for s in scripts]
        self.lock = threading.Lock()
        self.endpoints: list[Any] = []
        self.paused: list[float] = [0.0] * len(scripts)
        self.shortened: list[str] = []

    def check_pauses(self) -> None:
        for i, endpoint in enumerate(self.endpoints):
            now = endpoint.gate.paused_until
            if now < self.paused[i]:
                self.shortened.append(f"member {i}: {self.paused[i]} -> {now}")
            self.paused[i] = max(self.paused[i], now)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        i = int(request.url.host.split(".")[0][1:])
        streaming = json.loads(request.content).get("stream", False)
        with self.lock:
            self.check_pauses()
            action = self.scripts[i].pop(0) if self.scripts[i] else "ok"
        if action == "transport":
            raise httpx2.ConnectError("refused", request=request)
        if action in ("429", "429-tiny", "503", "400"):
            status = int(action[:3])
            headers = {"retry-after": "0.01"} if action == "429-tiny" else {}
            return httpx2.Response(status, headers=headers, json={"error": {"message": action}})
        if not streaming:
            return httpx2.Response(200, json={"text": f"m{i}", "usage": _USAGE})
        events = [{"error": {"message": "crashed"}}] if action == "error-event" else [
            {"text": f"m{i}"}, {"text": "", "finish": "stop", "usage": _USAGE}]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
        if action != "error-event":
            body += "data: [DONE]\n\n"
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=body.encode())


def _run_sync(pool: Any, operation: str, n: int) -> list[Any]:
    """``n`` calls on threads started together; each slot gets its outcome(s)."""
    outcomes: list[list[Any]] = [[] for _ in range(n)]
    barrier = threading.Barrier(n)

    def one(k: int) -> None:
        barrier.wait()
        try:
            if operation == "chat":
                outcomes[k].append(pool.chat(MSG).usage.total_tokens)
            else:
                chunks = list(pool.stream_chat(MSG))
                outcomes[k].append(chunks[-1].usage.total_tokens)
        except CallError as exc:
            outcomes[k].append(exc)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def _run_async(pool: Any, operation: str, n: int) -> list[Any]:
    outcomes: list[list[Any]] = [[] for _ in range(n)]

    async def one(k: int) -> None:
        try:
            if operation == "chat":
                outcomes[k].append((await pool.achat(MSG)).usage.total_tokens)
            else:
                chunks = [c async for c in pool.astream_chat(MSG)]
                outcomes[k].append(chunks[-1].usage.total_tokens)
        except CallError as exc:
            outcomes[k].append(exc)

    async def main() -> None:
        await asyncio.gather(*(one(k) for k in range(n)))

    asyncio.run(main())
    return outcomes


member = st.fixed_dictionaries({
    "script": st.lists(st.sampled_from(ACTIONS), max_size=6),
    "concurrency": st.integers(1, 3),
    "queue_size": st.integers(0, 3),
    "weight": st.integers(1, 4),
})


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    members=st.lists(member, min_size=1, max_size=3),
    strategy=st.sampled_from(STRATEGIES),
    operation=st.sampled_from(["chat", "stream_chat"]),
    calls=st.integers(1, 6),
    max_retries=st.integers(0, 4),
    use_async=st.booleans(),
)
def test_every_call_ends_once_and_the_counters_conserve(
    members: list[dict[str, Any]], strategy: str, operation: str, calls: int,
    max_retries: int, use_async: bool,
) -> None:
    """Random answers, strategies and concurrency: each call ends once; the pool's and
    its members' counters agree; pauses only grow; errors respect the budget."""
    scripted = Members([m["script"] for m in members])
    transport = httpx2.MockTransport(scripted.handler)
    registry = Registry(plugins=[FakePlugin()], entry_points=False, environ={},
                        transport=transport, async_transport=transport)
    backend = registry.get("fake")
    specs = []
    for i, m in enumerate(members):
        eid = backend.create_endpoint(
            base_url=f"http://m{i}.test", max_concurrent_requests=m["concurrency"],
            queue_size=m["queue_size"], unhealthy_after=2, cooldown=0.005, max_cooldown=0.02)
        specs.append(("fake", eid, m["weight"]))
        scripted.endpoints.append(backend._endpoint(eid))
    pool = registry.pool(specs, strategy=strategy, max_retries=max_retries, max_wait=5,
                         initial_retry_delay=0.001, max_retry_delay=0.005, retry_jitter=0)

    outcomes = (_run_async if use_async else _run_sync)(pool, operation, calls)

    # every admitted call ended exactly once, with a result or an error
    assert all(len(o) == 1 for o in outcomes), outcomes
    results = [o[0] for o in outcomes if not isinstance(o[0], CallError)]
    errors = [o[0] for o in outcomes if isinstance(o[0], CallError)]
    for exc in errors:
        assert exc.attempts <= max_retries + 1, exc
    stats = pool.get_stats()
    assert (stats.calls, stats.ok, stats.failed, stats.in_flight) == (
        calls, len(results), len(errors), 0)
    # the conservation laws of _pool_stats
    ms = list(stats.members.values())
    assert stats.attempts == sum(m.total_requests for m in ms)
    assert stats.ok == sum(m.successful_requests for m in ms)
    assert stats.attempts - stats.ok == sum(m.failed_requests for m in ms)
    assert stats.attempts == stats.calls - stats.unsent + stats.retries
    assert stats.failovers <= stats.retries
    assert sum(results) == sum(m.total_tokens for m in ms) == len(results) * sum(USAGE)
    assert sum(m.input_tokens for m in ms) == len(results) * USAGE[0]
    assert all(m.in_flight == 0 and m.queued == 0 for m in ms)
    # a pause never got shorter
    scripted.check_pauses()
    assert scripted.shortened == []

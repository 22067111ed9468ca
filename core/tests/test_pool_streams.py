"""Pool streams against loopback servers: a stream moves to another member only before its
first chunk reaches the caller (a 429, a 503, an error event, a dropped connection); after
it, a failure is the caller's, never a silently restarted answer; a stream closed early
counts as cancelled, on the pool and on the member."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import _echo_plugin
import pytest
from ipfs_accel import (
    OverloadedError,
    Registry,
    ServerError,
    StreamChunk,
    StreamInterruptedError,
)
from ipfs_accel.testing import Drop, FaultServer, Reply, Stream, TruncatedStream

MSG = [{"role": "user", "content": "hi"}]
FAST = {"initial_retry_delay": 0.01, "max_retry_delay": 0.05, "retry_jitter": 0}


def event(data: dict[str, Any]) -> list[str]:
    return [f"data: {json.dumps(data)}", ""]


def delta(text: str) -> list[str]:
    return event({"choices": [{"delta": {"content": text}}]})


def sse(*parts: str, usage: tuple[int, int] = (3, 2)) -> Stream:
    lines: list[str] = []
    for part in parts:
        lines += delta(part)
    lines += event({"choices": [{"delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}})
    lines += ["data: [DONE]", ""]
    return Stream(lines)


ERROR_EVENT = Stream(event({"error": {"message": "model crashed"}}))


class Setup:
    def __init__(self, servers: list[FaultServer], strategy: str = "ordered",
                 **options: Any) -> None:
        self.servers = servers
        self.registry = Registry(plugins=[_echo_plugin], entry_points=False, environ={})
        self.backend = self.registry.get("echo")
        self.eids = [self.backend.create_endpoint(base_url=s.base_url, api_key=f"k{i}",
                                                  max_retries=0)
                     for i, s in enumerate(servers)]
        self.pool = self.registry.pool([("echo", e) for e in self.eids], strategy=strategy,
                                       **{**FAST, **options})

    def member(self, i: int) -> Any:
        return self.pool.get_stats().members[f"echo/{self.eids[i]}"]


@pytest.fixture
def setup() -> Iterator[Setup]:
    with FaultServer() as a, FaultServer() as b:
        yield Setup([a, b])


def collect(s: Setup, use_async: bool, **kw: Any) -> tuple[list[StreamChunk], BaseException | None]:
    """The chunks the caller saw, and the error that ended the stream (if one did)."""
    got: list[StreamChunk] = []
    if use_async:
        async def run() -> BaseException | None:
            try:
                async for chunk in s.pool.astream_chat(MSG, **kw):
                    got.append(chunk)
            except Exception as exc:
                return exc
            return None

        return got, asyncio.run(run())
    try:
        for chunk in s.pool.stream_chat(MSG, **kw):
            got.append(chunk)
    except Exception as exc:
        return got, exc
    return got, None


def text(chunks: list[StreamChunk]) -> str:
    return "".join(c.delta for c in chunks)


BEFORE_FIRST_CHUNK = {
    "429": Reply(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "30"}),
    "529": Reply(529, json={"error": {"message": "overloaded"}}),
    "503": Reply(503, json={"error": {"message": "busy"}}),
    "error-event": ERROR_EVENT,
    "drop": Drop(),
    "cut-before-content": TruncatedStream([]),
}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("failure", list(BEFORE_FIRST_CHUNK))
def test_a_failure_before_the_first_chunk_moves_the_stream(setup, failure, use_async):
    """Before any chunk reached the caller, a failed open moves the stream to the next
    member; the caller sees one whole answer, with the same request ID throughout."""
    a, b = setup.servers
    a.script([BEFORE_FIRST_CHUNK[failure]])
    b.script([sse("hel", "lo")])
    chunks, error = collect(setup, use_async, request_id="rid-s")
    assert error is None
    assert text(chunks) == "hello" and chunks[-1].done
    assert {c.request_id for c in chunks} == {"rid-s"}
    assert [r.header("x-request-id") for r in (*a.requests, *b.requests)] == ["rid-s"] * 2
    stats = setup.pool.get_stats()
    assert (stats.ok, stats.attempts, stats.failovers) == (1, 2, 1)
    assert (setup.member(0).failed_requests, setup.member(1).successful_requests) == (1, 1)
    assert setup.member(1).total_tokens == 5


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("after", "error"), [
    (TruncatedStream(delta("hel")), StreamInterruptedError),
    (Stream(delta("hel") + event({"error": {"message": "model crashed"}})), ServerError),
], ids=["cut", "error-event"])
def test_a_failure_after_the_first_chunk_is_the_callers(setup, after, error, use_async):
    """Once a chunk reached the caller, a failure ends the stream with an error: no other
    member is asked, and the caller never sees the text twice."""
    a, b = setup.servers
    a.script([after])
    b.script([sse("hel", "lo")])
    chunks, exc = collect(setup, use_async)
    assert isinstance(exc, error)
    assert text(chunks) == "hel"
    assert exc.attempts == 1
    assert len(b.requests) == 0
    stats = setup.pool.get_stats()
    assert (stats.failed, stats.attempts, stats.failovers) == (1, 1, 0)
    assert setup.member(0).failed_requests == 1


def test_closing_a_pool_stream_early_counts_it_cancelled(setup):
    """A stream closed after its first chunk: the pool and the member count one call
    failed and cancelled, and the member's slot is free."""
    a, _ = setup.servers
    a.script([sse("a", "b", "c")])
    stream = setup.pool.stream_chat(MSG)
    assert next(stream).delta == "a"
    stream.close()  # type: ignore[attr-defined]
    stats = setup.pool.get_stats()
    assert (stats.calls, stats.failed, stats.cancelled, stats.in_flight) == (1, 1, 1, 0)
    member = setup.member(0)
    assert (member.failed_requests, member.cancelled, member.in_flight) == (1, 1, 0)


def test_closing_an_async_pool_stream_early_counts_it_cancelled(setup):
    """The same with astream_chat and aclose."""
    a, _ = setup.servers
    a.script([sse("a", "b", "c")])

    async def run() -> None:
        stream = setup.pool.astream_chat(MSG)
        assert (await anext(stream)).delta == "a"
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(run())
    stats = setup.pool.get_stats()
    assert (stats.calls, stats.failed, stats.cancelled, stats.in_flight) == (1, 1, 1, 0)
    member = setup.member(0)
    assert (member.failed_requests, member.cancelled, member.in_flight) == (1, 1, 0)


def test_a_stream_cancelled_while_opening_ends_once(setup):
    """An async stream cancelled while its first chunk is awaited ends on the pool and
    on the member (slot free, counted cancelled)."""
    a, _ = setup.servers
    a.script([Stream(delta("late"), interval=30)])

    async def run() -> None:
        stream = setup.pool.astream_chat(MSG)
        task = asyncio.ensure_future(anext(stream))
        assert await asyncio.to_thread(a.wait_for, 1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    stats = setup.pool.get_stats()
    assert (stats.calls, stats.cancelled, stats.in_flight) == (1, 1, 0)
    member = setup.member(0)
    assert (member.cancelled, member.in_flight) == (1, 0)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_stream_on_a_single_member_retries_it_before_its_first_chunk(setup, use_async):
    """A one-member pool retries a stream's 503 on that member before its first chunk."""
    a, _ = setup.servers
    s = Setup([a], strategy="least-busy")
    a.script([Reply(503, json={"error": {"message": "busy"}}), sse("ok")])
    chunks, error = collect(s, use_async)
    assert error is None and text(chunks) == "ok"
    assert s.pool.get_stats().attempts == 2


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_stream_whose_members_all_fail_raises_with_every_attempt_counted(setup, use_async):
    """Both members refuse the stream until the budget is spent: the last error, with
    the attempts of the whole call."""
    s = Setup(setup.servers, strategy="round-robin", max_retries=2)
    for srv in setup.servers:
        srv.script([Reply(503, json={"error": {"message": "busy"}})] * 3)
    chunks, error = collect(s, use_async)
    assert chunks == [] and isinstance(error, OverloadedError)
    assert error.attempts == 3
    assert s.pool.get_stats().attempts == 3

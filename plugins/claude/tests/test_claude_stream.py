"""The claude plugin's streams: SSE events into chunks, usage, errors and truncation."""

from __future__ import annotations

import httpx2
import pytest
from _claude_fixtures import (
    KEY,
    error_body,
    make_backend,
    sse,
    sse_response,
    stream_events,
)
from ipfs_accel import OverloadedError, ServerError, StreamInterruptedError
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hello"}]


def test_stream_chat_request_and_chunks() -> None:
    """stream_chat posts stream=true and yields text deltas, then a done chunk with usage."""
    rec = Recorder(sse_response(stream_events("Hel", "lo", "!")))
    backend, eid = make_backend(rec)
    chunks = list(backend.stream_chat(HI, endpoint_id=eid, request_id="rid-s"))
    req = rec.requests[0]
    assert req.url.path == "/v1/messages"
    assert req.headers["x-api-key"] == KEY
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["accept"] == "text/event-stream"
    assert req.headers["x-request-id"] == "rid-s"
    assert rec.body() == {"model": "claude-sonnet-4-6", "messages": HI, "max_tokens": 1024,
                          "stream": True}
    assert "".join(c.delta for c in chunks) == "Hello!"
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("stop", "end_turn")
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (25, 15)
    assert all(c.request_id == "rid-s" for c in chunks)
    assert all(c.server_request_id == "req_server_stream" for c in chunks)
    assert sum(c.done for c in chunks) == 1


def test_stream_usage_counted_in_stats() -> None:
    """A streamed call's usage (message_start input, message_delta output) reaches the stats."""
    rec = Recorder(sse_response(stream_events("a", input_tokens=30, output_tokens=9,
                                              cache_read=70)))
    backend, eid = make_backend(rec)
    chunks = list(backend.stream_chat(HI, endpoint_id=eid))
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.cache_read_tokens == 70
    stats = backend.get_stats()
    assert stats.successful_requests == 1
    assert stats.input_tokens == 100
    assert stats.output_tokens == 9
    assert stats.total_tokens == 109


def test_stream_generate_is_one_user_turn() -> None:
    """stream_generate streams a single user turn with stop_sequences."""
    rec = Recorder(sse_response(stream_events("42", stop_reason="stop_sequence")))
    backend, eid = make_backend(rec)
    chunks = list(backend.stream_generate("answer?", endpoint_id=eid, stop="\n"))
    body = rec.body()
    assert body["messages"] == [{"role": "user", "content": "answer?"}]
    assert body["stop_sequences"] == ["\n"]
    assert body["stream"] is True
    assert "".join(c.delta for c in chunks) == "42"
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == (
        "stop", "stop_sequence")


@pytest.mark.asyncio
async def test_astream_chat() -> None:
    """astream_chat yields the same chunks on the event loop and counts usage."""
    rec = Recorder(sse_response(stream_events("x", "y")))
    backend, eid = make_backend(rec)
    chunks = [c async for c in backend.astream_chat(HI, endpoint_id=eid)]
    assert "".join(c.delta for c in chunks) == "xy"
    assert chunks[-1].done
    assert backend.get_stats().output_tokens == 15
    await backend.aclose()


@pytest.mark.asyncio
async def test_astream_generate() -> None:
    """astream_generate streams one user turn."""
    rec = Recorder(sse_response(stream_events("ok")))
    backend, eid = make_backend(rec)
    chunks = [c async for c in backend.astream_generate("p", endpoint_id=eid)]
    assert "".join(c.delta for c in chunks) == "ok"
    await backend.aclose()


def test_non_text_deltas_are_not_text() -> None:
    """Tool input JSON and thinking deltas never show up as text."""
    events = stream_events("visible")
    events.insert(4, {"type": "content_block_delta", "index": 1,
                      "delta": {"type": "input_json_delta", "partial_json": '{"a":'}})
    events.insert(4, {"type": "content_block_delta", "index": 1,
                      "delta": {"type": "thinking_delta", "thinking": "hmm"}})
    rec = Recorder(sse_response(events))
    backend, eid = make_backend(rec)
    assert "".join(c.delta for c in backend.stream_chat(HI, endpoint_id=eid)) == "visible"


def test_mid_stream_error_raises() -> None:
    """An error event after some text raises (not retried), never yields the error as text."""
    events = stream_events("partial")[:4]
    events.append({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    rec = Recorder(sse_response(events))
    backend, eid = make_backend(rec)
    seen: list[str] = []
    with pytest.raises(ServerError) as info:
        for chunk in backend.stream_chat(HI, endpoint_id=eid):
            seen.append(chunk.delta)
    assert "".join(seen) == "partial"
    assert "boom" in str(info.value)
    assert info.value.code == "api_error"
    assert info.value.server_request_id == "req_server_stream"
    assert len(rec.requests) == 1
    assert backend.get_stats().failed_requests == 1


def test_overloaded_error_before_text_is_retried() -> None:
    """An overloaded_error event before any text is retried; the next stream succeeds."""
    failing = [{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
    rec = Recorder(sse_response(failing), sse_response(stream_events("fine")))
    backend, eid = make_backend(rec)
    chunks = list(backend.stream_chat(HI, endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == "fine"
    assert len(rec.requests) == 2


def test_overloaded_event_kind() -> None:
    """An overloaded_error event that keeps coming ends as OverloadedError."""
    failing = [{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
    rec = Recorder(sse_response(failing))
    backend, eid = make_backend(rec, max_retries=1)
    with pytest.raises(OverloadedError) as info:
        list(backend.stream_chat(HI, endpoint_id=eid))
    assert info.value.attempts == 2


def test_truncated_stream_interrupted() -> None:
    """A stream that ends without message_stop raises StreamInterruptedError."""
    events = [e for e in stream_events("cut") if e["type"] != "message_stop"]
    rec = Recorder(sse_response(events))
    backend, eid = make_backend(rec, max_retries=0)
    with pytest.raises(StreamInterruptedError):
        list(backend.stream_chat(HI, endpoint_id=eid))
    assert backend.get_stats().failed_requests == 1


def test_stream_cut_mid_event_interrupted() -> None:
    """Bytes ending in the middle of an event raise StreamInterruptedError after the text."""
    body = sse(stream_events("abc")[:4]) + b'event: content_block_delta\ndata: {"type": "con'
    rec = Recorder(httpx2.Response(200, content=body,
                                   headers={"content-type": "text/event-stream"}))
    backend, eid = make_backend(rec)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError):
        for chunk in backend.stream_chat(HI, endpoint_id=eid):
            seen.append(chunk.delta)
    assert seen == ["abc"]
    assert len(rec.requests) == 1  # text was already yielded: not retried


def test_stream_http_error_before_events() -> None:
    """A 529 answer to a stream request is retried like a unary one."""
    rec = Recorder(
        httpx2.Response(529, json=error_body("overloaded_error", "Overloaded")),
        sse_response(stream_events("ok")),
    )
    backend, eid = make_backend(rec)
    assert "".join(c.delta for c in backend.stream_chat(HI, endpoint_id=eid)) == "ok"
    assert len(rec.requests) == 2

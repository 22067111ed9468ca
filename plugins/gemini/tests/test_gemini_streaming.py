"""streamGenerateContent?alt=sse: chunks, the last chunk, usage, errors and truncation."""

from __future__ import annotations

import pytest
from _gemini_fixtures import (
    BASE,
    KEY,
    Recorder,
    backend,
    endpoint,
    error_body,
    generate_response,
    json_response,
    sse,
    usage_metadata,
)
from ipfs_accel import CallError, RateLimitError, StreamInterruptedError

STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def _chunks() -> list[dict[str, object]]:
    # Gemini repeats the cumulative usageMetadata on every chunk; the last has finishReason.
    return [
        generate_response("Hel", finish=None, response_id="r-s", usage=usage_metadata(9, 1)),
        generate_response("lo", finish=None, response_id="r-s", usage=usage_metadata(9, 2)),
        generate_response("!", finish="STOP", response_id="r-s", usage=usage_metadata(9, 3)),
    ]


def test_stream_chat_request_and_chunks() -> None:
    """The stream POSTs to :streamGenerateContent?alt=sse; the finishReason chunk ends it."""
    rec = Recorder(sse(_chunks()))
    b = backend(rec)
    eid = endpoint(b)
    chunks = list(b.stream_chat(
        [{"role": "user", "content": "Hi"}], endpoint_id=eid, request_id="req-s", max_tokens=10,
    ))
    req = rec.last
    assert req.method == "POST"
    assert str(req.url) == BASE + STREAM + "?alt=sse"
    assert req.url.params["alt"] == "sse"
    assert req.headers["x-goog-api-key"] == KEY
    assert req.headers["x-request-id"] == "req-s"
    assert req.headers["accept"] == "text/event-stream"
    assert rec.body() == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"maxOutputTokens": 10},
    }
    assert "".join(c.delta for c in chunks) == "Hello!"
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("stop", "STOP")
    assert [c.done for c in chunks[:-1]] == [False] * (len(chunks) - 1)
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (9, 3)
    assert all(c.request_id == "req-s" for c in chunks)
    assert all(c.server_request_id == "r-s" for c in chunks)


def test_streamed_usage_is_counted_in_stats() -> None:
    """The usage of a streamed call is added to the backend's stats once, not per chunk."""
    rec = Recorder(sse(_chunks()))
    b = backend(rec)
    eid = endpoint(b)
    list(b.stream_generate("Hi", endpoint_id=eid))
    list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=eid))
    stats = b.get_stats()
    assert stats.successful_requests == 2
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (18, 6, 24)


@pytest.mark.asyncio
async def test_astream_chat() -> None:
    """The async stream yields the same chunks."""
    rec = Recorder(sse(_chunks()))
    b = backend(rec)
    chunks = [c async for c in b.astream_chat(
        [{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b)
    )]
    assert "".join(c.delta for c in chunks) == "Hello!"
    assert chunks[-1].done


def test_blocked_prompt_ends_the_stream() -> None:
    """A chunk with a promptFeedback block reason and no candidates is the last one."""
    rec = Recorder(sse([{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                         "usageMetadata": usage_metadata(4, 0)}]))
    b = backend(rec)
    chunks = list(b.stream_chat([{"role": "user", "content": "..."}], endpoint_id=endpoint(b)))
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == (
        "content_filter", "PROHIBITED_CONTENT")


def test_mid_stream_error_raises_not_text() -> None:
    """An error object inside the stream raises after the text already received."""
    events = [
        generate_response("partial", finish=None),
        error_body(500, "INTERNAL", "An internal error has occurred."),
    ]
    rec = Recorder(sse(events))
    b = backend(rec)
    received = []
    with pytest.raises(CallError) as info:
        for chunk in b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b)):
            received.append(chunk.delta)
    assert received == ["partial"]
    assert info.value.message == "An internal error has occurred."
    assert info.value.code == "INTERNAL"
    assert info.value.server_request_id == "resp-123"  # the responseId of the chunk before
    assert len(rec.requests) == 1  # text was already yielded: not retried


def test_error_as_first_event_is_classified() -> None:
    """A RESOURCE_EXHAUSTED event before any text is a RateLimitError."""
    rec = Recorder(sse([error_body(429, "RESOURCE_EXHAUSTED", "quota")]))
    b = backend(rec)
    eid = endpoint(b, max_retries=0)
    with pytest.raises(RateLimitError) as info:
        list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=eid))
    assert info.value.code == "RESOURCE_EXHAUSTED"


def test_stream_without_finish_reason_is_interrupted() -> None:
    """A stream that ends before a chunk with a finishReason raises StreamInterruptedError."""
    events = [generate_response("Hel", finish=None), generate_response("lo", finish=None)]
    rec = Recorder(sse(events))
    b = backend(rec)
    received = []
    with pytest.raises(StreamInterruptedError):
        for chunk in b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b)):
            received.append(chunk.delta)
    assert received == ["Hel", "lo"]
    assert b.get_stats().failed_requests == 1


def test_stream_cut_mid_event_is_interrupted() -> None:
    """A body cut inside an event (no blank line after it) is a truncated stream."""
    tail = 'data: {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "ST'
    rec = Recorder(sse([generate_response("a", finish=None)], raw_tail=tail))
    b = backend(rec)
    with pytest.raises(StreamInterruptedError):
        list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b)))


def test_stream_status_error_is_retried_before_any_chunk() -> None:
    """A 503 answering the stream request is retried; the next attempt streams."""
    rec = Recorder(json_response(503, error_body(503, "UNAVAILABLE", "overloaded")), sse(_chunks()))
    b = backend(rec)
    chunks = list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b)))
    assert chunks[-1].done
    assert len(rec.requests) == 2
    assert b.get_stats().retries == 1

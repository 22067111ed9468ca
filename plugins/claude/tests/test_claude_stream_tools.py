"""Tool calls and thinking in claude streams: fragments kept, joined, and nothing else taken."""

from __future__ import annotations

from typing import Any

import pytest
from _claude_fixtures import (
    SIGNATURE,
    WEATHER_TOOL,
    make_backend,
    sse_response,
    stream_events,
    tool_stream_events,
    tool_use,
)
from ipfs_accel import OverloadedError, RateLimitError, StreamChunk, ToolCall
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Weather?"}]


def _stream(*answers: Any, **settings: Any) -> tuple[list[StreamChunk], Recorder]:
    rec = Recorder(*answers)
    backend, eid = make_backend(rec, **settings)
    return list(backend.stream_chat(HI, endpoint_id=eid, tools=[WEATHER_TOOL])), rec


def _calls(chunks: list[StreamChunk]) -> list[ToolCall]:
    return [t for c in chunks for t in c.tool_calls or ()]


def _block(index: int, block: dict[str, Any], *pieces: str) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": block},
        *({"type": "content_block_delta", "index": index,
           "delta": {"type": "input_json_delta", "partial_json": p}} for p in pieces),
        {"type": "content_block_stop", "index": index},
    ]


def _answer(*blocks: list[dict[str, Any]], stop: str = "tool_use") -> list[dict[str, Any]]:
    events = stream_events(stop_reason=stop)
    head, tail = events[:1], events[-2:]  # message_start; message_delta, message_stop
    return [*head, *(e for b in blocks for e in b), *tail]


def test_fragments_are_yielded_not_dropped() -> None:
    """The tool_use start and each input_json_delta reach the caller as fragments (the
    stream used to drop them), and the call is whole on the turn's finish chunk."""
    chunks, _ = _stream(sse_response(tool_stream_events('{"city":', ' "Paris"}')))
    fragments = [d for c in chunks for d in c.tool_call_deltas or ()]
    assert [(d.index, d.id, d.name, d.arguments) for d in fragments] == [
        (0, "toolu_01A09q90qw90lq917835lq9", "get_weather", ""),
        (0, None, None, '{"city":'),
        (0, None, None, ' "Paris"}'),
    ]
    [call] = _calls(chunks)
    assert (call.name, call.arguments, call.arguments_json) == (
        "get_weather", {"city": "Paris"}, '{"city": "Paris"}')


def test_two_calls_by_block_index() -> None:
    """Two tool_use blocks (after a text block) become two calls, in block order."""
    events = _answer(
        [{"type": "content_block_start", "index": 0,
          "content_block": {"type": "text", "text": "Both."}},
         {"type": "content_block_stop", "index": 0}],
        _block(1, {**tool_use("toolu_a"), "input": {}}, '{"city": "Paris"}'),
        _block(2, {**tool_use("toolu_b", "get_time"), "input": {}}),
    )
    chunks, _ = _stream(sse_response(events))
    assert "".join(c.delta for c in chunks) == "Both."
    assert [(c.id, c.name, c.arguments) for c in _calls(chunks)] == [
        ("toolu_a", "get_weather", {"city": "Paris"}), ("toolu_b", "get_time", {})]


def test_input_sent_whole_at_block_start() -> None:
    """A relay that sends the input whole in content_block_start (no deltas) keeps it."""
    chunks, _ = _stream(sse_response(_answer(_block(0, tool_use("toolu_w")))))
    [call] = _calls(chunks)
    assert (call.id, call.arguments) == ("toolu_w", {"city": "Paris"})


def test_server_tool_input_is_no_call() -> None:
    """A server_tool_use block streams its input too; it is not a call for the caller."""
    server = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    events = _answer(_block(0, server, '{"query": "weather"}'),
                     _block(1, {**tool_use(), "input": {}}, '{"city": "Paris"}'))
    chunks, _ = _stream(sse_response(events))
    assert [c.name for c in _calls(chunks)] == ["get_weather"]


def test_thinking_is_kept_for_the_round_trip() -> None:
    """Thinking (its deltas and signature joined) is no text; it rides on the finish chunk
    as extra_content, with the model message_start named."""
    events = tool_stream_events('{"city": "Paris"}', think="Let me think.")
    chunks, _ = _stream(sse_response(events))
    assert "".join(c.delta for c in chunks) == ""
    end = next(c for c in chunks if c.finish_reason is not None)
    assert end.extra_content == {"anthropic": {"thinking": [
        {"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE}]}}
    assert end.model == "claude-sonnet-4-6"


def test_retried_attempt_starts_afresh() -> None:
    """Thinking read before an overloaded error event is forgotten when the stream is sent
    again (message_start starts a new message)."""
    first = [stream_events()[0], *_block(0, {"type": "thinking", "thinking": "old one",
                                             "signature": "s0"}),
             *_block(1, {"type": "thinking", "thinking": "old two", "signature": "s1"}),
             {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
    chunks, rec = _stream(sse_response(first),
                          sse_response(tool_stream_events("{}", think="new thought")))
    assert len(rec.requests) == 2
    end = next(c for c in chunks if c.finish_reason is not None)
    assert end.extra_content == {"anthropic": {"thinking": [
        {"type": "thinking", "thinking": "new thought", "signature": SIGNATURE}]}}


@pytest.mark.parametrize(("error", "raised"), [
    ({"type": "rate_limit_error", "message": "Number of request tokens has exceeded your "
                                             "per-minute rate limit"}, RateLimitError),
    ({"type": "overloaded_error", "message": "Overloaded"}, OverloadedError),
    ({"message": "upstream said: too many requests", "code": "429"}, RateLimitError),
])
def test_error_event_before_any_chunk_is_retried(error: dict[str, Any], raised: type) -> None:
    """A rate-limit or overload error event before any chunk is retried, and raised as
    RateLimitError / OverloadedError once retries are spent."""
    failing = sse_response([stream_events()[0], {"type": "error", "error": error}])
    chunks, rec = _stream(failing, sse_response(stream_events("fine")))
    assert "".join(c.delta for c in chunks) == "fine"
    assert len(rec.requests) == 2
    with pytest.raises(raised) as info:
        _stream(failing, max_retries=1)
    assert info.value.attempts == 2


def test_error_event_after_a_fragment_is_final() -> None:
    """Once a tool-call fragment reached the caller the stream is not started over."""
    events = tool_stream_events('{"city":')[:3]
    events.append({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    rec = Recorder(sse_response(events), sse_response(stream_events("again")))
    backend, eid = make_backend(rec)
    with pytest.raises(RateLimitError):
        list(backend.stream_chat(HI, endpoint_id=eid, tools=[WEATHER_TOOL]))
    assert len(rec.requests) == 1


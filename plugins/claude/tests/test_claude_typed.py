"""Typed decoding: Messages API bodies and stream events are read through the plugin's Structs."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import ipfs_accel_claude
import msgspec
import pytest
from _claude_fixtures import (
    json_response,
    make_backend,
    message,
    sse,
    sse_response,
    stream_events,
    usage,
)
from ipfs_accel import ResponseError, ServerError, StreamInterruptedError
from ipfs_accel.testing import Recorder
from ipfs_accel_claude._wire import Message, MessageDelta, MessageStart
from ipfs_accel_claude._wire import Usage as WireUsage

HI = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(("change", "field"), [
    ({"stop_reason": 3}, "$.stop_reason"),
    ({"model": {"name": "claude"}}, "$.model"),
    ({"usage": {**usage(), "input_tokens": "12"}}, "$.usage.input_tokens"),
    ({"usage": {**usage(), "cache_read_input_tokens": 1.5}}, "$.usage.cache_read_input_tokens"),
    ({"content": [{"type": "text", "text": 42, "citations": None}]}, "$.content[0].text"),
    ({"content": [{"text": "no type"}]}, "$.content[0]"),
    ({"content": {"type": "text", "text": "not a list"}}, "$.content"),
])
def test_a_wrong_typed_field_names_the_field_and_the_backend(
    change: dict[str, Any], field: str
) -> None:
    """A field of the wrong type is a ResponseError naming claude and the field, not retried."""
    rec = Recorder(json_response(200, {**message(), **change}))
    backend, eid = make_backend(rec)
    with pytest.raises(ResponseError) as info:
        backend.chat(HI, endpoint_id=eid)
    text = str(info.value)
    assert "claude sent a chat response" in text and "does not fit" in text
    assert f"`{field}`" in text
    assert info.value.backend == "claude"
    assert info.value.server_request_id == "req_server_1"
    assert len(rec.requests) == 1
    assert backend.get_stats().failed_requests == 1


def test_a_message_without_content_names_the_field() -> None:
    """A body with no content list is refused, naming the missing field."""
    body = {k: v for k, v in message().items() if k != "content"}
    backend, eid = make_backend(Recorder(json_response(200, body)))
    with pytest.raises(ResponseError, match="missing required field `content`"):
        backend.chat(HI, endpoint_id=eid)


def test_unknown_fields_and_block_types_are_tolerated_and_raw_has_the_body() -> None:
    """Unknown fields, thinking and block types added later are skipped; raw is the body."""
    content = [
        {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
        {"type": "text", "text": "Hi ", "citations": None, "future_field": [1, 2]},
        {"type": "hologram_block", "text": "", "payload": {"frames": [1, 2, 3]}},
        {"type": "text", "text": "there.", "citations": None},
    ]
    body = {**message(content=content), "brand_new_field": {"nested": True},
            "usage": {**usage(4, 2), "future_count": 5}}
    backend, eid = make_backend(Recorder(json_response(200, body)))
    result = backend.chat(HI, endpoint_id=eid)
    assert result.text == "Hi there."
    assert result.tool_calls is None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (4, 2)
    assert result.raw == body


def test_tool_use_blocks_come_back_whole() -> None:
    """A tool call's raw is the tool_use block as the API sent it, undeclared fields included."""
    block = {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
             "input": {"city": "Paris"}, "caller": {"type": "direct"}}
    rec = Recorder(json_response(200, message(content=[block], stop_reason="tool_use")))
    backend, eid = make_backend(rec)
    [call] = backend.chat(HI, endpoint_id=eid).tool_calls or []
    assert call.raw == block


def test_null_stop_reason_and_missing_model_are_none() -> None:
    """Fields the API may leave null or out stay None rather than failing."""
    body = {k: v for k, v in message(stop_reason=None).items() if k != "model"}
    backend, eid = make_backend(Recorder(json_response(200, body)))
    result = backend.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason, result.model) == (None, None, None)


def _decode(type_: Any, body: dict[str, Any]) -> Any:
    return msgspec.json.decode(json.dumps(body), type=type_)


def test_parse_usage_reads_the_typed_values() -> None:
    """parse_usage reads the Structs the core decoded (Message, message_start, message_delta)
    and generic bodies the same way; it never raises."""
    body = Message(content=[], usage=WireUsage(input_tokens=10, output_tokens=5,
                                               cache_creation_input_tokens=3))
    u = ipfs_accel_claude.parse_usage("chat", body)
    assert u is not None and (u.input_tokens, u.output_tokens, u.cache_write_tokens) == (13, 5, 3)
    start = _decode(MessageStart, {"type": "message_start", "message": message(use=usage(7, 1))})
    u = ipfs_accel_claude.parse_usage("stream_chat", start)
    assert u is not None and (u.input_tokens, u.output_tokens) == (7, 1)
    delta = _decode(MessageDelta, stream_events()[-2])
    u = ipfs_accel_claude.parse_usage("stream_chat", delta)
    assert u is not None and (u.input_tokens, u.output_tokens) == (0, 15)
    assert ipfs_accel_claude.parse_usage("stream_chat", {"type": "ping"}) is None
    generic = ipfs_accel_claude.parse_usage("chat", message(use=usage(4, 2, cache_read=1)))
    assert generic is not None and (generic.input_tokens, generic.output_tokens) == (5, 2)
    bad = {**message(), "usage": {"input_tokens": "4"}}
    assert ipfs_accel_claude.parse_usage("chat", bad) is None
    assert ipfs_accel_claude.parse_usage("stream_chat", None) is None


def test_unknown_stream_events_and_block_types_are_tolerated() -> None:
    """Event types, block types and delta types added later carry no text and break nothing."""
    events = stream_events("Hel", "lo")
    events.insert(3, {"type": "hologram_event", "payload": {"anything": [1, {"x": None}]}})
    events.insert(3, {"type": "content_block_start", "index": 1,
                      "content_block": {"type": "hologram_block", "frames": 3}})
    events.insert(3, {"type": "content_block_delta", "index": 1,
                      "delta": {"type": "hologram_delta", "frames": [1, 2]}})
    events.insert(3, {"type": "content_block_start", "index": 2,
                      "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
    rec = Recorder(sse_response(events))
    backend, eid = make_backend(rec)
    chunks = list(backend.stream_chat(HI, endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == "Hello"
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("stop", "end_turn")
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 15


def test_stream_chunks_carry_the_event_data_as_raw() -> None:
    """Each chunk's raw is its event's whole data, fields not declared included."""
    events = stream_events("Hi")
    events[3]["delta"]["future_field"] = {"kept": True}
    backend, eid = make_backend(Recorder(sse_response(events)))
    chunks = list(backend.stream_chat(HI, endpoint_id=eid))
    assert chunks[0].raw == events[3]
    assert chunks[-1].raw == {"type": "message_stop"}


@pytest.mark.parametrize(("index", "change", "field"), [
    (3, {"delta": {"type": "text_delta", "text": 5}}, "$.delta.text"),
    (5, {"delta": {"stop_reason": ["end_turn"]}}, "$.delta.stop_reason"),
    (5, {"usage": {"output_tokens": "15"}}, "$.usage.output_tokens"),
    (0, {"message": {"usage": {"input_tokens": "25"}}}, "$.message.usage.input_tokens"),
])
def test_a_wrong_typed_stream_event_names_the_field(
    index: int, change: dict[str, Any], field: str
) -> None:
    """An event with a field of the wrong type ends the stream with a ResponseError naming it."""
    events = stream_events("Hi")
    events[index] = {**events[index], **change}
    rec = Recorder(sse_response(events))
    backend, eid = make_backend(rec)
    with pytest.raises(ResponseError) as info:
        list(backend.stream_chat(HI, endpoint_id=eid))
    text = str(info.value)
    assert "claude sent a stream event" in text and f"`{field}`" in text
    assert info.value.server_request_id == "req_server_stream"
    assert len(rec.requests) == 1


def test_events_without_a_name_are_read_by_their_type() -> None:
    """A stream whose events lost their event: lines (a proxy) is still read by type."""
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in stream_events("a", "b", cache_read=5))
    rec = Recorder(httpx2.Response(200, content=body.encode(),
                                   headers={"content-type": "text/event-stream"}))
    backend, eid = make_backend(rec)
    chunks = list(backend.stream_chat(HI, endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == "ab"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (30, 15)


def test_an_unnamed_event_that_does_not_fit_is_not_text() -> None:
    """An unnamed event of a known type but the wrong shape ends the stream, not retried."""
    events = stream_events("a")
    events[3]["delta"]["text"] = 5
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    rec = Recorder(httpx2.Response(200, content=body.encode(),
                                   headers={"content-type": "text/event-stream"}))
    backend, eid = make_backend(rec)
    with pytest.raises(StreamInterruptedError, match=r"\$\.delta\.text") as info:
        list(backend.stream_chat(HI, endpoint_id=eid))
    assert not info.value.retryable


@pytest.mark.parametrize("data", ['"boom"', "[1, 2]", "not json", '{"type": "error"}',
                                  '{"type": "error", "error": "flat"}'])
def test_error_events_of_any_shape_are_classified(data: str) -> None:
    """An error event is classified whatever its data, never refused as an unfit event."""
    body = sse(stream_events("x")[:1]) + f"event: error\ndata: {data}\n\n".encode()
    rec = Recorder(httpx2.Response(200, content=body,
                                   headers={"content-type": "text/event-stream"}))
    backend, eid = make_backend(rec, max_retries=0)
    with pytest.raises(ServerError) as info:
        list(backend.stream_chat(HI, endpoint_id=eid))
    assert info.value.status == 200

"""hf_tgi: streamed tool calls, in TGI's stream shapes, joined into typed calls."""

from __future__ import annotations

import pytest
from _hf_tgi_fixtures import (
    LEGACY_TOOL_STREAM,
    TOOL,
    TOOL_STREAM,
    Server,
    backend,
    chat_chunk,
    sse,
    tool_chunk,
)
from ipfs_accel import StreamChunk, StreamInterruptedError, ToolCall

USER = [{"role": "user", "content": "Weather in Paris?"}]


def _one(calls: list[ToolCall] | None, arguments_json: str) -> None:
    assert calls is not None
    [call] = calls
    assert (call.id, call.name, call.arguments) == ("0", "get_weather", {"city": "Paris"})
    assert call.arguments_json == arguments_json


def test_stream_without_finish_chunk_ends_with_tool_calls() -> None:
    """TGI 3.2+ sends no finish after a call: [DONE] carries the call and says tool_calls."""
    b, eid = backend(Server(sse(TOOL_STREAM)))
    stream = b.stream_chat(USER, endpoint_id=eid, tools=[TOOL])
    chunks = list(stream)
    assert [c.delta for c in chunks] == [""] * len(chunks)
    assert all(c.tool_call_deltas for c in chunks[:-1])  # every fragment reached the caller
    last = chunks[-1]
    assert last.done
    assert last.finish_reason == "tool_calls"
    _one(last.tool_calls, '{ "city": "Paris"}')
    assert [c for c in chunks[:-1] if c.tool_calls] == []
    result = stream.result
    _one(result.tool_calls, '{ "city": "Paris"}')
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    assert (result.usage.input_tokens, result.usage.output_tokens) == (501, 12)
    assert result.usage.total_tokens == 513


def test_stream_with_finish_chunk() -> None:
    """A call whose last piece came with the finish ("stop"): that chunk carries it."""
    events = [*TOOL_STREAM[:-3], tool_chunk('"}', finish="stop"), *TOOL_STREAM[-2:]]
    b, eid = backend(Server(sse(events)))
    chunks = list(b.stream_chat(USER, endpoint_id=eid, tools=[TOOL]))
    ends = [c for c in chunks if c.tool_calls]
    assert len(ends) == 1
    assert ends[0].finish_reason == "tool_calls"
    assert ends[0].native_finish_reason == "stop"
    assert not ends[0].done
    assert chunks[-1].finish_reason == "tool_calls"


def test_text_stream_keeps_its_own_finish() -> None:
    """A plain answer is untouched: its finish (length) is the stream's, no tool calls."""
    events = [chat_chunk("Hel"), chat_chunk("lo", "length"), "[DONE]"]
    b, eid = backend(Server(sse(events)))
    stream = b.stream_chat(USER, endpoint_id=eid)
    result = stream.final()
    assert (result.text, result.finish_reason, result.tool_calls) == ("Hello", "length", None)


def test_whole_arguments_object_in_a_fragment() -> None:
    """Arguments sent whole as an object in one fragment are joined like text."""
    events = [tool_chunk({"city": "Paris"}, "get_weather"), "[DONE]"]
    b, eid = backend(Server(sse(events)))
    stream = b.stream_chat(USER, endpoint_id=eid, tools=[TOOL])
    result = stream.final()
    _one(result.tool_calls, '{"city":"Paris"}')
    assert result.finish_reason == "tool_calls"


def test_legacy_stream_is_read_from_tgi_grammar_text() -> None:
    """TGI 2.x-3.1: one object per chunk, no name, the grammar text and the EOS token."""
    b, eid = backend(Server(sse(LEGACY_TOOL_STREAM)))
    stream = b.stream_chat(USER, endpoint_id=eid, tools=[TOOL])
    chunks = list(stream)
    # each piece is yielded (no text, nothing for the core to join), so none is retried
    pieces = [c for c in chunks if c.tool_call_deltas == []]
    assert len(pieces) == len(LEGACY_TOOL_STREAM) - 1
    assert all(c.delta == "" for c in chunks)
    ends = [c for c in chunks if c.tool_calls]
    assert len(ends) == 1
    assert ends[0].finish_reason == "tool_calls"
    assert ends[0].native_finish_reason == "stop"
    [call] = ends[0].tool_calls or []
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert call.id.startswith("call_")  # TGI sent "": the core made one
    assert stream.result.tool_calls == [call]
    assert stream.result.finish_reason == "tool_calls"


def test_legacy_no_tool_answer_is_text() -> None:
    """TGI's no_tool function (its 'answer in text' choice) becomes the text, no call."""
    text = '{"function": {"_name": "no_tool", "content": "I am an AI."}}</s>'
    events = [tool_chunk(text[:20], whole=True, call_id=""),
              tool_chunk(text[20:], whole=True, call_id="", finish="eos_token"), "[DONE]"]
    b, eid = backend(Server(sse(events)))
    result = b.stream_chat(USER, endpoint_id=eid, tools=[TOOL]).final()
    assert (result.text, result.tool_calls) == ("I am an AI.", None)
    assert result.finish_reason == "stop"


def test_legacy_stream_cut_mid_call_is_not_started_over() -> None:
    """Pieces of a call reached the caller: a cut stream is interrupted, not sent again."""
    server = Server(sse(LEGACY_TOOL_STREAM[:5]))
    b, eid = backend(server)
    chunks: list[StreamChunk] = []
    with pytest.raises(StreamInterruptedError) as info:
        chunks.extend(b.stream_chat(USER, endpoint_id=eid, tools=[TOOL]))
    assert not info.value.retryable
    assert len(server.requests) == 1
    assert len(chunks) == 5
    assert all(not c.tool_calls for c in chunks)


def test_legacy_unreadable_call_is_an_error_not_a_nameless_call() -> None:
    """Grammar text that holds no call is reported, never returned as a call without a name."""
    events = [tool_chunk("garbage", whole=True, call_id=""),
              tool_chunk("</s>", whole=True, call_id="", finish="stop"), "[DONE]"]
    b, eid = backend(Server(sse(events)))
    chunks: list[StreamChunk] = []
    with pytest.raises(StreamInterruptedError, match="could not read") as info:
        chunks.extend(b.stream_chat(USER, endpoint_id=eid, tools=[TOOL]))
    assert not info.value.retryable
    assert all(not c.tool_calls for c in chunks)


@pytest.mark.asyncio
@pytest.mark.parametrize("events", [TOOL_STREAM, LEGACY_TOOL_STREAM])
async def test_async_stream_result(events: list[object]) -> None:
    """astream_chat joins the same call; .result after the end."""
    b, eid = backend(Server(sse(events)))
    stream = b.astream_chat(USER, endpoint_id=eid, tools=[TOOL])
    chunks = [c async for c in stream]
    await b.aclose()
    assert chunks[-1].finish_reason == "tool_calls"
    result = stream.result
    assert result.tool_calls is not None
    assert (result.tool_calls[0].name, result.tool_calls[0].arguments) == (
        "get_weather", {"city": "Paris"})
    assert result.finish_reason == "tool_calls"

"""The tool loop on claude: chat -> tool call -> result.message + the tool's answer -> chat."""

from __future__ import annotations

from typing import Any

import pytest
from _claude_fixtures import (
    SIGNATURE,
    WEATHER_TOOL,
    json_response,
    make_backend,
    message,
    sse_response,
    thinking,
    tool_stream_events,
    tool_use,
)
from ipfs_accel import ChatResult, ToolCall
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Weather in Paris?"}]
CALL_ID = "toolu_01A09q90qw90lq917835lq9"
THINKING = {"type": "thinking", "thinking": "The user wants the weather: call get_weather.",
            "signature": SIGNATURE}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5"}


def _first(result: ChatResult) -> ToolCall:
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls is not None
    [call] = result.tool_calls
    assert isinstance(call, ToolCall)
    assert (call.id, call.name, call.arguments) == (CALL_ID, "get_weather", {"city": "Paris"})
    return call


def _turn(result: ChatResult, call: ToolCall) -> list[dict[str, Any]]:
    return [*HI, result.message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]


def _sent_back(body: dict[str, Any], *, thinking: list[dict[str, Any]] | None = None,
               text: str | None = None) -> None:
    """The second request: the assistant turn (thinking first, text, tool_use), then the
    answer as a tool_result in a user turn."""
    assistant = [*(thinking or []), *([{"type": "text", "text": text}] if text else []),
                 {"type": "tool_use", "id": CALL_ID, "name": "get_weather",
                  "input": {"city": "Paris"}}]
    assert body["messages"] == [
        HI[0],
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": CALL_ID, "content": "sunny"}]},
    ]
    assert "extra_content" not in str(body)


def test_round_trip() -> None:
    """A claude tool call fed back is a tool_use with its name, id and input, never name null."""
    rec = Recorder(json_response(200, message(content=[tool_use()], stop_reason="tool_use")),
                   json_response(200, message("Sunny in Paris.")))
    backend, eid = make_backend(rec)
    first = backend.chat(HI, endpoint_id=eid, tools=[WEATHER_TOOL])
    call = _first(first)
    assert first.message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": CALL_ID, "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    second = backend.chat(_turn(first, call), endpoint_id=eid, tools=[WEATHER_TOOL])
    assert second.text == "Sunny in Paris."
    _sent_back(rec.body(1))


@pytest.mark.asyncio
async def test_round_trip_async() -> None:
    """The same loop through achat, text before the call kept in its place."""
    content = [{"citations": None, "text": "Let me check.", "type": "text"}, tool_use()]
    rec = Recorder(json_response(200, message(content=content, stop_reason="tool_use")),
                   json_response(200, message("Sunny.")))
    backend, eid = make_backend(rec)
    first = await backend.achat(HI, endpoint_id=eid, tools=[WEATHER_TOOL])
    call = _first(first)
    second = await backend.achat(_turn(first, call), endpoint_id=eid, tools=[WEATHER_TOOL])
    await backend.aclose()
    assert second.text == "Sunny."
    _sent_back(rec.body(1), text="Let me check.")


def test_round_trip_with_thinking() -> None:
    """Thinking blocks (signature included) come back first, before text and tool_use."""
    content = [thinking(), REDACTED, {"citations": None, "text": "Checking.", "type": "text"},
               tool_use()]
    rec = Recorder(json_response(200, message(content=content, stop_reason="tool_use")),
                   json_response(200, message("Sunny.")))
    backend, eid = make_backend(rec)
    first = backend.chat(HI, endpoint_id=eid, tools=[WEATHER_TOOL],
                         thinking={"type": "enabled", "budget_tokens": 1024})
    assert first.extra_content == {"anthropic": {"thinking": [THINKING, REDACTED]}}
    assert first.text == "Checking."
    assert first.message["extra_content"] == first.extra_content
    backend.chat(_turn(first, _first(first)), endpoint_id=eid, tools=[WEATHER_TOOL])
    _sent_back(rec.body(1), thinking=[THINKING, REDACTED], text="Checking.")


def test_stream_round_trip() -> None:
    """Streamed: the tool_use block's pieces join into one ToolCall on the finish chunk and
    on stream.result, whose message goes back like a chat result's."""
    rec = Recorder(sse_response(tool_stream_events('{"ci', 'ty": "Par', 'is"}')),
                   json_response(200, message("Sunny.")))
    backend, eid = make_backend(rec)
    stream = backend.stream_chat(HI, endpoint_id=eid, tools=[WEATHER_TOOL], request_id="r-1")
    chunks = list(stream)
    assert "".join(c.delta for c in chunks) == ""
    ends = [c for c in chunks if c.finish_reason is not None]  # message_delta, then done
    assert {(c.finish_reason, c.native_finish_reason) for c in ends} == {
        ("tool_calls", "tool_use")}
    whole = [t for c in chunks for t in c.tool_calls or ()]
    assert len(whole) == 1 and whole[0].id == CALL_ID and ends[0].tool_calls == whole
    result = stream.result
    call = _first(result)
    assert call.raw is None  # it came in pieces
    assert (result.request_id, result.model) == ("r-1", "claude-sonnet-4-6")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (25, 15)
    backend.chat(_turn(result, call), endpoint_id=eid)
    _sent_back(rec.body(1))


@pytest.mark.asyncio
async def test_astream_round_trip_with_thinking() -> None:
    """astream_chat: text and thinking (signature joined from its delta) come back with
    the call, through stream.result.message."""
    rec = Recorder(sse_response(tool_stream_events('{"city": "Paris"}', text="Checking.",
                                                   think=THINKING["thinking"])),
                   json_response(200, message("Sunny.")))
    backend, eid = make_backend(rec)
    stream = backend.astream_chat(HI, endpoint_id=eid, tools=[WEATHER_TOOL])
    text = "".join([c.delta async for c in stream])
    assert text == "Checking."
    result = stream.result
    assert result.extra_content == {"anthropic": {"thinking": [THINKING]}}
    await backend.achat(_turn(result, _first(result)), endpoint_id=eid)
    await backend.aclose()
    _sent_back(rec.body(1), thinking=[THINKING], text="Checking.")


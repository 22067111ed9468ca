"""The openai plugin's tool calls: typed in results, joined from stream fragments, sent back
in the next turn, and refused where the route has none."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _openai_fixtures import (
    CHAT,
    STREAM_USAGE,
    Server,
    backend,
    chunk,
    function_call,
    sse,
    stream_response,
    tool_calls_answer,
    tool_chunk,
)
from ipfs_accel import ConfigurationError, ToolCall, Usage
from ipfs_accel.testing import TOOL

HI = [{"role": "user", "content": "What is the weather in Paris and in Oslo?"}]
PARIS = function_call("call_paris", "get_weather", '{"city": "Paris"}')
OSLO = function_call("call_oslo", "get_weather", '{"city":"Oslo"}')
CHOICE = {"type": "function", "function": {"name": "get_weather"}}


def _turn(first: Any, *answers: tuple[str, str]) -> list[dict[str, Any]]:
    """The conversation sent back: the question, the assistant's turn, the tools' answers."""
    return [*HI, first.message,
            *({"role": "tool", "tool_call_id": i, "content": a} for i, a in answers)]


def test_chat_tool_calls_are_typed() -> None:
    """Both calls of a message become ToolCalls (id, name, parsed arguments, the text as
    sent, raw); tools and tool_choice go out as given."""
    server = Server(httpx2.Response(200, json=tool_calls_answer(PARIS, OSLO)))
    b, eid = backend(server)
    result = b.chat(HI, endpoint_id=eid, tools=[TOOL], tool_choice=CHOICE,
                    parallel_tool_calls=True)
    assert server.body()["tools"] == [TOOL]
    assert server.body()["tool_choice"] == CHOICE
    assert server.body()["parallel_tool_calls"] is True
    assert result.tool_calls == [
        ToolCall(id="call_paris", name="get_weather", arguments={"city": "Paris"},
                 arguments_json='{"city": "Paris"}', raw=PARIS),
        ToolCall(id="call_oslo", name="get_weather", arguments={"city": "Oslo"},
                 arguments_json='{"city":"Oslo"}', raw=OSLO),
    ]
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "tool_calls")
    assert result.text == ""


def test_chat_arguments_that_are_not_an_object_are_kept_as_written() -> None:
    """Arguments the model garbled give arguments=None, and the text is kept to inspect."""
    garbled = function_call("call_1", "get_weather", '{"city": "Par')
    server = Server(httpx2.Response(200, json=tool_calls_answer(garbled)))
    b, eid = backend(server)
    [call] = b.chat(HI, endpoint_id=eid, tools=[TOOL]).tool_calls or []
    assert (call.arguments, call.arguments_json) == (None, '{"city": "Par')


def _two_calls_streamed() -> list[dict[str, Any]]:
    """Two parallel calls as OpenAI streams them: id and name first, then the arguments in
    pieces, the second call's fragments between the first's."""
    return [
        chunk(""),
        tool_chunk({"index": 0, "id": "call_paris", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}),
        tool_chunk({"index": 0, "function": {"arguments": '{"ci'}}),
        tool_chunk({"index": 1, "id": "call_oslo", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city"'}}),
        tool_chunk({"index": 0, "function": {"arguments": 'ty": "Paris"}'}}),
        tool_chunk({"index": 1, "function": {"arguments": ': "Oslo"}'}}),
        chunk(None, "tool_calls"),
        chunk(usage=STREAM_USAGE),
    ]


def _check_streamed_calls(chunks: list[Any], result: Any) -> None:
    want = [
        ToolCall(id="call_paris", name="get_weather", arguments={"city": "Paris"},
                 arguments_json='{"city": "Paris"}'),
        ToolCall(id="call_oslo", name="get_weather", arguments={"city": "Oslo"},
                 arguments_json='{"city": "Oslo"}'),
    ]
    # the fragment chunks reach the caller (with no text), the whole calls only at the end
    assert sum(1 for c in chunks if c.tool_call_deltas) == 5
    assert [c.tool_calls for c in chunks if c.tool_calls] == [want]
    end = next(c for c in chunks if c.finish_reason is not None)
    assert end.tool_calls == want
    assert (end.finish_reason, end.native_finish_reason) == ("tool_calls", "tool_calls")
    last = chunks[-1]
    assert (last.done, last.finish_reason) == (True, "tool_calls")
    assert last.usage == Usage(input_tokens=9, output_tokens=3, total_tokens=12)
    assert result.tool_calls == want
    assert (result.text, result.finish_reason) == ("", "tool_calls")
    assert result.usage == Usage(input_tokens=9, output_tokens=3, total_tokens=12)
    assert (result.request_id, result.server_request_id) == ("s-1", "req_stream")
    assert result.model == "gpt-4o-mini"


def test_stream_joins_parallel_tool_call_fragments() -> None:
    """Fragments of two calls over several chunks are joined by index; the chunk that ends
    the turn and stream.result carry both calls, usage counted once."""
    server = Server(stream_response(sse(*_two_calls_streamed())))
    b, eid = backend(server)
    stream = b.stream_chat(HI, endpoint_id=eid, request_id="s-1", tools=[TOOL])
    chunks = list(stream)
    assert server.body()["tools"] == [TOOL]
    _check_streamed_calls(chunks, stream.result)
    assert b.get_stats(eid).total_tokens == 12


@pytest.mark.asyncio
async def test_async_stream_joins_parallel_tool_call_fragments() -> None:
    """The same through astream_chat: calls on the last chunk and on the stream's result."""
    server = Server(stream_response(sse(*_two_calls_streamed())))
    b, eid = backend(server)
    stream = b.astream_chat(HI, endpoint_id=eid, request_id="s-1", tools=[TOOL])
    chunks = [c async for c in stream]
    _check_streamed_calls(chunks, stream.result)
    await b.aclose()


def test_stream_text_then_call_that_says_stop() -> None:
    """A turn with text and a call that a server ends with "stop" says tool_calls (the
    value as sent kept), and the result holds both the text and the call."""
    events = [chunk("Checking."), tool_chunk(
        {"index": 0, "id": "call_paris", "function": {"name": "get_weather",
                                                      "arguments": '{"city": "Paris"}'}}),
              chunk(None, "stop")]
    server = Server(stream_response(sse(*events)))
    b, eid = backend(server)
    stream = b.stream_chat(HI, endpoint_id=eid, tools=[TOOL])
    result = stream.final()
    assert (result.text, result.finish_reason, result.native_finish_reason) == (
        "Checking.", "tool_calls", "stop")
    assert [c.name for c in result.tool_calls or []] == ["get_weather"]
    assert result.message["content"] == "Checking."


_SENT_BACK = [
    *HI,
    {"role": "assistant", "content": None, "tool_calls": [PARIS, OSLO]},
    {"role": "tool", "tool_call_id": "call_paris", "content": "sunny, 21 C"},
    {"role": "tool", "tool_call_id": "call_oslo", "content": "rain, 9 C"},
]
_ANSWERS = (("call_paris", "sunny, 21 C"), ("call_oslo", "rain, 9 C"))


def test_round_trip() -> None:
    """chat -> tool calls -> result.message and the tools' answers -> chat: the second
    request holds the assistant's calls as OpenAI gave them and each answer by call ID."""
    server = Server(httpx2.Response(200, json=tool_calls_answer(PARIS, OSLO)),
                    httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = b.chat(HI, endpoint_id=eid, tools=[TOOL])
    second = b.chat(_turn(first, *_ANSWERS), endpoint_id=eid, tools=[TOOL])
    assert server.body(1)["messages"] == _SENT_BACK
    assert server.body(1)["tools"] == [TOOL]
    assert second.text == "Hello! How can I assist you today?"
    assert b.get_stats(eid).successful_requests == 2


@pytest.mark.asyncio
async def test_async_round_trip() -> None:
    """The same loop through achat."""
    server = Server(httpx2.Response(200, json=tool_calls_answer(PARIS, OSLO)),
                    httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = await b.achat(HI, endpoint_id=eid, tools=[TOOL])
    second = await b.achat(_turn(first, *_ANSWERS), endpoint_id=eid, tools=[TOOL])
    assert server.body(1)["messages"] == _SENT_BACK
    assert second.text.startswith("Hello")
    await b.aclose()


def test_round_trip_from_a_stream() -> None:
    """A streamed turn's result goes back the same way (the joined arguments as text)."""
    server = Server(stream_response(sse(*_two_calls_streamed())), httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = b.stream_chat(HI, endpoint_id=eid, tools=[TOOL]).final()
    b.chat(_turn(first, *_ANSWERS), endpoint_id=eid, tools=[TOOL])
    oslo = {**OSLO, "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    assert server.body(1)["messages"][1] == {"role": "assistant", "content": None,
                                             "tool_calls": [PARIS, oslo]}


@pytest.mark.parametrize("params", [
    {"tools": [TOOL]},
    {"tool_choice": "required"},
    {"response_format": {"type": "json_object"}},
    {"response_format": {"type": "json_schema",
                         "json_schema": {"name": "w", "schema": {"type": "object"}}}},
], ids=["tools", "tool_choice", "json_object", "json_schema"])
@pytest.mark.parametrize("operation", ["generate", "stream_generate"])
def test_completions_refuse_tools_and_formats_before_sending(
    operation: str, params: dict[str, Any]
) -> None:
    """/completions has no tools nor response formats: the call is refused unsent, naming
    the operations that take them."""
    server = Server()
    b, eid = backend(server)
    with pytest.raises(ConfigurationError, match=r"in '\w*generate'.*chat, stream_chat"):
        if operation == "generate":
            b.generate("Weather?", endpoint_id=eid, **params)
        else:
            list(b.stream_generate("Weather?", endpoint_id=eid, **params))
    assert server.requests == []
    assert b.get_stats(eid).total_requests == 0

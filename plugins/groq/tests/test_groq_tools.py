"""The groq plugin's tool calls: typed in results, joined from stream fragments (whole calls
in one chunk, as Groq streams them, or in pieces), sent back in the next turn, and refused
where the operation has none."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _groq_fixtures import (
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
from ipfs_accel import ConfigurationError, ToolCall
from ipfs_accel.testing import TOOL

HI = [{"role": "user", "content": "What is the weather in Paris and in Oslo?"}]
PARIS = function_call("call_paris", "get_weather", '{"city":"Paris"}')
OSLO = function_call("call_oslo", "get_weather", '{"city":"Oslo"}')
WANT = [
    ToolCall(id="call_paris", name="get_weather", arguments={"city": "Paris"},
             arguments_json='{"city":"Paris"}'),
    ToolCall(id="call_oslo", name="get_weather", arguments={"city": "Oslo"},
             arguments_json='{"city":"Oslo"}'),
]
_END = chunk(None, "tool_calls", x_groq={"id": "req_01", "usage": STREAM_USAGE})


def test_chat_tool_calls_are_typed() -> None:
    """Both calls of a message become ToolCalls (raw as sent); tools and tool_choice go out
    as given."""
    server = Server(httpx2.Response(200, json=tool_calls_answer(PARIS, OSLO)))
    b, eid = backend(server)
    choice = {"type": "function", "function": {"name": "get_weather"}}
    result = b.chat(HI, endpoint_id=eid, tools=[TOOL], tool_choice=choice)
    assert (server.body()["tools"], server.body()["tool_choice"]) == ([TOOL], choice)
    assert result.tool_calls == [
        ToolCall(id=w.id, name=w.name, arguments=w.arguments, arguments_json=w.arguments_json,
                 raw=raw) for w, raw in zip(WANT, (PARIS, OSLO), strict=True)]
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "tool_calls")


WHOLE = [chunk("", x_groq={"id": "req_01"}),
         tool_chunk({"index": 0, **PARIS}, {"index": 1, **OSLO}), _END]
"""Groq's own form: each call whole, both in one chunk, then the end with x_groq.usage."""
PIECES = [
    chunk("", x_groq={"id": "req_01"}),
    tool_chunk({"index": 0, "id": "call_paris", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city"'}}),
    tool_chunk({"index": 1, "id": "call_oslo", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}),
    tool_chunk({"index": 0, "function": {"arguments": ':"Paris"}'}},
               {"index": 1, "function": {"arguments": '{"city":"Oslo"}'}}),
    _END,
]
"""The same two calls in pieces over several chunks, the fragments of both interleaved."""


def _check(chunks: list[Any], result: Any) -> None:
    end = next(c for c in chunks if c.finish_reason is not None)
    assert end.tool_calls == WANT
    assert [c.tool_calls for c in chunks if c.tool_calls] == [WANT]
    assert (chunks[-1].done, chunks[-1].finish_reason) == (True, "tool_calls")
    assert result.tool_calls == WANT
    assert (result.text, result.finish_reason) == ("", "tool_calls")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (9, 3)
    assert (result.request_id, result.server_request_id) == ("s-1", "req_stream")
    assert result.model == "llama-3.3-70b-versatile"


@pytest.mark.parametrize("events", [WHOLE, PIECES], ids=["whole", "pieces"])
def test_stream_joins_parallel_tool_calls(events: list[dict[str, Any]]) -> None:
    """Two calls, whole or in pieces: the chunk ending the turn and stream.result carry
    both, in index order; x_groq.usage is counted once."""
    server = Server(stream_response(sse(*events)))
    b, eid = backend(server)
    stream = b.stream_chat(HI, endpoint_id=eid, request_id="s-1", tools=[TOOL])
    _check(list(stream), stream.result)
    assert server.body()["tools"] == [TOOL]
    assert b.get_stats(eid).total_tokens == 12


@pytest.mark.asyncio
@pytest.mark.parametrize("events", [WHOLE, PIECES], ids=["whole", "pieces"])
async def test_async_stream_joins_parallel_tool_calls(events: list[dict[str, Any]]) -> None:
    """The same through astream_chat."""
    server = Server(stream_response(sse(*events)))
    b, eid = backend(server)
    stream = b.astream_chat(HI, endpoint_id=eid, request_id="s-1", tools=[TOOL])
    _check([c async for c in stream], stream.result)
    await b.aclose()


_SENT_BACK = [
    *HI,
    {"role": "assistant", "tool_calls": [PARIS, OSLO]},
    {"role": "tool", "tool_call_id": "call_paris", "content": "sunny, 21 C"},
    {"role": "tool", "tool_call_id": "call_oslo", "content": "rain, 9 C"},
]
"""What Groq gets back: nothing but its schema's fields, and no ``content: null`` beside
the calls (the schema says content is required unless tool_calls is there, and its
``nullable`` beside ``oneOf`` does not admit null)."""


def _turn(first: Any) -> list[dict[str, Any]]:
    return [*HI, first.message,
            {"role": "tool", "tool_call_id": "call_paris", "content": "sunny, 21 C"},
            {"role": "tool", "tool_call_id": "call_oslo", "content": "rain, 9 C"}]


def test_round_trip() -> None:
    """chat -> tool calls -> result.message and the answers -> chat: the second request
    holds exactly the assistant's calls and each answer by call ID."""
    server = Server(httpx2.Response(200, json=tool_calls_answer(PARIS, OSLO)),
                    httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = b.chat(HI, endpoint_id=eid, tools=[TOOL])
    second = b.chat(_turn(first), endpoint_id=eid, tools=[TOOL])
    assert server.body(1)["messages"] == _SENT_BACK
    assert second.text == "Fast language models matter."


@pytest.mark.asyncio
async def test_async_round_trip() -> None:
    """The same loop through achat."""
    server = Server(httpx2.Response(200, json=tool_calls_answer(PARIS, OSLO)),
                    httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = await b.achat(HI, endpoint_id=eid, tools=[TOOL])
    second = await b.achat(_turn(first), endpoint_id=eid, tools=[TOOL])
    assert server.body(1)["messages"] == _SENT_BACK
    assert second.text == "Fast language models matter."
    await b.aclose()


def test_round_trip_from_a_stream() -> None:
    """A streamed turn's result goes back the same way."""
    server = Server(stream_response(sse(*PIECES)), httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = b.stream_chat(HI, endpoint_id=eid, tools=[TOOL]).final()
    b.chat(_turn(first), endpoint_id=eid, tools=[TOOL])
    assert server.body(1)["messages"] == _SENT_BACK


@pytest.mark.parametrize("params", [
    {"tools": [TOOL]},
    {"tool_choice": "auto"},
    {"response_format": {"type": "json_object"}},
], ids=["tools", "tool_choice", "json_object"])
@pytest.mark.parametrize("operation", ["generate", "stream_generate"])
def test_generate_refuses_tools_and_formats_before_sending(
    operation: str, params: dict[str, Any]
) -> None:
    """generate is a bare prompt: tools and response formats are refused unsent, naming
    the operations that take them."""
    server = Server()
    b, eid = backend(server)
    with pytest.raises(ConfigurationError, match=r"in '\w*generate'.*chat, stream_chat"):
        if operation == "generate":
            b.generate("Weather?", endpoint_id=eid, **params)
        else:
            list(b.stream_generate("Weather?", endpoint_id=eid, **params))
    assert server.requests == []


def test_assistant_turn_with_text_keeps_it_and_callers_messages_are_untouched() -> None:
    """Only a null content beside tool calls is left out: a turn with text keeps it, an
    assistant turn without calls is sent as given, and the caller's list is not changed."""
    with_text = {"role": "assistant", "content": "Checking.", "tool_calls": [PARIS]}
    bare = {"role": "assistant", "content": None, "tool_calls": [OSLO]}
    plain = {"role": "assistant", "content": "Hello."}
    messages = [*HI, plain, with_text,
                {"role": "tool", "tool_call_id": "call_paris", "content": "sunny"},
                bare, {"role": "tool", "tool_call_id": "call_oslo", "content": "rain"}]
    before = [dict(m) for m in messages]
    server = Server(httpx2.Response(200, json=CHAT), stream_response(sse(chunk("ok", "stop"))))
    b, eid = backend(server)
    b.chat(messages, endpoint_id=eid, tools=[TOOL])
    list(b.stream_chat(messages, endpoint_id=eid, tools=[TOOL]))
    for i in (0, 1):
        sent = server.body(i)["messages"]
        assert sent[1:4] == [plain, with_text, messages[3]]
        assert sent[4] == {"role": "assistant", "tool_calls": [OSLO]}
    assert messages == before

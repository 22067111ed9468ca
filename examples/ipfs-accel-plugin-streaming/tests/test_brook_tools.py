"""Tool calls through brook: OpenAI's vocabulary in Brook's form, Brook's calls back typed, the
round trip (unary, async and streamed), and tools refused where Brook has none."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from ipfs_accel import ConfigurationError, ToolCall
from ipfs_accel.testing import TOOL
from test_brook import CHAT, HI, brook, sse

CALL = {"id": "call-7", "tool": "get_weather", "input": {"city": "Paris"}}
CALLING = {"id": "brk-2", "model": "brook-chat-1", "end": "TOOL_CALL",
           "message": {"role": "assistant", "text": "", "calls": [CALL]},
           "meter": {"read": 30, "written": 8}}
STREAMED = [("start", {"id": "brk-3", "meter": {"read": 30}}),
            ("call", {"index": 0, "id": "call-7", "tool": "get_weather"}),
            ("call_input", {"index": 0, "json": '{"ci'}),
            ("ping", {}),
            ("call_input", {"index": 0, "json": 'ty": "Pa'}),
            ("call_input", {"index": 0, "json": 'ris"}'}),
            ("end", {"end": "TOOL_CALL", "meter": {"written": 8}})]
BROOK_TOOL = {"name": "get_weather", "about": "The weather in a city now.",
              "input_schema": TOOL["function"]["parameters"]}
"""The kit's TOOL in Brook's form."""
ANSWER = {"role": "tool", "tool_call_id": "call-7", "content": "sunny, 21 C"}
SENT_BACK = [
    {"role": "user", "text": "Hi"},
    {"role": "assistant", "text": "", "calls": [CALL]},
    {"role": "tool", "text": "sunny, 21 C", "call_id": "call-7", "tool": "get_weather"},
]
"""The second request's turns: the assistant's call and the tool's answer, in Brook's form."""


@pytest.mark.parametrize(("choice", "mode"), [
    ("auto", "auto"), ("none", "off"), ("required", "any"),
    ({"type": "function", "function": {"name": "get_weather"}}, {"tool": "get_weather"}),
])
def test_tools_and_tool_choice_in_brooks_form(choice: Any, mode: Any) -> None:
    """tools go as Brook's {name, about, input_schema}, tool_choice as its tool_mode."""
    backend, eid, rec = brook(httpx2.Response(200, json=CHAT))
    backend.chat(HI, endpoint_id=eid, tools=[TOOL], tool_choice=choice)
    body = rec.body()
    assert body["tools"] == [BROOK_TOOL]
    assert body["tool_mode"] == mode
    assert not {"tool_choice"} & body.keys()


def test_strict_and_tools_in_brooks_own_form() -> None:
    """strict is kept; a tool already in Brook's form goes as it is, after the mapped ones."""
    native = {"name": "clock", "input_schema": {"type": "object"}}
    strict = {"type": "function", "function": {"name": "f", "strict": True}}
    backend, eid, rec = brook(httpx2.Response(200, json=CHAT))
    backend.chat(HI, endpoint_id=eid, tools=[native, strict])
    assert rec.body()["tools"] == [{"name": "f", "strict": True}, native]
    assert "tool_mode" not in rec.body()


def test_a_call_comes_back_typed() -> None:
    """A reply's calls are ToolCalls with Brook's ID, the input as arguments, finish tool_calls."""
    backend, eid, _ = brook(httpx2.Response(200, json=CALLING))
    result = backend.chat(HI, endpoint_id=eid, tools=[TOOL])
    assert result.tool_calls == [ToolCall(id="call-7", name="get_weather",
                                          arguments={"city": "Paris"},
                                          arguments_json='{"city":"Paris"}', raw=CALL)]
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "TOOL_CALL")
    assert result.message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call-7", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}


def test_a_call_without_an_id_gets_a_stable_one() -> None:
    """A call whose ID a proxy dropped gets the core's stable one, which round-trips."""
    nameless = {**CALLING, "message": {"text": "", "calls": [{"tool": "get_weather"}]}}
    backend, eid, rec = brook(httpx2.Response(200, json=nameless), httpx2.Response(200, json=CHAT))
    first = backend.chat(HI, endpoint_id=eid, tools=[TOOL], request_id="rid-9")
    again = backend.chat(HI, endpoint_id=eid, tools=[TOOL], request_id="rid-9")
    assert first.tool_calls is not None and again.tool_calls is None  # the second said Hello!
    call = first.tool_calls[0]
    assert call.id.startswith("call_") and call.arguments == {}
    backend.chat([*HI, first.message, {**ANSWER, "tool_call_id": call.id}], endpoint_id=eid)
    assert rec.body()["messages"][2]["call_id"] == call.id


def test_round_trip() -> None:
    """chat -> a call -> result.message and the tool's answer -> a second chat in Brook's form."""
    backend, eid, rec = brook(httpx2.Response(200, json=CALLING), httpx2.Response(200, json=CHAT))
    first = backend.chat(HI, endpoint_id=eid, tools=[TOOL])
    second = backend.chat([*HI, first.message, ANSWER], endpoint_id=eid, tools=[TOOL])
    assert second.text == "Hello!" and second.tool_calls is None
    assert rec.body()["messages"] == SENT_BACK
    assert rec.body()["tools"] == [BROOK_TOOL]


def test_round_trip_async() -> None:
    """The same loop through achat, on the running event loop."""
    backend, eid, rec = brook(httpx2.Response(200, json=CALLING), httpx2.Response(200, json=CHAT))

    async def loop() -> Any:
        first = await backend.achat(HI, endpoint_id=eid, tools=[TOOL])
        second = await backend.achat([*HI, first.message, ANSWER], endpoint_id=eid, tools=[TOOL])
        return second.text

    assert asyncio.run(loop()) == "Hello!"
    assert rec.body()["messages"] == SENT_BACK


def test_a_streamed_call_is_joined() -> None:
    """call and call_input events are joined into one ToolCall on the end chunk and the result."""
    backend, eid, rec = brook(sse(*STREAMED), httpx2.Response(200, json=CHAT))
    stream = backend.stream_chat(HI, endpoint_id=eid, tools=[TOOL], request_id="rid-3")
    chunks = list(stream)
    assert rec.body(0)["stream"] is True and rec.body(0)["tools"] == [BROOK_TOOL]
    ends = [c for c in chunks if c.tool_calls]
    assert len(ends) == 1 and ends[0] is chunks[-1] and ends[0].done
    assert ends[0].finish_reason == "tool_calls"
    want = ToolCall(id="call-7", name="get_weather", arguments={"city": "Paris"},
                    arguments_json='{"city": "Paris"}')
    assert ends[0].tool_calls == [want]
    result = stream.result
    assert result.tool_calls == [want] and result.text == ""
    assert (result.request_id, result.server_request_id) == ("rid-3", "brk-3")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (30, 8)
    backend.chat([*HI, result.message, ANSWER], endpoint_id=eid)  # the turn goes back as well
    assert rec.body()["messages"] == SENT_BACK


def test_parallel_calls_streamed_interleaved() -> None:
    """Two calls whose pieces interleave are joined by index, in index order."""
    events = [("call", {"index": 1, "id": "c-b", "tool": "clock"}),
              ("call", {"index": 0, "id": "c-a", "tool": "get_weather"}),
              ("call_input", {"index": 1, "json": "{}"}),
              ("call_input", {"index": 0, "json": '{"city": '}),
              ("text", {"text": "Checking."}),
              ("call_input", {"index": 0, "json": '"Oslo"}'}),
              ("end", {"end": "END_OF_TURN"})]
    backend, eid, _ = brook(sse(*events))

    async def read() -> Any:
        stream = backend.astream_chat(HI, endpoint_id=eid, tools=[TOOL])
        return await stream.final()

    result = asyncio.run(read())
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("c-a", "get_weather", {"city": "Oslo"}), ("c-b", "clock", {})]
    assert result.text == "Checking."
    # Brook said END_OF_TURN, but the turn called tools: the core says so, Brook's value kept
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "END_OF_TURN")


def test_tools_on_generate_are_refused_before_sending() -> None:
    """generate has no tools in Brook: asking for them fails before any request is sent."""
    backend, eid, rec = brook()
    with pytest.raises(ConfigurationError, match="does not take tools in 'generate'"):
        backend.generate("Once", endpoint_id=eid, tools=[TOOL])
    with pytest.raises(ConfigurationError, match="does not take tools in 'stream_generate'"):
        list(backend.stream_generate("Once", endpoint_id=eid, tool_choice="auto"))
    assert rec.requests == []


def test_what_brook_lacks_is_refused_before_sending() -> None:
    """Response formats and images, which Brook does not take, fail before any request."""
    backend, eid, rec = brook()
    with pytest.raises(ConfigurationError, match="json_object"):
        backend.chat(HI, endpoint_id=eid, response_format={"type": "json_object"})
    image = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]
    with pytest.raises(ConfigurationError, match="images"):
        backend.chat(image, endpoint_id=eid)
    assert rec.requests == []


@pytest.mark.parametrize(("messages", "match"), [
    ([*HI, ANSWER], "no assistant message in the conversation made"),
    ([*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call-7", "type": "function",
         "function": {"name": "get_weather", "arguments": "[1]"}}]}, ANSWER],
     r"tool_calls\[0\]\.function\.arguments must be a JSON object"),
    ([*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}],
     r"tool_calls\[0\] needs its 'id'"),
])
def test_a_turn_brook_cannot_take_is_refused_before_sending(messages: Any, match: str) -> None:
    """A tool answer without its call, arguments that are no object, a call without its ID."""
    backend, eid, rec = brook()
    with pytest.raises(ConfigurationError, match=match):
        backend.chat(messages, endpoint_id=eid)
    assert rec.requests == []

"""hf_tgi: the tool loop, chat -> tool call -> result.message + tool answer -> chat."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _hf_tgi_fixtures import CHAT, TGI_TOOL, TOOL, TOOL_STREAM, Server, backend, sse, tool_answer

USER = [{"role": "user", "content": "Weather in Paris?"}]
ANSWER = "sunny, 21 C"

SENT_TURN = {
    "role": "assistant",
    "tool_calls": [{"id": "0", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
}
"""What TGI gets back for its call: no 'content' (TGI reads content before tool calls)."""


def _check_second(body: dict[str, Any], turn: dict[str, Any] = SENT_TURN) -> None:
    assert body["messages"] == [*USER, turn,
                                {"role": "tool", "tool_call_id": "0", "content": ANSWER}]
    assert body["tools"] == [TGI_TOOL]


def test_round_trip_sync() -> None:
    """The assistant turn and the tool's answer go back; TGI's answer is the next result."""
    server = Server(httpx2.Response(200, json=tool_answer()), httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = b.chat(USER, endpoint_id=eid, tools=[TOOL])
    assert first.message == {"role": "assistant", "content": None,
                             "tool_calls": [c.to_message() for c in first.tool_calls or ()]}
    messages = [*USER, first.message,
                {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": ANSWER}]
    second = b.chat(messages, endpoint_id=eid, tools=[TOOL])
    assert second.text == "Hello!"
    assert second.finish_reason == "stop"
    _check_second(server.body(1))


@pytest.mark.asyncio
async def test_round_trip_async() -> None:
    """The same loop through achat."""
    server = Server(httpx2.Response(200, json=tool_answer({"city": "Paris"})),
                    httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    first = await b.achat(USER, endpoint_id=eid, tools=[TOOL])
    assert first.tool_calls is not None
    messages = [*USER, first.message,
                {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": ANSWER}]
    second = await b.achat(messages, endpoint_id=eid, tools=[TOOL])
    await b.aclose()
    assert second.text == "Hello!"
    # the object TGI 2.x-3.1 sent goes back as JSON text, as OpenAI's form has it
    _check_second(server.body(1))


def test_round_trip_from_a_stream() -> None:
    """stream.result.message of a streamed call goes back the same way."""
    server = Server(sse(TOOL_STREAM), httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    stream = b.stream_chat(USER, endpoint_id=eid, tools=[TOOL])
    first = stream.final()
    assert first.tool_calls is not None
    messages = [*USER, first.message,
                {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": ANSWER}]
    assert b.chat(messages, endpoint_id=eid, tools=[TOOL]).text == "Hello!"
    turn = {**SENT_TURN, "tool_calls": [{**SENT_TURN["tool_calls"][0], "function": {
        "name": "get_weather", "arguments": '{ "city": "Paris"}'}}]}
    _check_second(server.body(1), turn)


def test_turn_with_text_and_calls_is_sent_as_calls() -> None:
    """TGI reads a message as content or tool calls, content first: the calls must win."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    turn = {"role": "assistant", "content": "Let me look.",
            "tool_calls": [{"id": "0", "function": {"name": "get_weather",
                                                    "arguments": '{"city":"Paris"}'}}]}
    b.chat([*USER, turn, {"role": "tool", "tool_call_id": "0", "content": ANSWER}],
           endpoint_id=eid, tools=[TOOL])
    _check_second(server.body())


def test_extra_content_is_not_sent() -> None:
    """Another backend's vendor data on a turn stays out of TGI's request."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    turn = {**SENT_TURN, "extra_content": {"google": {"x": 1}},
            "tool_calls": [{**SENT_TURN["tool_calls"][0], "extra_content": {"google": {}}}]}
    b.chat([*USER, turn, {"role": "tool", "tool_call_id": "0", "content": ANSWER}],
           endpoint_id=eid, tools=[TOOL])
    _check_second(server.body())

"""The tool loop: chat -> tool call -> result.message + the tool's answer -> chat again.

Gemini's thinking models sign their function calls: the ``thoughtSignature`` of a
``functionCall`` part must come back on that part in the next request, or the API refuses
the turn. These tests follow what a user writes, sync, async and streamed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _gemini_fixtures import backend, endpoint, generate_response, json_response, sse
from ipfs_accel import ToolCall
from ipfs_accel.testing import TOOL, Recorder

SIG = "CiQBVKhc7kqb0cXzR2Y5x3n0M1h4U2lnbmF0dXJlT25l"
SIG2 = "CiQBVKhc7kqb0cXzR2Y5x3n0M1h4U2lnbmF0dXJlVHdv"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
CALL_PART = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": SIG}


def _answer(**extra: Any) -> dict[str, Any]:
    return generate_response("It is sunny.", **extra)


def _check_call(call: ToolCall, *, signature: str = SIG) -> None:
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert call.id.startswith("call_")  # the API gave none: the core made a stable one
    assert call.extra_content == {"google": {"thought_signature": signature}}


def _check_second(body: dict[str, Any], call: ToolCall) -> None:
    """The second request: the question, the model turn with the signed call, the answer."""
    user, model, answer = body["contents"]
    assert user == {"role": "user", "parts": [{"text": "Weather in Paris?"}]}
    assert model == {"role": "model", "parts": [CALL_PART]}
    assert answer == {"role": "user", "parts": [{"functionResponse": {
        "name": "get_weather", "response": {"result": "sunny, 21 C"}}}]}
    assert call.id not in str(body)  # a made ID is never sent: the API would refuse it
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "The weather in a city now.",
        "parametersJsonSchema": TOOL["function"]["parameters"]}]}]


def test_round_trip_sync() -> None:
    """The signed call comes back typed; sent back, it carries its thoughtSignature."""
    rec = Recorder(json_response(200, generate_response(parts=[CALL_PART])),
                   json_response(200, _answer()))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(ASK, endpoint_id=eid, tools=[TOOL])
    assert (first.finish_reason, first.native_finish_reason) == ("tool_calls", "STOP")
    assert first.tool_calls is not None
    [call] = first.tool_calls
    _check_call(call)
    assert call.raw == CALL_PART
    assert first.message == {"role": "assistant", "content": None,
                             "tool_calls": [call.to_message()]}
    messages = [*ASK, first.message,
                {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = b.chat(messages, endpoint_id=eid, tools=[TOOL])
    assert second.text == "It is sunny."
    _check_second(rec.body(), call)


def test_round_trip_async() -> None:
    """achat: the same loop, the same second request."""
    rec = Recorder(json_response(200, generate_response(parts=[CALL_PART])),
                   json_response(200, _answer()))
    b = backend(rec)
    eid = endpoint(b)

    async def loop() -> ToolCall:
        first = await b.achat(ASK, endpoint_id=eid, tools=[TOOL])
        assert first.tool_calls is not None
        [call] = first.tool_calls
        messages = [*ASK, first.message,
                    {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
        second = await b.achat(messages, endpoint_id=eid, tools=[TOOL])
        assert second.text == "It is sunny."
        return call

    call = asyncio.run(loop())
    _check_call(call)
    _check_second(rec.body(), call)


@pytest.mark.parametrize("together", [True, False], ids=["one-event", "call-then-stop"])
def test_round_trip_streamed(together: bool) -> None:
    """stream_chat: the whole call arrives on a chunk, the turn ends with "tool_calls", and
    ``stream.result.message`` goes back signed as a unary result's does."""
    if together:
        events = [generate_response(parts=[CALL_PART])]
    else:
        events = [generate_response(parts=[CALL_PART], finish=None),
                  generate_response(parts=[{"text": ""}], finish="STOP")]
    rec = Recorder(sse(events), json_response(200, _answer()))
    b = backend(rec)
    eid = endpoint(b)
    stream = b.stream_chat(ASK, endpoint_id=eid, tools=[TOOL], request_id="req-s")
    chunks = list(stream)
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].native_finish_reason == "STOP"
    assert [c.name for ch in chunks for c in ch.tool_calls or ()] == ["get_weather"]
    result = stream.result
    assert result.tool_calls is not None
    [call] = result.tool_calls
    _check_call(call)
    # the stream and a unary answer to the same request agree on the made ID
    unary = backend(Recorder(json_response(200, generate_response(parts=[CALL_PART]))))
    same = unary.chat(ASK, endpoint_id=endpoint(unary), tools=[TOOL], request_id="req-s")
    assert same.tool_calls is not None and same.tool_calls[0].id == call.id
    messages = [*ASK, result.message,
                {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    b.chat(messages, endpoint_id=eid, tools=[TOOL])
    _check_second(rec.body(), call)


def test_parallel_calls_are_answered_in_one_turn() -> None:
    """Two calls (only the first signed, as the API signs parallel calls) are answered by
    two tool messages in one user turn, each by its own function's name, in order."""
    parts = [CALL_PART, {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}]
    rec = Recorder(json_response(200, generate_response("Checking.", parts=[{"text": "Checking."},
                                                                            *parts])),
                   json_response(200, _answer()))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(ASK, endpoint_id=eid, tools=[TOOL])
    assert first.text == "Checking."
    assert first.tool_calls is not None
    weather, time = first.tool_calls
    assert weather.id != time.id
    assert time.extra_content is None
    messages = [*ASK, first.message,
                {"role": "tool", "tool_call_id": time.id, "content": '{"time": "12:00"}'},
                {"role": "tool", "tool_call_id": weather.id, "content": "sunny, 21 C"}]
    b.chat(messages, endpoint_id=eid, tools=[TOOL])
    contents = rec.body()["contents"]
    assert contents[1] == {"role": "model", "parts": [{"text": "Checking."}, *parts]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_time", "response": {"time": "12:00"}}},
        {"functionResponse": {"name": "get_weather", "response": {"result": "sunny, 21 C"}}},
    ]}
    assert len(contents) == 3


def test_an_id_the_api_gave_goes_back_on_both_parts() -> None:
    """A functionCall with an ``id`` keeps it as the call's id, and the next request sends
    it back on the functionCall and on the functionResponse answering it."""
    part = {"functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": SIG2}
    rec = Recorder(json_response(200, generate_response(parts=[part])),
                   json_response(200, _answer()))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(ASK, endpoint_id=eid, tools=[TOOL])
    assert first.tool_calls is not None
    [call] = first.tool_calls
    assert call.id == "fc-7"
    assert call.extra_content == {"google": {"thought_signature": SIG2,
                                             "function_call_id": "fc-7"}}
    messages = [*ASK, first.message,
                {"role": "tool", "tool_call_id": "fc-7", "content": "sunny, 21 C"}]
    b.chat(messages, endpoint_id=eid, tools=[TOOL])
    _, model, answer = rec.body()["contents"]
    assert model["parts"] == [part]
    assert answer["parts"][0]["functionResponse"]["id"] == "fc-7"


def test_a_text_parts_signature_goes_back_on_the_text() -> None:
    """A signature on a text part (a thinking model's plain answer) travels as the result's
    extra_content and goes back on the turn's text part."""
    parts = [{"text": "Thought about it", "thought": True},
             {"text": "Paris is sunny.", "thoughtSignature": SIG}]
    rec = Recorder(json_response(200, generate_response(parts=parts)),
                   json_response(200, _answer()))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(ASK, endpoint_id=eid)
    assert first.text == "Paris is sunny."
    assert first.extra_content == {"google": {"thought_signature": SIG}}
    b.chat([*ASK, first.message, {"role": "user", "content": "Thanks"}], endpoint_id=eid)
    assert rec.body()["contents"][1] == {
        "role": "model", "parts": [{"text": "Paris is sunny.", "thoughtSignature": SIG}]}


def test_a_streamed_text_signature_reaches_the_result() -> None:
    """A stream that signs its text in a later event carries it on stream.result."""
    events = [generate_response("Paris ", finish=None),
              generate_response("", finish="STOP",
                                parts=[{"text": "is sunny.", "thoughtSignature": SIG}])]
    b = backend(Recorder(sse(events)))
    stream = b.stream_chat(ASK, endpoint_id=endpoint(b))
    result = stream.final()
    assert result.text == "Paris is sunny."
    assert result.extra_content == {"google": {"thought_signature": SIG}}

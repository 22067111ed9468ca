"""Tools, structured output and images on OVMS's /v3/chat/completions (OpenAI's form)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import ipfs_accel_ovms
import pytest
from _ovms_fixtures import CHAT_RESPONSE, COMPLETION_RESPONSE, Recorder, backend, endpoint, sse
from ipfs_accel import ConfigurationError, ToolCall

HI = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
ANSWER = "sunny, 21 C"
# OVMS's own call IDs: nine random letters and digits, made by its output parsers.
CALL = {"id": "8J4s6LVgP", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
TOOL_RESPONSE: dict[str, Any] = {
    "choices": [{
        "finish_reason": "tool_calls", "index": 0, "logprobs": None,
        "message": {"content": "", "role": "assistant", "tool_calls": [CALL]},
    }],
    "created": 1716825108, "model": "qwen3", "object": "chat.completion",
    "usage": {"completion_tokens": 21, "prompt_tokens": 180, "total_tokens": 201},
}
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
       "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "logprobs": None, "delta": delta, "finish_reason": finish}],
            "created": 1772634283, "model": "qwen3", "object": "chat.completion.chunk"}


TOOL_STREAM = [
    _chunk({"role": "assistant", "content": None}),
    _chunk({"tool_calls": [{"index": 0, "id": "8J4s6LVgP", "type": "function",
                            "function": {"name": "get_weather"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    _chunk({}, "tool_calls"),
    {"choices": [], "created": 1772634283, "model": "qwen3", "object": "chat.completion.chunk",
     "usage": {"completion_tokens": 21, "prompt_tokens": 180, "total_tokens": 201}},
]


def _assert_weather_call(calls: list[ToolCall] | None) -> ToolCall:
    assert calls is not None and len(calls) == 1
    (call,) = calls
    assert isinstance(call, ToolCall)
    assert (call.id, call.name, call.arguments) == ("8J4s6LVgP", "get_weather", {"city": "Paris"})
    assert call.arguments_json == '{"city": "Paris"}'
    return call


def _second_turn(first_message: dict[str, Any], call: ToolCall) -> list[dict[str, Any]]:
    return [*HI, first_message, {"role": "tool", "tool_call_id": call.id, "content": ANSWER}]


def _assert_sent_back(body: dict[str, Any]) -> None:
    """The second request carries the assistant's call and the tool's answer, OpenAI's form."""
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [CALL]}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "8J4s6LVgP",
                                   "content": ANSWER}
    assert body["tools"] == [WEATHER]


# -- declaration ------------------------------------------------------------------------


def test_features_declared_per_operation() -> None:
    """Chat and its stream take tools, both response formats and images; completions none."""
    features = ipfs_accel_ovms.backend_info().features
    assert features is not None
    everything = frozenset({"tools", "json_schema", "json_object", "images"})
    assert features["chat"] == features["stream_chat"] == everything
    assert features["generate"] == features["stream_generate"] == frozenset()


@pytest.mark.parametrize(
    ("params", "feature"),
    [({"tools": [WEATHER]}, "tools"),
     ({"tool_choice": "required"}, "tools"),
     ({"response_format": {"type": "json_object"}}, "json_object"),
     ({"response_format": {"type": "json_schema",
                           "json_schema": {"name": "w", "schema": SCHEMA}}}, "json_schema")],
)
@pytest.mark.parametrize("operation", ["generate", "stream_generate"])
def test_completions_refuse_features_before_sending(
    operation: str, params: dict[str, Any], feature: str
) -> None:
    """/v3/completions takes none of them: ConfigurationError naming it, nothing sent."""
    rec = Recorder(httpx2.Response(200, json=COMPLETION_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    with pytest.raises(ConfigurationError, match=feature):
        if operation == "generate":
            b.generate("Weather?", model="qwen3", endpoint_id=eid, **params)
        else:
            list(b.stream_generate("Weather?", model="qwen3", endpoint_id=eid, **params))
    assert rec.requests == []


# -- tool calls -------------------------------------------------------------------------


def test_chat_tool_call_typed() -> None:
    """Tools and tool_choice go as sent; the answer's call is a ToolCall, finish tool_calls."""
    rec = Recorder(httpx2.Response(200, json=TOOL_RESPONSE))
    b = backend(rec)
    r = b.chat(HI, model="qwen3", endpoint_id=endpoint(b), tools=[WEATHER],
               tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert rec.body() == {
        "model": "qwen3", "messages": HI, "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    call = _assert_weather_call(r.tool_calls)
    assert call.raw == CALL
    assert (r.finish_reason, r.native_finish_reason, r.text) == ("tool_calls", "tool_calls", "")
    assert r.message == {"role": "assistant", "content": None, "tool_calls": [CALL]}
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (180, 21, 201)


def test_stream_tool_call_assembled() -> None:
    """Streamed fragments are joined: the finishing chunk and stream.result carry the call."""
    rec = Recorder(sse(TOOL_STREAM))
    b = backend(rec)
    stream = b.stream_chat(HI, model="qwen3", endpoint_id=endpoint(b), tools=[WEATHER],
                           tool_choice="auto")
    chunks = list(stream)
    assert rec.body()["tools"] == [WEATHER]
    assert rec.body()["tool_choice"] == "auto"
    finishing = [c for c in chunks if c.finish_reason is not None]
    assert finishing and finishing[0].finish_reason == "tool_calls"
    _assert_weather_call(finishing[0].tool_calls)
    result = stream.result
    _assert_weather_call(result.tool_calls)
    assert (result.text, result.finish_reason, result.model) == ("", "tool_calls", "qwen3")
    assert result.usage.total_tokens == 201
    assert b.get_stats().total_tokens == 201  # counted once


def test_round_trip_sync() -> None:
    """chat -> tool call -> result.message + tool message -> second chat, as OVMS takes it."""
    rec = Recorder(httpx2.Response(200, json=TOOL_RESPONSE), httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(HI, model="qwen3", endpoint_id=eid, tools=[WEATHER])
    call = _assert_weather_call(first.tool_calls)
    second = b.chat(_second_turn(first.message, call), model="qwen3", endpoint_id=eid,
                    tools=[WEATHER])
    _assert_sent_back(rec.body(1))
    assert second.text == "\n\nHow can I help you?"
    assert second.tool_calls is None


@pytest.mark.asyncio
async def test_round_trip_async_streamed() -> None:
    """The same loop on the event loop, the first turn streamed (stream.final())."""
    rec = Recorder(sse(TOOL_STREAM), httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    first = await b.astream_chat(HI, model="qwen3", endpoint_id=eid, tools=[WEATHER]).final()
    call = _assert_weather_call(first.tool_calls)
    second = await b.achat(_second_turn(first.message, call), model="qwen3", endpoint_id=eid,
                           tools=[WEATHER])
    _assert_sent_back(rec.body(1))
    assert second.finish_reason == "stop"
    await b.aclose()


# -- structured output and images -------------------------------------------------------


def test_json_schema_sent_as_given() -> None:
    """response_format json_schema goes to OVMS as OpenAI's form (it imposes it natively)."""
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA,
                                                  "strict": True}}
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    b.chat(HI, model="qwen3", endpoint_id=endpoint(b), response_format=fmt)
    assert rec.body()["response_format"] == fmt


@pytest.mark.parametrize("operation", ["chat", "stream_chat"])
def test_json_object_sent_as_object_schema(operation: str) -> None:
    """json_object becomes a json_schema of any object: OVMS turns response_format into an
    XGrammar structural tag, which has no json_object, and would then impose nothing."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE) if operation == "chat"
                   else sse([_chunk({"content": "{}"}, "stop")]))
    b = backend(rec)
    eid = endpoint(b)
    params: dict[str, Any] = {"response_format": {"type": "json_object"}}
    if operation == "chat":
        b.chat(HI, model="qwen3", endpoint_id=eid, **params)
    else:
        list(b.stream_chat(HI, model="qwen3", endpoint_id=eid, **params))
    assert rec.body()["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "json_object", "schema": {"type": "object"}},
    }
    assert params == {"response_format": {"type": "json_object"}}  # the caller's dict untouched


@pytest.mark.parametrize("url", [PNG, "https://example.com/zebra.jpeg"])
def test_image_parts_sent_as_given(url: str) -> None:
    """image_url parts (a data: URL or an https one) reach OVMS's VLM route as sent."""
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is on the picture?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]}]
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    b.chat(messages, model="llava", endpoint_id=endpoint(b), max_tokens=128)
    assert rec.body()["messages"] == messages
    assert json.loads(rec.requests[0].content)["model"] == "llava"

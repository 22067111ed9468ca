"""Tools into the Messages API: tool definitions, tool choice, tool calls, tool answers."""

from __future__ import annotations

from typing import Any

import pytest
from _claude_fixtures import WEATHER_TOOL, json_response, make_backend, message
from ipfs_accel import ConfigurationError, ToolCall
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Weather in Paris?"}]
NATIVE = {"name": "get_time", "description": "The time now.",
          "input_schema": {"type": "object", "properties": {}},
          "cache_control": {"type": "ephemeral"}}
SERVER = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def _sent(**params: Any) -> dict[str, Any]:
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat(params.pop("messages", HI), endpoint_id=eid, **params)
    body: dict[str, Any] = rec.body()
    return body


def test_openai_tools_become_anthropic_tools() -> None:
    """An OpenAI function tool is sent as name, description and input_schema."""
    body = _sent(tools=[WEATHER_TOOL])
    assert body["tools"] == [{
        "name": "get_weather", "description": "The weather in a city now.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]},
    }]
    assert "tool_choice" not in body


def test_strict_and_missing_parameters() -> None:
    """strict is kept; a function without parameters gets an empty object schema."""
    tool = {"type": "function", "function": {"name": "ping", "strict": True}}
    assert _sent(tools=[tool])["tools"] == [
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}, "strict": True}]


def test_native_tools_pass_as_they_are_in_order() -> None:
    """Tools in Anthropic's own form (client and server tools) pass untouched, order kept."""
    body = _sent(tools=[NATIVE, WEATHER_TOOL, SERVER])
    assert [t["name"] for t in body["tools"]] == ["get_time", "get_weather", "web_search"]
    assert body["tools"][0] == NATIVE
    assert body["tools"][2] == SERVER


@pytest.mark.parametrize(("choice", "sent"), [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"type": "tool", "name": "get_weather"}),
    ({"type": "any"}, {"type": "any"}),  # already Anthropic's: sent as it is
    ({"type": "tool", "name": "get_weather"}, {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice(choice: Any, sent: dict[str, Any]) -> None:
    """auto/none/required/one function become Anthropic's auto/none/any/tool; a choice
    already in Anthropic's form is sent as it is."""
    assert _sent(tools=[WEATHER_TOOL], tool_choice=choice)["tool_choice"] == sent


def test_parallel_tool_calls_false() -> None:
    """parallel_tool_calls=False is disable_parallel_tool_use on the tool choice."""
    body = _sent(tools=[WEATHER_TOOL], parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "parallel_tool_calls" not in body
    body = _sent(tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    body = _sent(tools=[WEATHER_TOOL], tool_choice="none", parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "none"}  # ToolChoiceNone has no such field
    body = _sent(tools=[WEATHER_TOOL], parallel_tool_calls=True)
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


def test_assistant_tool_calls_become_tool_use_blocks() -> None:
    """An assistant turn's text comes first, then one tool_use per call with object input."""
    body = _sent(messages=[*HI, {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "toolu_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]}, {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "noon"}])
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ]}


def test_consecutive_tool_results_share_one_user_turn() -> None:
    """Tool answers in a row (and a user message after them) make one user turn."""
    body = _sent(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "toolu_2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ]}, {"role": "tool", "tool_call_id": "toolu_1", "content": "one"},
        {"role": "tool", "tool_call_id": "toolu_2",
         "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "Go on."}])
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "one"},
        {"type": "tool_result", "tool_use_id": "toolu_2",
         "content": [{"type": "text", "text": "two"}]},
        {"type": "text", "text": "Go on."},
    ]


def test_tool_call_objects_accepted() -> None:
    """ToolCall objects in an assistant turn (result.tool_calls appended as they are) work."""
    call = ToolCall.of(id="toolu_9", name="get_weather", arguments={"city": "Oslo"})
    body = _sent(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": [call]},
                           {"role": "tool", "tool_call_id": "toolu_9", "content": "cold"}])
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}]


@pytest.mark.parametrize(("call", "words"), [
    # the shape claude results had: Anthropic's block under OpenAI's key, no function.name
    ({"id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}, "OpenAI's form"),
    ({"id": "toolu_1", "type": "function", "function": {"arguments": "{}"}}, "OpenAI's form"),
    ({"type": "function", "function": {"name": "f", "arguments": "{}"}}, "'id'"),
    ({"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{oops"}},
     "Anthropic takes the arguments as an object"),
    ({"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "[1]"}},
     "JSON object"),
    ("get_weather", "must be"),
])
def test_unreadable_tool_call_refused_before_sending(call: Any, words: str) -> None:
    """A tool call without a name, id or object arguments is refused, never sent with a
    null name (which the API refuses, and a proxy's 500 for it was retried)."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError, match="tool_calls\\[0\\]") as info:
        backend.chat([*HI, {"role": "assistant", "content": None, "tool_calls": [call]},
                      {"role": "tool", "tool_call_id": "toolu_1", "content": "x"}],
                     endpoint_id=eid)
    assert words in str(info.value)
    assert rec.requests == []


def test_anthropic_tool_use_blocks_pass() -> None:
    """A tool call already in Anthropic's form (type tool_use) is sent as it is."""
    block = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "X"}}
    body = _sent(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": [block]},
                           {"role": "tool", "tool_call_id": "toolu_1", "content": "x"}])
    assert body["messages"][1]["content"] == [block]

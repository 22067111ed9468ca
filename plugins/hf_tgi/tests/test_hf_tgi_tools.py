"""hf_tgi: tools, tool turns, structured output and images in requests; typed tool calls."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import ipfs_accel_hf_tgi
import pytest
from _hf_tgi_fixtures import (
    CHAT,
    GENERATE,
    STREAM,
    TGI_TOOL,
    TOOL,
    Server,
    backend,
    sse,
    tool_answer,
)
from ipfs_accel import ConfigurationError, ToolCall

USER = [{"role": "user", "content": "Weather in Paris?"}]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA,
                                                      "strict": True}}


def _chat_body(**params: Any) -> dict[str, Any]:
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    b.chat(USER, endpoint_id=eid, **params)
    return server.body()


def test_features_declared_per_text_operation() -> None:
    """chat and stream_chat take everything; generate and its stream structured output only."""
    features = ipfs_accel_hf_tgi.backend_info().features
    assert features is not None
    full = {"tools", "json_schema", "json_object", "images"}
    assert features["chat"] == features["stream_chat"] == full
    assert features["generate"] == features["stream_generate"] == {"json_schema", "json_object"}


def test_tools_are_sent_as_tgi_tools() -> None:
    """OpenAI's parameters go under TGI's required 'arguments'; strict has no field there."""
    tool = copy.deepcopy(TOOL)
    tool["function"]["strict"] = True
    body = _chat_body(tools=[tool])
    assert body["tools"] == [TGI_TOOL]


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    """TGI requires the schema: a function without one takes no arguments."""
    body = _chat_body(tools=[{"type": "function", "function": {"name": "now"}}])
    assert body["tools"] == [{"type": "function", "function": {
        "name": "now", "arguments": {"type": "object", "properties": {}}}}]


def test_tgi_form_tool_is_kept() -> None:
    """A tool already in TGI's form (schema under 'arguments') keeps its schema."""
    assert _chat_body(tools=[TGI_TOOL])["tools"] == [TGI_TOOL]


def test_empty_tools_are_not_sent() -> None:
    """tools=[] is no tools (TGI would still constrain the answer to its no-tool grammar)."""
    assert "tools" not in _chat_body(tools=[])


@pytest.mark.parametrize("choice", [
    "auto", "none", "required", {"type": "function", "function": {"name": "get_weather"}},
])
def test_tool_choice_is_tgi_s_own(choice: Any) -> None:
    """TGI takes OpenAI's tool_choice values as they are."""
    assert _chat_body(tools=[TOOL], tool_choice=choice)["tool_choice"] == choice


def test_tools_in_another_api_s_form_are_refused_unsent() -> None:
    """TGI takes functions only: an Anthropic-form tool is a ConfigurationError, unsent."""
    server = Server()
    b, eid = backend(server)
    with pytest.raises(ConfigurationError, match="function tools only"):
        b.chat(USER, endpoint_id=eid, tools=[{"name": "x", "input_schema": {"type": "object"}}])
    assert server.requests == []


@pytest.mark.parametrize(("fmt", "sent"), [
    (JSON_SCHEMA, {"type": "json", "value": SCHEMA}),
    ({"type": "json_object"}, {"type": "json", "value": {"type": "object"}}),
    ({"type": "text"}, None),
])
def test_response_format_becomes_tgi_grammar(fmt: dict[str, Any], sent: Any) -> None:
    """OpenAI's response_format is sent as TGI's GrammarType ({"type": "json", "value"})."""
    body = _chat_body(response_format=fmt)
    assert body.get("response_format") == sent


def test_tgi_grammar_goes_as_response_format() -> None:
    """TGI's own grammar (a regex) reaches chat's response_format; no 'grammar' field."""
    body = _chat_body(grammar={"type": "regex", "value": "[0-9]+"})
    assert body["response_format"] == {"type": "regex", "value": "[0-9]+"}
    assert "grammar" not in body


@pytest.mark.parametrize("params", [
    {"tools": [TOOL], "response_format": {"type": "json_object"}},
    {"tools": [TOOL], "grammar": {"type": "regex", "value": "x"}},
    {"response_format": {"type": "json_object"}, "grammar": {"type": "regex", "value": "x"}},
])
def test_conflicts_tgi_refuses_are_refused_unsent(params: dict[str, Any]) -> None:
    """Tools with a grammar (TGI: mutually exclusive), or two grammars: refused unsent."""
    server = Server()
    b, eid = backend(server)
    with pytest.raises(ConfigurationError):
        b.chat(USER, endpoint_id=eid, **params)
    assert server.requests == []


def test_image_parts_are_sent_as_they_are() -> None:
    """image_url parts (https and data: URLs) are TGI's MessageChunk already."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    b.chat([{"role": "user", "content": content}], endpoint_id=eid)
    assert server.body()["messages"] == [{"role": "user", "content": content}]


@pytest.mark.parametrize(("fmt", "sent"), [
    (JSON_SCHEMA, {"type": "json", "value": SCHEMA}),
    ({"type": "json_object"}, {"type": "json", "value": {"type": "object"}}),
])
def test_generate_structured_output_is_parameters_grammar(fmt: dict[str, Any],
                                                          sent: Any) -> None:
    """/generate takes structured output as parameters.grammar; no response_format there."""
    server = Server(httpx2.Response(200, json=GENERATE), sse(STREAM))
    b, eid = backend(server)
    b.generate("p", endpoint_id=eid, response_format=fmt)
    list(b.stream_generate("p", endpoint_id=eid, response_format=fmt))
    for i in (0, 1):
        parameters = server.body(i)["parameters"]
        assert parameters["grammar"] == sent
        assert "response_format" not in parameters


def test_generate_tgi_grammar_goes_as_it_is() -> None:
    """TGI's own grammar= on generate is sent unchanged."""
    server = Server(httpx2.Response(200, json=GENERATE))
    b, eid = backend(server)
    b.generate("p", endpoint_id=eid, grammar={"type": "regex", "value": "[0-9]+"})
    assert server.body()["parameters"]["grammar"] == {"type": "regex", "value": "[0-9]+"}


@pytest.mark.parametrize("operation", ["generate", "stream_generate"])
def test_generate_refuses_tools_unsent(operation: str) -> None:
    """/generate has no tools: the core refuses them before sending, naming chat."""
    server = Server()
    b, eid = backend(server)
    with pytest.raises(ConfigurationError, match="tools") as info:
        if operation == "generate":
            b.generate("p", endpoint_id=eid, tools=[TOOL])
        else:
            list(b.stream_generate("p", endpoint_id=eid, tools=[TOOL]))
    assert "chat" in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize(("arguments", "finish"), [
    ('{"city":"Paris"}', "stop"),  # TGI 3.2 and later: JSON text
    ({"city": "Paris"}, "stop"),  # TGI 2.x-3.1: an object
    ({"city": "Paris"}, "eos_token"),  # TGI 2.0: its own finish value
])
def test_tool_call_is_typed(arguments: Any, finish: str) -> None:
    """TGI's call becomes a ToolCall (its ID kept), the finish tool_calls."""
    b, eid = backend(Server(httpx2.Response(200, json=tool_answer(arguments, finish))))
    result = b.chat(USER, endpoint_id=eid, tools=[TOOL])
    assert result.tool_calls is not None
    [call] = result.tool_calls
    assert isinstance(call, ToolCall)
    assert (call.id, call.name, call.arguments) == ("0", "get_weather", {"city": "Paris"})
    assert result.finish_reason == "tool_calls"
    assert result.native_finish_reason == finish
    assert result.text == ""
    assert result.usage.total_tokens == 530

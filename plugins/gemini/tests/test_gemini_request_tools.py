"""Requests: tools, tool_choice, response_format, images and tool messages in Gemini's form."""

from __future__ import annotations

from typing import Any

import ipfs_accel_gemini
import pytest
from _gemini_fixtures import backend, endpoint, generate_response, json_response
from ipfs_accel import ConfigurationError
from ipfs_accel.testing import TOOL, Recorder

HI = [{"role": "user", "content": "Hi"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _sent(messages: list[Any] | None = None, operation: str = "chat", **params: Any) -> Any:
    """The body of one call with ``params``."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    if operation == "generate":
        b.generate("Hi", endpoint_id=endpoint(b), **params)
    else:
        b.chat(messages if messages is not None else HI, endpoint_id=endpoint(b), **params)
    return rec.body()


def test_function_tools_and_native_tools() -> None:
    """Function tools become one functionDeclarations tool (JSON Schema in
    parametersJsonSchema); tools in Gemini's own form follow as they are."""
    bare = {"type": "function", "function": {"name": "now"}}
    body = _sent(tools=[TOOL, {"googleSearch": {}}, bare, {"codeExecution": {}}])
    assert body["tools"] == [
        {"functionDeclarations": [
            {"name": "get_weather", "description": "The weather in a city now.",
             "parametersJsonSchema": TOOL["function"]["parameters"]},
            {"name": "now"},
        ]},
        {"googleSearch": {}},
        {"codeExecution": {}},
    ]
    assert "tool_choice" not in body and "toolConfig" not in body


def test_only_native_tools() -> None:
    """Native tools alone are sent without an empty functionDeclarations tool."""
    assert _sent(tools=[{"googleSearch": {}}])["tools"] == [{"googleSearch": {}}]


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    """tool_choice becomes toolConfig.functionCallingConfig, never sent under its own name."""
    body = _sent(tools=[TOOL], tool_choice=choice)
    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert "tool_choice" not in body


def test_tool_choice_keeps_the_rest_of_a_given_tool_config() -> None:
    """A toolConfig the call gives keeps its other fields; tool_choice sets the calling mode."""
    retrieval = {"latLng": {"latitude": 48.85, "longitude": 2.35}}
    body = _sent(tools=[TOOL], tool_choice="required",
                 tool_config={"retrievalConfig": retrieval})
    assert body["toolConfig"] == {"retrievalConfig": retrieval,
                                  "functionCallingConfig": {"mode": "ANY"}}


def test_json_schema_response_format() -> None:
    """json_schema: responseMimeType application/json and the schema in responseJsonSchema
    (a whole JSON Schema), beside the other generationConfig fields."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    body = _sent(max_tokens=50, response_format={
        "type": "json_schema", "json_schema": {"name": "place", "schema": schema,
                                               "strict": True}})
    assert body["generationConfig"] == {"maxOutputTokens": 50,
                                        "responseMimeType": "application/json",
                                        "responseJsonSchema": schema}
    assert "response_format" not in body


@pytest.mark.parametrize("operation", ["chat", "generate"])
def test_json_object_response_format(operation: str) -> None:
    """json_object: responseMimeType only, for chat and generate alike; text: nothing."""
    body = _sent(operation=operation, response_format={"type": "json_object"})
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    assert "generationConfig" not in _sent(operation=operation,
                                           response_format={"type": "text"})


def test_features_are_declared_per_operation() -> None:
    """chat and stream_chat take everything; a prompt takes the JSON formats only."""
    features = ipfs_accel_gemini.backend_info().features
    assert features is not None
    full = {"tools", "json_schema", "json_object", "images"}
    assert features["chat"] == features["stream_chat"] == full
    assert features["generate"] == features["stream_generate"] == {"json_schema", "json_object"}


@pytest.mark.parametrize("operation", ["generate", "stream_generate", "embed"])
def test_tools_where_the_operation_has_none_are_refused_before_sending(operation: str) -> None:
    """Tools on generate (a prompt: no turns to call them in) or embed: ConfigurationError,
    and nothing is sent."""
    rec = Recorder()
    b = backend(rec)
    eid = endpoint(b)
    with pytest.raises(ConfigurationError, match="tools"):
        if operation == "embed":
            b.embed(["x"], endpoint_id=eid, tools=[TOOL])
        elif operation == "generate":
            b.generate("Hi", endpoint_id=eid, tools=[TOOL])
        else:
            list(b.stream_generate("Hi", endpoint_id=eid, tools=[TOOL]))
    assert rec.requests == []


def test_images() -> None:
    """data: URLs become inlineData; other URLs fileData with the media type their
    extension says, or none where it says nothing (the spec makes it optional)."""
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a/cat.JPG?x=1",
                                            "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/render"}},
    ]
    body = _sent([{"role": "user", "content": content}])
    assert body["contents"][0]["parts"] == [
        {"text": "What is in these?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"fileUri": "https://example.com/a/cat.JPG?x=1", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://example.com/render"}},
    ]


def test_a_data_url_without_media_type_is_refused() -> None:
    """inlineData needs a mimeType: a data: URL without one is refused, nothing sent."""
    rec = Recorder()
    b = backend(rec)
    content = [{"type": "image_url", "image_url": {"url": f"data:;base64,{PNG}"}}]
    with pytest.raises(ConfigurationError, match="mimeType"):
        b.chat([{"role": "user", "content": content}], endpoint_id=endpoint(b))
    assert rec.requests == []


def _calling(arguments: Any, **extra: Any) -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": arguments}, **extra}
    return [*HI, {"role": "assistant", "content": None, "tool_calls": [call]}]


@pytest.mark.parametrize(("arguments", "args"), [
    ('{"city": "Paris"}', {"city": "Paris"}),
    ("", {}),
    ({"city": "Paris"}, {"city": "Paris"}),
])
def test_assistant_tool_calls_become_function_calls(arguments: Any, args: Any) -> None:
    """An assistant's tool_calls become functionCall parts of a model turn; without
    extra_content there is no signature and no id (the id is not the API's)."""
    messages = [*_calling(arguments), {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
    body = _sent(messages, tools=[TOOL])
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": args}}]}


def test_arguments_that_are_not_an_object_are_refused() -> None:
    """Gemini's args is a JSON object: other arguments are refused before sending."""
    rec = Recorder()
    b = backend(rec)
    with pytest.raises(ConfigurationError, match=r"messages\[1\]\.tool_calls\[0\]"):
        b.chat(_calling("[1, 2]"), endpoint_id=endpoint(b), tools=[TOOL])
    assert rec.requests == []


@pytest.mark.parametrize(("content", "response"), [
    ('{"temp": 21}', {"temp": 21}),
    ("sunny", {"result": "sunny"}),
    ("[1, 2]", {"result": "[1, 2]"}),
    ("42", {"result": "42"}),
    ([{"type": "text", "text": "sun"}, {"type": "text", "text": "ny"}], {"result": "sunny"}),
    ({"temp": 21}, {"temp": 21}),
])
def test_tool_answers_become_function_responses(content: Any, response: Any) -> None:
    """A tool's answer is the functionResponse's response if it is a JSON object, else
    wrapped as {"result": answer as written}."""
    messages = [*_calling("{}"), {"role": "tool", "tool_call_id": "c1", "content": content}]
    body = _sent(messages, tools=[TOOL])
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": response}}]}


def test_an_answer_to_an_unknown_call_is_refused() -> None:
    """Gemini answers a call by name: a tool message naming no earlier call is refused,
    unless it names its function itself."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    eid = endpoint(b)
    lost = [*HI, {"role": "tool", "tool_call_id": "nowhere", "content": "x"}]
    with pytest.raises(ConfigurationError, match="'nowhere'"):
        b.chat(lost, endpoint_id=eid, tools=[TOOL])
    assert rec.requests == []
    b.chat([*HI, {"role": "tool", "tool_call_id": "nowhere", "name": "get_weather",
                  "content": "x"}], endpoint_id=eid, tools=[TOOL])
    assert rec.body()["contents"][1]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_user_turn_after_answers_is_its_own_turn() -> None:
    """Only consecutive tool answers share a turn; a user message after them starts one."""
    messages = [*_calling("{}"), {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                {"role": "user", "content": "And tomorrow?"}]
    contents = _sent(messages, tools=[TOOL])["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "user"]
    assert contents[3] == {"role": "user", "parts": [{"text": "And tomorrow?"}]}


def test_a_system_message_between_answers_keeps_them_in_one_turn() -> None:
    """A system message makes no turn: the tool answers around it still share theirs."""
    call = {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    messages = _calling("{}")
    messages[-1]["tool_calls"].append(call)
    messages += [{"role": "tool", "tool_call_id": "c1", "content": "ok"},
                 {"role": "system", "content": "Be brief."},
                 {"role": "tool", "tool_call_id": "c2", "content": "noon"}]
    body = _sent(messages, tools=[TOOL])
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == [
        "get_weather", "get_time"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


def test_a_gemini_part_passed_through_is_not_changed() -> None:
    """A signature restored on a Gemini part the caller passed goes on a copy."""
    part = {"text": "Sunny."}
    message = {"role": "assistant", "content": [part],
               "extra_content": {"google": {"thought_signature": "c2ln"}}}
    body = _sent([*HI, message, {"role": "user", "content": "Thanks"}])
    assert body["contents"][1]["parts"] == [{"text": "Sunny.", "thoughtSignature": "c2ln"}]
    assert part == {"text": "Sunny."}

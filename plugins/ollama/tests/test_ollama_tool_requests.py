"""OpenAI's vocabulary in Ollama's native requests: tools, tool_choice, tool turns, images
and response_format, and what Ollama cannot take refused before anything is sent."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _ollama_fixtures import (
    CHAT_RESPONSE,
    FINAL_COUNTS,
    GENERATE_RESPONSE,
    Recorder,
    backend,
    chat_line,
    endpoint,
    ndjson,
)
from ipfs_accel import ConfigurationError
from ipfs_accel.testing import TOOL

HI = [{"role": "user", "content": "what is the weather in Paris?"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
TURN: list[dict[str, Any]] = [
    *HI,
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_time", "arguments": ""}},
    ]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
]


def _answer(operation: str) -> httpx2.Response:
    if operation == "chat":
        return httpx2.Response(200, json=CHAT_RESPONSE)
    if operation == "generate":
        return httpx2.Response(200, json=GENERATE_RESPONSE)
    return ndjson([chat_line("hi"), chat_line("", done=True, **FINAL_COUNTS)])


def _body(messages: list[Any] | str, operation: str = "chat", **params: Any) -> Any:
    rec = Recorder(_answer(operation))
    b = backend(rec)
    out = getattr(b, operation)(messages, model="m", endpoint_id=endpoint(b), **params)
    if operation.startswith("stream_"):
        list(out)
    return rec.body()


def _refused(messages: list[Any] | str, operation: str = "chat", **params: Any) -> str:
    """The ConfigurationError's message; and nothing was sent."""
    rec = Recorder(_answer(operation))
    b = backend(rec)
    with pytest.raises(ConfigurationError) as info:
        out = getattr(b, operation)(messages, model="m", endpoint_id=endpoint(b), **params)
        list(out) if operation.startswith("stream_") else None
    assert rec.requests == []
    return str(info.value)


# -- tools and tool_choice -------------------------------------------------------------


@pytest.mark.parametrize("operation", ["chat", "stream_chat"])
def test_tools_sent_in_ollamas_form(operation: str) -> None:
    """OpenAI-form tools go as Ollama takes them: strict (which it lacks) left out, a tool
    without parameters given the empty object schema the spec requires; tool_choice auto
    (what Ollama does anyway) is dropped."""
    bare = {"type": "function", "function": {"name": "now", "strict": True}}
    body = _body(HI, operation, tools=[TOOL, bare], tool_choice="auto")
    assert body["tools"] == [
        TOOL,
        {"type": "function",
         "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
    ]
    assert "tool_choice" not in body
    assert body["messages"] == HI


def test_tools_in_another_form_go_as_they_are() -> None:
    """A tool that is not OpenAI's function form is passed on untouched."""
    native = {"type": "web_search"}
    assert _body(HI, tools=[TOOL, native])["tools"] == [TOOL, native]


@pytest.mark.parametrize("choice", [
    "none", "required", {"type": "function", "function": {"name": "get_weather"}},
])
@pytest.mark.parametrize("operation", ["chat", "stream_chat"])
def test_tool_choice_ollama_cannot_honour_is_refused_unsent(choice: Any, operation: str) -> None:
    """Ollama's native API has no tool_choice: anything but auto is refused, never dropped."""
    message = _refused(HI, operation, tools=[TOOL], tool_choice=choice)
    assert "ollama has no tool_choice" in message


@pytest.mark.parametrize("operation", ["generate", "stream_generate"])
def test_tools_on_generate_are_refused_unsent(operation: str) -> None:
    """/api/generate takes no tools: the core refuses them from the declared features."""
    message = _refused("Hi", operation, tools=[TOOL])
    assert "tools" in message and "chat" in message


# -- the tool turn sent back -------------------------------------------------------------


def test_tool_turn_in_ollamas_form() -> None:
    """Assistant tool calls go with object arguments (JSON text parsed, empty text as {}),
    no ID; content None becomes ""; tool messages name the function they answer
    (tool_name), found by the call ID, which Ollama's form has no place for."""
    body = _body(TURN, tools=[TOOL])
    assert body["messages"] == [
        *HI,
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_time", "arguments": {}}},
        ]},
        {"role": "tool", "content": "sunny, 21 C", "tool_name": "get_weather"},
        {"role": "tool", "content": "noon", "tool_name": "get_time"},
    ]


def test_native_tool_turn_is_kept() -> None:
    """A turn already in Ollama's form (object arguments, a tool_name) is sent as it is."""
    native = [*HI,
              {"role": "assistant", "content": "",
               "tool_calls": [{"function": {"name": "get_weather",
                                            "arguments": {"city": "Toronto"}}}]},
              {"role": "tool", "tool_call_id": "x", "content": "11 C", "tool_name": "get_weather"}]
    body = _body(native)
    assert body["messages"][1:] == [
        native[1], {"role": "tool", "content": "11 C", "tool_name": "get_weather"},
    ]


def test_tool_message_for_an_unknown_call_has_no_tool_name() -> None:
    """A tool answer whose call is not in the conversation goes without tool_name (optional
    in Ollama's form), rather than naming the wrong function."""
    body = _body([*HI, {"role": "tool", "tool_call_id": "call_x", "content": "42"}])
    assert body["messages"][1] == {"role": "tool", "content": "42"}


@pytest.mark.parametrize("arguments", ['["Paris"]', "{not json", "7"])
def test_tool_call_arguments_that_are_no_object_are_refused(arguments: str) -> None:
    """Ollama takes the arguments as an object: text that is not one is refused by place."""
    turn = [*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}]
    assert "messages[1].tool_calls[0].function.arguments" in _refused(turn)


def test_thinking_kept_with_the_turn_goes_back() -> None:
    """The model's thinking, kept by the result in extra_content, is sent back as the
    message's thinking; extra_content itself never reaches Ollama."""
    turn = [*HI, {"role": "assistant", "content": "Sunny.",
                  "extra_content": {"ollama": {"thinking": "Paris is in France."}}}]
    assert _body(turn)["messages"][1] == {
        "role": "assistant", "content": "Sunny.", "thinking": "Paris is in France.",
    }


# -- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["chat", "stream_chat"])
def test_data_url_images_become_the_messages_images(operation: str) -> None:
    """image_url parts with data: URLs go into images (base64 only); text parts are joined
    with newlines into content."""
    message = {"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "text", "text": "Be brief."},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}",
                                            "detail": "low"}},
    ]}
    body = _body([message], operation)
    assert body["messages"] == [{"role": "user", "content": "What is in this image?\nBe brief.",
                                 "images": [PNG, PNG]}]


def test_https_image_is_refused_unsent() -> None:
    """Ollama takes images inline only: an https URL is refused, it would be lost."""
    message = {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}
    text = _refused([message])
    assert "messages[0].content[0]" in text and "data: URL" in text
    assert "example.com" not in text


def test_unknown_content_part_is_refused_unsent() -> None:
    """A part Ollama has no room for (audio) is refused by place, not dropped."""
    message = {"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}
    assert "'input_audio'" in _refused([message])


# -- structured output ------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["chat", "stream_chat", "generate"])
def test_json_schema_becomes_format(operation: str) -> None:
    """response_format json_schema -> format: the schema, on chat and generate alike."""
    given = HI if "chat" in operation else "Ollama is 22."
    fmt = {"type": "json_schema", "json_schema": {"name": "age", "schema": SCHEMA,
                                                  "strict": True}}
    body = _body(given, operation, response_format=fmt)
    assert body["format"] == SCHEMA
    assert "response_format" not in body


@pytest.mark.parametrize("operation", ["chat", "generate"])
def test_json_object_becomes_json_format(operation: str) -> None:
    """response_format json_object -> format: "json"; text -> no format at all."""
    given = HI if operation == "chat" else "Hi"
    assert _body(given, operation, response_format={"type": "json_object"})["format"] == "json"
    assert "format" not in _body(given, operation, response_format={"type": "text"})


def test_response_format_beside_ollamas_format_is_refused() -> None:
    """Two answers to one question: response_format and a native format are refused."""
    text = _refused(HI, response_format={"type": "json_object"}, format="json")
    assert "either response_format or Ollama's own format" in text


def test_native_format_and_images_still_pass() -> None:
    """Ollama's own format, think and images (generate) go as given."""
    body = _body("Describe it.", "generate", format=SCHEMA, think=True, images=[PNG])
    assert (body["format"], body["think"], body["images"]) == (SCHEMA, True, [PNG])

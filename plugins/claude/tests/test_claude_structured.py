"""Structured output (output_config.format), images, and the features the backend declares."""

from __future__ import annotations

from typing import Any

import ipfs_accel_claude
import pytest
from _claude_fixtures import WEATHER_TOOL, json_response, make_backend, message
from ipfs_accel import Call, ConfigurationError
from ipfs_accel.testing import Recorder
from ipfs_accel_claude._request import ClaudeOptions, messages_body

HI = [{"role": "user", "content": "Paris weather as JSON."}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
          "required": ["city", "temp"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}


def test_backend_declares_its_features() -> None:
    """Chat takes tools, JSON schemas and images; generate a JSON schema; none json_object."""
    features = ipfs_accel_claude.backend_info().features
    assert features == {
        "chat": {"tools", "json_schema", "images"},
        "stream_chat": {"tools", "json_schema", "images"},
        "generate": {"json_schema"},
        "stream_generate": {"json_schema"},
    }


def test_json_schema_becomes_output_config_format() -> None:
    """response_format json_schema is output_config.format with the schema; the answer's
    text is the JSON."""
    rec = Recorder(json_response(200, message('{"city": "Paris", "temp": 21}')))
    backend, eid = make_backend(rec)
    result = backend.chat(HI, endpoint_id=eid, response_format=JSON_SCHEMA)
    body = rec.body()
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "response_format" not in body
    assert result.text == '{"city": "Paris", "temp": 21}'


def test_output_config_given_is_merged() -> None:
    """An output_config the call gives (effort) keeps its fields beside the format."""
    rec = Recorder(json_response(200, message("{}")))
    backend, eid = make_backend(rec)
    backend.chat(HI, endpoint_id=eid, response_format=JSON_SCHEMA,
                 output_config={"effort": "low"})
    assert rec.body()["output_config"] == {
        "effort": "low", "format": {"type": "json_schema", "schema": SCHEMA}}
    backend.chat(HI, endpoint_id=eid, output_config={"effort": "high"})
    assert rec.body()["output_config"] == {"effort": "high"}


def test_response_format_text_sends_nothing() -> None:
    """response_format text is the default: no output_config is sent."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat(HI, endpoint_id=eid, response_format={"type": "text"})
    assert "output_config" not in rec.body() and "response_format" not in rec.body()


@pytest.mark.parametrize(("operation", "params"), [
    ("chat", {"response_format": {"type": "json_object"}}),
    ("generate", {"response_format": {"type": "json_object"}}),
    ("generate", {"tools": [WEATHER_TOOL]}),
    ("chat", {"response_format": JSON_SCHEMA,
              "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}),
])
def test_refused_before_sending(operation: str, params: dict[str, Any]) -> None:
    """What the API has no room for is a ConfigurationError before any request."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError):
        if operation == "chat":
            backend.chat(HI, endpoint_id=eid, **params)
        else:
            backend.generate("Weather?", endpoint_id=eid, **params)
    assert rec.requests == []


def test_json_object_refused_by_the_plugin_too() -> None:
    """A core that did not check features still gets no json_object request from claude."""
    call = Call(operation="chat", model="m", messages=HI,
                params={"response_format": {"type": "json_object"}}, request_id="r")
    with pytest.raises(ConfigurationError, match="json_object"):
        messages_body(call, ClaudeOptions(), stream=False)


def test_generate_takes_a_json_schema() -> None:
    """generate and stream_generate send output_config.format too."""
    rec = Recorder(json_response(200, message("{}")))
    backend, eid = make_backend(rec)
    backend.generate("Weather?", endpoint_id=eid, response_format=JSON_SCHEMA)
    assert rec.body()["output_config"]["format"]["schema"] == SCHEMA


def test_images_https_and_data_urls() -> None:
    """image_url parts become image blocks: an https URL as a url source, a data: URL as
    base64 with its media type (parameters before ;base64 ignored)."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat([{"role": "user", "content": [
        {"type": "text", "text": "Compare."},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg",
                                            "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/webp;name=b.webp;base64,UklGRg=="}},
    ]}], endpoint_id=eid)
    assert rec.body()["messages"][0]["content"] == [
        {"type": "text", "text": "Compare."},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp",
                                     "data": "UklGRg=="}},
    ]


def test_image_in_a_tool_answer() -> None:
    """An image_url part in a tool's answer becomes an image block in its tool_result."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat([*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "snap", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ], endpoint_id=eid)
    assert rec.body()["messages"][2]["content"] == [{
        "type": "tool_result", "tool_use_id": "toolu_1",
        "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": "iVBORw0KGgo="}}]}]


def test_data_url_not_base64_refused() -> None:
    """A data: URL that is not base64 is refused before sending."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError, match="base64"):
        backend.chat([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}],
            endpoint_id=eid)
    assert rec.requests == []

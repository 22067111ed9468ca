"""The groq plugin's structured output, images and billed tokens: response formats and
image parts sent as given, reasoning tokens counted in the output and shown on their own."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from _groq_fixtures import CHAT, Server, backend, chunk, sse, stream_response
from ipfs_accel import Usage

HI = [{"role": "user", "content": "Hi"}]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "weather", "strict": True,
        "schema": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
    },
}
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
LOOK = [{"role": "user", "content": [
    {"type": "text", "text": "What is in these images?"},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    {"type": "image_url", "image_url": {"url": PIXEL, "detail": "high"}},
]}]
VISION = "meta-llama/llama-4-scout-17b-16e-instruct"


def _answer(content: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.loads(json.dumps(CHAT))
    body["choices"][0]["message"]["content"] = content
    if usage is not None:
        body["usage"] = usage
    return body


@pytest.mark.parametrize("fmt", [SCHEMA, {"type": "json_object"}], ids=["json_schema",
                                                                       "json_object"])
def test_response_format_sent_as_given(fmt: dict[str, Any]) -> None:
    """response_format goes out as the caller wrote it; the JSON answer is the text."""
    server = Server(httpx2.Response(200, json=_answer('{"city": "Paris"}')))
    b, eid = backend(server)
    result = b.chat(HI, endpoint_id=eid, model="openai/gpt-oss-20b", response_format=fmt)
    assert server.body()["response_format"] == fmt
    assert json.loads(result.text) == {"city": "Paris"}


def test_response_format_in_a_stream() -> None:
    """A stream carries response_format too."""
    server = Server(stream_response(sse(chunk('{"city"'), chunk(': "Paris"}', "stop"))))
    b, eid = backend(server)
    result = b.stream_chat(HI, endpoint_id=eid, response_format=SCHEMA).final()
    assert server.body()["response_format"] == SCHEMA
    assert json.loads(result.text) == {"city": "Paris"}


def test_images_sent_as_given() -> None:
    """image_url parts (an https URL, a data: URL with its detail) go out untouched."""
    server = Server(httpx2.Response(200, json=CHAT), stream_response(sse(chunk("ok", "stop"))))
    b, eid = backend(server, model=VISION)
    b.chat(LOOK, endpoint_id=eid)
    list(b.stream_chat(LOOK, endpoint_id=eid))
    assert server.body(0)["messages"] == LOOK
    assert server.body(1)["messages"] == LOOK


REASONING = {
    "queue_time": 0.05, "prompt_tokens": 80, "prompt_time": 0.004,
    "completion_tokens": 412, "completion_time": 0.9, "total_tokens": 492, "total_time": 0.904,
    "completion_tokens_details": {"reasoning_tokens": 300},
}
"""A reasoning model's usage (gpt-oss, qwen3): reasoning is part of ``completion_tokens``."""
_BILLED = Usage(input_tokens=80, output_tokens=412, total_tokens=492, reasoning_tokens=300,
                details={"queue_time": 0.05, "prompt_time": 0.004, "completion_time": 0.9,
                         "total_time": 0.904})


def test_reasoning_tokens_billed_and_shown() -> None:
    """Reasoning tokens stay in the output tokens (billed), are shown on their own in Usage
    and the stats, and total_tokens is the API's total."""
    server = Server(httpx2.Response(200, json=_answer("42", REASONING)))
    b, eid = backend(server)
    result = b.chat(HI, endpoint_id=eid, model="openai/gpt-oss-120b")
    assert result.usage == _BILLED
    stats = b.get_stats(eid)
    assert (stats.output_tokens, stats.reasoning_tokens, stats.total_tokens) == (412, 300, 492)


def test_reasoning_tokens_of_a_stream_from_x_groq() -> None:
    """The final chunk's x_groq.usage gives the same counts, once."""
    final = chunk(None, "stop", x_groq={"id": "req_01", "usage": REASONING})
    server = Server(stream_response(sse(chunk("42"), final)))
    b, eid = backend(server)
    result = b.stream_chat(HI, endpoint_id=eid, model="openai/gpt-oss-120b").final()
    assert result.usage == _BILLED
    stats = b.get_stats(eid)
    assert (stats.output_tokens, stats.reasoning_tokens, stats.total_tokens) == (412, 300, 492)


def test_total_is_the_apis_own() -> None:
    """A total that is not the sum of its parts is kept as sent."""
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 21}
    server = Server(httpx2.Response(200, json=_answer("x", usage)))
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid).usage.total_tokens == 21
    assert b.get_stats(eid).total_tokens == 21

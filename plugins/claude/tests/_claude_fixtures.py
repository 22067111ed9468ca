"""Shared helpers for the claude plugin tests: a mock API and spec-shaped bodies.

Bodies follow ``../shared/specs/anthropic/openapi.yaml`` (``Message``, ``Usage``,
``MessageStreamEvent`` variants, ``ErrorResponse``), field for field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx2
import ipfs_accel_claude
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, mock_backend

KEY = "sk-ant-test-key-0123456789"

Handler = Callable[[httpx2.Request], httpx2.Response]


def make_backend(handler: Handler, **settings: Any) -> tuple[Backend, str]:
    """The claude backend over a MockTransport, and one endpoint with fast retries."""
    backend = mock_backend(ipfs_accel_claude, handler)
    eid = backend.create_endpoint(**{"api_key": KEY, **FAST_RETRIES, **settings})
    return backend, eid


def usage(input_tokens: int = 12, output_tokens: int = 7, *, cache_write: int | None = None,
          cache_read: int | None = None) -> dict[str, Any]:
    """A ``Usage`` object with every required field."""
    return {
        "cache_creation": None,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "inference_geo": None,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "server_tool_use": None,
        "service_tier": "standard",
    }


def message(text: str = "Hi! My name is Claude.", *, stop_reason: str | None = "end_turn",
            model: str = "claude-sonnet-4-6", content: list[Any] | None = None,
            use: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Message`` body, shaped as the spec's example."""
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "content": [{"citations": None, "text": text, "type": "text"}] if content is None
        else content,
        "model": model,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": None,
        "usage": use or usage(),
        "container": None,
    }


def error_body(kind: str, text: str) -> dict[str, Any]:
    """An ``ErrorResponse`` body."""
    return {"type": "error", "error": {"type": kind, "message": text},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


def json_response(status: int, body: Any, **headers: str) -> httpx2.Response:
    """A JSON response with the server's ``request-id`` header."""
    return httpx2.Response(
        status, json=body, headers={"request-id": "req_server_1", **headers}
    )


def sse(events: Iterable[dict[str, Any]]) -> bytes:
    """SSE bytes, each event named after its ``type`` as the API sends them."""
    return "".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events
    ).encode()


def stream_events(*pieces: str, input_tokens: int = 25, output_tokens: int = 15,
                  stop_reason: str = "end_turn", cache_read: int | None = None,
                  ) -> list[dict[str, Any]]:
    """The event sequence of one streamed text message, ``message_stop`` last."""
    start = message(content=[], stop_reason=None,
                    use=usage(input_tokens, 1, cache_read=cache_read))
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0,
         "content_block": {"citations": None, "text": "", "type": "text"}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta",
         "delta": {"container": None, "stop_details": None, "stop_reason": stop_reason,
                   "stop_sequence": None},
         "usage": {"cache_creation_input_tokens": None, "cache_read_input_tokens": None,
                   "input_tokens": None, "output_tokens": output_tokens,
                   "server_tool_use": None}},
        {"type": "message_stop"},
    ]
    return events


def sse_response(events: Iterable[dict[str, Any]], status: int = 200) -> httpx2.Response:
    """A ``text/event-stream`` response carrying ``events``."""
    return httpx2.Response(
        status, content=sse(events),
        headers={"content-type": "text/event-stream", "request-id": "req_server_stream"},
    )


WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "description": "The weather in a city now.",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"]}},
}
"""An OpenAI-form function tool."""

SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def tool_use(call_id: str = "toolu_01A09q90qw90lq917835lq9", name: str = "get_weather",
             args: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``ResponseToolUseBlock``."""
    return {"type": "tool_use", "id": call_id, "name": name,
            "input": {"city": "Paris"} if args is None else args, "caller": {"type": "direct"}}


def thinking(text: str = "The user wants the weather: call get_weather.",
             signature: str = SIGNATURE) -> dict[str, Any]:
    """A ``ResponseThinkingBlock``."""
    return {"type": "thinking", "thinking": text, "signature": signature}


def tool_stream_events(*pieces: str, call_id: str = "toolu_01A09q90qw90lq917835lq9",
                       text: str = "", think: str = "", input_tokens: int = 25,
                       output_tokens: int = 15) -> list[dict[str, Any]]:
    """A streamed answer calling get_weather: optional thinking (with its signature) and
    text blocks first, then the ``tool_use`` block with its input in ``pieces``."""
    start = message(content=[], stop_reason=None, use=usage(input_tokens, 1))
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    index = 0
    if think:
        events += [
            {"type": "content_block_start", "index": index,
             "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
            {"type": "content_block_delta", "index": index,
             "delta": {"type": "thinking_delta", "thinking": think[:5]}},
            {"type": "content_block_delta", "index": index,
             "delta": {"type": "thinking_delta", "thinking": think[5:]}},
            {"type": "content_block_delta", "index": index,
             "delta": {"type": "signature_delta", "signature": SIGNATURE}},
            {"type": "content_block_stop", "index": index},
        ]
        index += 1
    if text:
        events += [
            {"type": "content_block_start", "index": index,
             "content_block": {"citations": None, "text": "", "type": "text"}},
            {"type": "content_block_delta", "index": index,
             "delta": {"type": "text_delta", "text": text}},
            {"type": "content_block_stop", "index": index},
        ]
        index += 1
    events.append({"type": "content_block_start", "index": index,
                   "content_block": {**tool_use(call_id), "input": {}}})
    events += [
        {"type": "content_block_delta", "index": index,
         "delta": {"type": "input_json_delta", "partial_json": p}} for p in pieces
    ]
    events += [
        {"type": "content_block_stop", "index": index},
        {"type": "message_delta",
         "delta": {"container": None, "stop_details": None, "stop_reason": "tool_use",
                   "stop_sequence": None},
         "usage": {"cache_creation_input_tokens": None, "cache_read_input_tokens": None,
                   "input_tokens": None, "output_tokens": output_tokens,
                   "server_tool_use": None}},
        {"type": "message_stop"},
    ]
    return events

"""Fake GroqCloud server for the groq plugin's tests: spec-shaped bodies over MockTransport."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_groq
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, mock_backend, openai_sse
from ipfs_accel.testing import Recorder as Server

KEY = "gsk_test_0123456789"

# Bodies as the GroqCloud spec's examples and schemas show them (groq/openapi.yaml).
CHAT = {
    "id": "chatcmpl-f51b2cd2-bef7-417e-964e-a08f0b513c22",
    "object": "chat.completion",
    "created": 1730241104,
    "model": "llama-3.3-70b-versatile",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Fast language models matter."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "queue_time": 0.037493756,
        "prompt_tokens": 18,
        "prompt_time": 0.000680594,
        "completion_tokens": 556,
        "completion_time": 0.463333333,
        "total_tokens": 574,
        "total_time": 0.464013927,
    },
    "system_fingerprint": "fp_179b0f92c9",
    "x_groq": {"id": "req_01jbd6g2qdfw2adyrt2az8hz4w"},
}
TIMINGS = {
    "queue_time": 0.037493756,
    "prompt_time": 0.000680594,
    "completion_time": 0.463333333,
    "total_time": 0.464013927,
}
EMBEDDINGS = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.5, 0.25], "index": 1},
        {"object": "embedding", "embedding": [-0.01, 0.02], "index": 0},
    ],
    "model": "nomic-embed-text-v1_5",
    "usage": {"prompt_tokens": 6, "total_tokens": 6},
}
STREAM_USAGE = {
    "queue_time": 0.01, "prompt_tokens": 9, "prompt_time": 0.002,
    "completion_tokens": 3, "completion_time": 0.004, "total_tokens": 12, "total_time": 0.006,
}


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` as Groq streams it."""
    choices = [{"index": 0, "delta": {} if content is None else {"content": content},
                "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1730241104,
            "model": "llama-3.3-70b-versatile", "system_fingerprint": "fp_179b0f92c9",
            "choices": choices, **extra}


sse = openai_sse  # what the tests call it


def stream_response(body: bytes, request_id: str = "req_stream") -> httpx2.Response:
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream", "x-request-id": request_id},
        content=body,
    )


def error(status: int, message: str, type_: str, code: str | None = None,
          headers: dict[str, str] | None = None, **fields: Any) -> httpx2.Response:
    """An ``ErrorResponse``: ``{"error": {message, type, code, ...}}``."""
    body = {"error": {"message": message, "type": type_, "code": code, **fields}}
    return httpx2.Response(status, json=body, headers=headers or {})


def backend(server: Server, **settings: Any) -> tuple[Backend, str]:
    """The groq backend over ``server``, with one endpoint (fast retries, key ``KEY``)."""
    b = mock_backend(ipfs_accel_groq, server)
    eid = b.create_endpoint(**{"api_key": KEY, **FAST_RETRIES, **settings})
    return b, eid


def tool_calls_answer(*calls: dict[str, Any], content: str | None = None,
                      usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Groq ``chat.completion`` whose message asks for ``calls``."""
    return {**CHAT, "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls",
                                 "message": {"role": "assistant", "content": content,
                                             "tool_calls": list(calls)}}],
            "usage": usage or CHAT["usage"]}


def function_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One ``tool_calls[]`` entry (``ChatCompletionMessageToolCall``), arguments as JSON text."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_chunk(*fragments: dict[str, Any], finish: str | None = None,
               **extra: Any) -> dict[str, Any]:
    """A chunk whose delta carries ``tool_calls`` (``ChatCompletionMessageToolCallChunk``)."""
    out = chunk(None, finish, **extra)
    out["choices"][0]["delta"] = {"tool_calls": list(fragments)}
    return out

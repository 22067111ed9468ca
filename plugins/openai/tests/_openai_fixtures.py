"""Fake OpenAI server for the openai plugin's tests: spec-shaped bodies over MockTransport."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_openai
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, mock_backend, openai_sse
from ipfs_accel.testing import Recorder as Server

KEY = "sk-test-0123456789"

# Bodies as the OpenAI spec's examples show them (openapi.transformed.yml).
CHAT = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}
COMPLETION = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
    "object": "text_completion",
    "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None,
         "finish_reason": "length"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}
EMBEDDINGS = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.5, 0.25], "index": 1},
        {"object": "embedding", "embedding": [0.0023064255, -0.009327292], "index": 0},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` (a usage-only chunk when ``extra`` has ``usage``)."""
    choices = [] if extra.get("usage") else [
        {"index": 0, "delta": {} if content is None else {"content": content},
         "logprobs": None, "finish_reason": finish}
    ]
    return {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices": choices,
            **extra}


STREAM_USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


sse = openai_sse  # what the tests call it


def stream_response(body: bytes, request_id: str = "req_stream") -> httpx2.Response:
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream", "x-request-id": request_id},
        content=body,
    )


def error(status: int, message: str, type_: str, code: str | None = None,
          headers: dict[str, str] | None = None) -> httpx2.Response:
    """An ``ErrorResponse``: ``{"error": {message, type, param, code}}``."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return httpx2.Response(status, json=body, headers=headers or {})


def backend(server: Server, **settings: Any) -> tuple[Backend, str]:
    """The openai backend over ``server``, with one endpoint (fast retries, key ``KEY``)."""
    b = mock_backend(ipfs_accel_openai, server)
    eid = b.create_endpoint(**{"api_key": KEY, **FAST_RETRIES, **settings})
    return b, eid


def tool_calls_answer(*calls: dict[str, Any], content: str | None = None,
                      finish: str = "tool_calls", usage: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """A ``chat.completion`` whose message asks for ``calls`` (``ChatCompletionMessageToolCall``)."""
    return {**CHAT, "id": "chatcmpl-tool",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content, "refusal": None,
                                     "annotations": [], "tool_calls": list(calls)}}],
            "usage": usage or CHAT["usage"]}


def function_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One ``tool_calls[]`` entry of a message, arguments as JSON text (as OpenAI sends them)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_chunk(*fragments: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` whose delta carries ``tool_calls`` fragments
    (``ChatCompletionMessageToolCallChunk``: ``index``, then ``id``/``function`` pieces)."""
    out = chunk(None, finish)
    out["choices"][0]["delta"] = {"tool_calls": list(fragments)}
    return out

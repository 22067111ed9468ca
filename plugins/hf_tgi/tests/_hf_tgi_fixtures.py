"""Shared helpers of the hf_tgi tests: a recording fake server and TGI-shaped bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx2
import ipfs_accel_hf_tgi
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, mock_backend
from ipfs_accel.testing import Recorder as Server

Handler = Callable[[httpx2.Request], httpx2.Response]


def backend(
    server: Server, *, environ: dict[str, str] | None = None, **settings: Any
) -> tuple[Backend, str]:
    """The hf_tgi backend over ``server`` and one endpoint with fast retries."""
    b = mock_backend(ipfs_accel_hf_tgi, server, environ=environ)
    eid = b.create_endpoint(**{**FAST_RETRIES, "base_url": "http://tgi.test", **settings})
    return b, eid


def sse(events: Iterable[Any], *, terminated: bool = True) -> httpx2.Response:
    """An SSE answer, one ``data:`` event per item (TGI writes ``data:`` with no space)."""
    text = "".join(f"data:{json.dumps(e) if not isinstance(e, str) else e}\n\n" for e in events)
    return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                           content=text.encode())


def error(status: int, message: str, error_type: str) -> httpx2.Response:
    """A TGI ``ErrorResponse``."""
    return httpx2.Response(status, json={"error": message, "error_type": error_type})


def token(i: int, text: str, *, special: bool = False) -> dict[str, Any]:
    """A ``Token``."""
    return {"id": i, "text": text, "logprob": -0.25, "special": special}


GENERATE = {
    "generated_text": " Paris.",
    "details": {
        "finish_reason": "eos_token",
        "generated_tokens": 3,
        "seed": None,
        "prefill": [],
        "tokens": [token(3681, " Paris"), token(29889, "."), token(2, "</s>", special=True)],
    },
}
"""A ``GenerateResponse`` with ``details`` (prefill empty: no decoder_input_details)."""

GENERATE_HEADERS = {
    "x-prompt-tokens": "7",
    "x-generated-tokens": "3",
    "x-total-time": "120",
    "x-queue-time": "4",
    "x-compute-type": "1-nvidia-a10g",
}

STREAM = [
    {"index": 1, "token": token(3681, " Paris"), "generated_text": None, "details": None},
    {"index": 2, "token": token(29889, "."), "generated_text": None, "details": None},
    {
        "index": 3, "token": token(2, "</s>", special=True), "generated_text": " Paris.",
        "details": {"finish_reason": "eos_token", "generated_tokens": 3, "input_length": 7,
                    "seed": None},
    },
]
"""``/generate_stream`` events: two tokens, then the last with ``generated_text``."""

CHAT = {
    "id": "",
    "object": "chat.completion",
    "created": 1706270835,
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "system_fingerprint": "3.3.6-sha-1234567",
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": "Hello!"},
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
}
"""A ``ChatCompletion``."""


def chat_chunk(content: str | None, finish: str | None = None,
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A ``ChatCompletionChunk``."""
    choices = [] if content is None else [{
        "index": 0, "delta": {"role": "assistant", "content": content},
        "logprobs": None, "finish_reason": finish,
    }]
    return {"id": "", "object": "chat.completion.chunk", "created": 1706270978,
            "model": "meta-llama/Llama-3.1-8B-Instruct", "system_fingerprint": "3.3.6",
            "choices": choices, "usage": usage}


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
"""An OpenAI-form function tool."""

TGI_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "arguments": TOOL["function"]["parameters"]}}
"""The same tool as TGI's ``Tool`` (the schema under ``arguments``)."""


def tool_answer(arguments: Any = '{"city":"Paris"}', finish: str = "stop") -> dict[str, Any]:
    """A ``ChatCompletion`` calling get_weather, as TGI 3.3 sends it (``arguments`` JSON
    text; pass an object for TGI 2.x-3.1, ``eos_token`` as finish for 2.0)."""
    return {
        "id": "", "object": "chat.completion", "created": 1741372335,
        "model": "meta-llama/Llama-3.1-8B-Instruct", "system_fingerprint": "3.3.6-native",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": finish, "message": {
            "role": "assistant", "content": None, "tool_calls": [{
                "id": "0", "type": "function",
                "function": {"description": None, "name": "get_weather",
                             "arguments": arguments}}]}}],
        "usage": {"prompt_tokens": 501, "completion_tokens": 29, "total_tokens": 530},
    }


def tool_chunk(arguments: Any, name: str | None = None, *, finish: str | None = None,
               whole: bool = False, call_id: str = "0") -> dict[str, Any]:
    """A ``ChatCompletionChunk`` carrying one tool-call fragment: ``delta.tool_calls`` a
    list (TGI 3.2 and later) or, with ``whole``, one object (TGI 2.x-3.1)."""
    call = {"index": 0, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}
    delta = {"role": "assistant", "content": None, "tool_calls": call if whole else [call]}
    return {"id": "", "object": "chat.completion.chunk", "created": 1741688515,
            "model": "meta-llama/Llama-3.1-8B-Instruct", "system_fingerprint": "3.3.6-native",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None}


TOOL_STREAM = [
    tool_chunk("{", "get_weather"),
    *(tool_chunk(piece) for piece in (' "', "city", '":', ' "', "Paris", '"}')),
    chat_chunk(None, usage={"prompt_tokens": 501, "completion_tokens": 12, "total_tokens": 513}),
    "[DONE]",
]
"""A tool call streamed by TGI 3.2 and later: the name with ``"{"``, the arguments token by
token (the envelope's closing brace trimmed), no chunk with a finish_reason, usage, [DONE]."""

LEGACY_TOOL_STREAM = [
    *(tool_chunk(piece, whole=True, call_id="") for piece in (
        '{"', "function", '":', ' {"', "_name", '":', ' "', "get", "_weather", '",', ' "',
        "city", '":', ' "', "Paris", '"}}')),
    tool_chunk("<|eot_id|>", whole=True, call_id="", finish="stop"),
    "[DONE]",
]
"""The same call streamed by TGI 2.x-3.1: ``tool_calls`` one object, no name, the grammar's
text with the end-of-sequence token; the last chunk says the finish."""

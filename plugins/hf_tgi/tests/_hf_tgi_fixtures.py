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

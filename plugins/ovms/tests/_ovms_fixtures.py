"""Shared helpers of the ovms plugin tests: spec-shaped bodies, a backend
over the kit's Recorder.
"""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_ovms
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, Recorder, mock_backend, openai_sse

# Bodies copied from the spec's examples (model_server_rest_api_*.md, required_api.md).
CHAT_RESPONSE: dict[str, Any] = {
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "logprobs": None,
            "message": {"content": "\n\nHow can I help you?", "role": "assistant"},
        }
    ],
    "created": 1716825108,
    "model": "llama3",
    "object": "chat.completion",
    "usage": {"completion_tokens": 38, "prompt_tokens": 22, "total_tokens": 60},
}
COMPLETION_RESPONSE: dict[str, Any] = {
    "choices": [
        {"finish_reason": "length", "index": 0, "logprobs": None, "text": " a blue sky"}
    ],
    "created": 1716825108,
    "model": "llama3",
    "object": "text_completion",
    "usage": {"completion_tokens": 4, "prompt_tokens": 5, "total_tokens": 9},
}
EMBED_RESPONSE: dict[str, Any] = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.5, 0.6], "index": 1},
        {"object": "embedding", "embedding": [-0.0344, -0.0255], "index": 0},
    ],
    "usage": {"prompt_tokens": 6, "total_tokens": 6},
}
RERANK_RESPONSE: dict[str, Any] = {
    "results": [
        {"index": 0, "relevance_score": 0.3886180520057678},
        {"index": 1, "relevance_score": 0.0055549247190356255},
    ]
}
INFER_RESPONSE: dict[str, Any] = {
    "model_name": "mymodel",
    "outputs": [{"name": "output0", "shape": [3, 2], "datatype": "FP32",
                 "data": [1.0, 1.1, 2.0, 2.1, 3.0, 3.1]}],
}
METADATA_RESPONSE: dict[str, Any] = {
    "name": "resnet", "versions": ["1"], "platform": "OpenVINO",
    "inputs": [{"name": "0", "datatype": "FP32", "shape": [1, 224, 224, 3]}],
    "outputs": [{"name": "1463", "datatype": "FP32", "shape": [1, 1000]}],
}


def sse(events: list[dict[str, Any] | str], *, done: bool = True) -> httpx2.Response:
    """A 200 SSE response of these data events, ended by data: [DONE] when done."""
    return httpx2.Response(200, content=openai_sse(*events, done=done),
                           headers={"content-type": "text/event-stream"})


def backend(recorder: Recorder, environ: dict[str, str] | None = None) -> Backend:
    """An ovms backend whose HTTP goes to ``recorder``."""
    return mock_backend(ipfs_accel_ovms, recorder, environ=environ)


def endpoint(b: Backend, **settings: Any) -> str:
    """An endpoint with fast but real retries."""
    return b.create_endpoint(**{**FAST_RETRIES, "base_url": "http://ovms.test:8000", **settings})

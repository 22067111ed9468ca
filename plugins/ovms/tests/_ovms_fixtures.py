"""Shared helpers of the ovms plugin tests: a recording fake server and spec-shaped bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import ipfs_accel_ovms
from ipfs_accel import Backend, Registry

Handler = Callable[[httpx2.Request], httpx2.Response]

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
    parts = ["data: " + (e if isinstance(e, str) else json.dumps(e)) + "\n\n" for e in events]
    if done:
        parts.append("data: [DONE]\n\n")
    return httpx2.Response(200, content="".join(parts).encode(),
                           headers={"content-type": "text/event-stream"})


class Recorder:
    """A fake OVMS: answers ``responses`` in turn (the last repeats); records requests."""

    def __init__(self, *responses: httpx2.Response | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        i = min(len(self.requests) - 1, len(self.responses) - 1)
        answer = self.responses[i]
        if callable(answer) and not isinstance(answer, httpx2.Response):
            return answer(request)
        assert isinstance(answer, httpx2.Response)
        return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def body(self, i: int = -1) -> Any:
        """The JSON body of request ``i``."""
        return json.loads(self.requests[i].content)


def backend(recorder: Recorder, environ: dict[str, str] | None = None) -> Backend:
    """An ollama backend whose HTTP goes to ``recorder``."""
    registry = Registry(
        plugins=[ipfs_accel_ovms], entry_points=False,
        transport=httpx2.MockTransport(recorder), environ=environ or {},
    )
    return registry.get("ovms")


def endpoint(b: Backend, **settings: Any) -> str:
    """An endpoint with fast but real retries."""
    settings.setdefault("initial_retry_delay", 0.001)
    settings.setdefault("max_retry_delay", 0.01)
    settings.setdefault("base_url", "http://ovms.test:8000")
    return b.create_endpoint(**settings)

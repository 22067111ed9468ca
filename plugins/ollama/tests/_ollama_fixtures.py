"""Shared helpers of the ollama plugin tests: spec-shaped bodies, a backend
over the kit's Recorder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx2
import ipfs_accel_ollama
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, Recorder, mock_backend

# Bodies copied from the spec's examples (api.md, openapi.yaml).
CHAT_RESPONSE: dict[str, Any] = {
    "model": "llama3.2",
    "created_at": "2023-12-12T14:13:43.416799Z",
    "message": {"role": "assistant", "content": "Hello! How are you today?"},
    "done": True,
    "done_reason": "stop",
    "total_duration": 5191566416,
    "load_duration": 2154458,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000,
    "eval_count": 298,
    "eval_duration": 4799921000,
}
GENERATE_RESPONSE: dict[str, Any] = {
    "model": "llama3.2",
    "created_at": "2023-08-04T19:22:45.499127Z",
    "response": "The sky is blue because it is the color of the sky.",
    "done": True,
    "done_reason": "stop",
    "total_duration": 5043500667,
    "load_duration": 5025959,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 325953000,
    "eval_count": 290,
    "eval_duration": 4709213000,
}
EMBED_RESPONSE: dict[str, Any] = {
    "model": "all-minilm",
    "embeddings": [
        [0.010071029, -0.0017594862, 0.05007221],
        [-0.0098027075, 0.06042469, 0.025257962],
    ],
    "total_duration": 14143917,
    "load_duration": 1019500,
    "prompt_eval_count": 8,
}
TAGS_RESPONSE: dict[str, Any] = {
    "models": [
        {
            "name": "gemma4",
            "model": "gemma4",
            "modified_at": "2025-10-03T23:34:03.409490317-07:00",
            "size": 9608350245,
            "digest": "c6eb396dbd5992bbe3f5cdb947e8bbc0ee413d7c17e2beaae69f5d569cf982eb",
            "details": {
                "format": "gguf",
                "family": "gemma4",
                "families": ["gemma4"],
                "parameter_size": "8.0B",
                "quantization_level": "Q4_K_M",
            },
        }
    ]
}


def chat_line(text: str, *, done: bool = False, **extra: Any) -> dict[str, Any]:
    """One NDJSON line of a streamed /api/chat, as the streaming docs show it."""
    line: dict[str, Any] = {
        "model": "gemma4",
        "created_at": "2025-10-26T17:15:24.097767Z",
        "message": {"role": "assistant", "content": text},
        "done": done,
    }
    line.update(extra)
    return line


def gen_line(text: str, *, done: bool = False, **extra: Any) -> dict[str, Any]:
    """One NDJSON line of a streamed /api/generate (streaming.mdx)."""
    line: dict[str, Any] = {
        "model": "gemma4",
        "created_at": "2025-10-26T17:15:24.097767Z",
        "response": text,
        "done": done,
    }
    line.update(extra)
    return line


FINAL_COUNTS: dict[str, Any] = {
    "done_reason": "stop",
    "total_duration": 4883583458,
    "load_duration": 1334875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342546000,
    "eval_count": 282,
    "eval_duration": 4535599000,
}


def ndjson(lines: Iterable[dict[str, Any] | str]) -> httpx2.Response:
    """A 200 NDJSON response made of these lines (a str is sent as it is)."""
    body = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    return httpx2.Response(
        200, content=body.encode(), headers={"content-type": "application/x-ndjson"}
    )


def backend(recorder: Recorder, environ: dict[str, str] | None = None) -> Backend:
    """An ollama backend whose HTTP goes to ``recorder``."""
    return mock_backend(ipfs_accel_ollama, recorder, environ=environ)


def endpoint(b: Backend, **settings: Any) -> str:
    """An endpoint with fast but real retries."""
    base = {**FAST_RETRIES, "base_url": "http://ollama.test:11434"}
    return b.create_endpoint(**{**base, **settings})

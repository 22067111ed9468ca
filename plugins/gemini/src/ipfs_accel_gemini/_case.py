"""The Gemini backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a ``generateContent`` answer, shaped as the API's documentation shows
it; the kit replays it from a loopback server while it checks counters, keys, backoff, queue
and request IDs. The kit is imported only when the hook is called, never on normal use.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _chunk(text: str, finish: str | None, output_tokens: int) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                 "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": output_tokens,
                          "totalTokenCount": 9 + output_tokens},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mIg7aZ2bC4mX1dkP",
    }


def _stream() -> list[str]:
    """``streamGenerateContent?alt=sse``: one ``data:`` event per chunk, each repeating the
    usage so far; the chunk with ``finishReason`` is the last."""
    lines: list[str] = []
    for chunk in (_chunk("po", None, 1), _chunk("ng", "STOP", 3)):
        lines += [f"data: {json.dumps(chunk)}", ""]
    return lines


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import Case, Reply, Stream  # noqa: PLC0415 - the kit loads only here

    return Case(
        backend="gemini",
        plugin="ipfs_accel_gemini",
        success=Reply(200, json={
            "candidates": [{
                "content": {"parts": [{"text": "pong"}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {
                "promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12,
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "mIg7aZ2bC4mX1dkP",
        }),
        tokens=(9, 3),
        auth=("x-goog-api-key", "{key}"),
        bad_request=Reply(400, json=_error(400, "INVALID_ARGUMENT", "conformance: bad request")),
        overloaded=Reply(503, json=_error(503, "UNAVAILABLE", "The model is overloaded.")),
        rate_limited=Reply(429, json=_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted.")),
        text="pong",
        finish="stop",  # STOP
        stream=Stream(_stream()),
        # one input goes to :embedContent, which answers one embedding
        embed=Reply(200, json={"embedding": {"values": [0.0123, -0.0456, 0.0789]}}),
        params={"max_tokens": "generationConfig.maxOutputTokens",
                "temperature": "generationConfig.temperature",
                "top_p": "generationConfig.topP", "stop": "generationConfig.stopSequences"},
    )

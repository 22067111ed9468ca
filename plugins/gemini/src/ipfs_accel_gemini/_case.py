"""The Gemini backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a ``generateContent`` answer, shaped as the API's documentation shows
it; the kit replays it from a loopback server while it checks counters, keys, backoff, queue
and request IDs. The tool round trip is answered with a ``functionCall`` part carrying a
``thoughtSignature`` and no ID, as a thinking model sends it. The batch check is answered
as ``_batch_case`` says. The kit is imported only when the hook is called, never on normal
use.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

from ._batch_case import batch_case

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = ["SIGNATURE", "conformance_case"]


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


# An opaque signature as the API sends it (base64): it must come back on the part.
SIGNATURE = "CiQBVKhc7kqb0cXzR2Y5x3n0M1h4VGVzdFNpZ25hdHVyZQ=="
_CALL_PART = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
              "thoughtSignature": SIGNATURE}
# a thinking model's count: the thoughts are billed as output and are in the total
_TOOL_USAGE = {"promptTokenCount": 30, "candidatesTokenCount": 6, "thoughtsTokenCount": 12,
               "totalTokenCount": 48}


def _tool_body(parts: list[dict[str, Any]], finish: str | None,
               usage: dict[str, int]) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash", "responseId": "tIg7aZ2bC4mX1dkP"}


def _tool_reply() -> dict[str, Any]:
    """The answer calling ``get_weather({"city": "Paris"})``: a thinking model's
    ``functionCall`` part with its ``thoughtSignature``, no ID (the API gives none), and
    ``STOP``."""
    return _tool_body([_CALL_PART], "STOP", _TOOL_USAGE)


def _tool_stream() -> list[str]:
    """The same streamed: the whole call in one event, ``STOP`` in the next."""
    events = (_tool_body([_CALL_PART], None, _TOOL_USAGE),
              _tool_body([{"text": ""}], "STOP", _TOOL_USAGE))
    lines: list[str] = []
    for event in events:
        lines += [f"data: {json.dumps(event)}", ""]
    return lines


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
    from ipfs_accel.testing import (  # noqa: PLC0415 - the kit loads only here
        Case,
        Reply,
        Stream,
        ToolCase,
    )

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
        tools=ToolCase(reply=Reply(200, json=_tool_reply()), stream=Stream(_tool_stream()),
                       id=None),
        batch=batch_case(),
    )

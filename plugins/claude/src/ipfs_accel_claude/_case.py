"""The Anthropic Messages backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a Messages API answer, shaped as the API's documentation shows it; the
kit replays it from a loopback server while it checks counters, keys, backoff, queue and
request IDs. The tool round trip is answered with a ``tool_use`` block calling
``get_weather({"city": "Paris"})``, whole and streamed; the Message Batches API answers as
:mod:`._case_batch` says. The kit is imported only when the hook is called, never on
normal use.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

from ._case_batch import batch_case

if TYPE_CHECKING:
    from ipfs_accel.testing import Case, ToolCase

__all__ = ["conformance_case"]


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _lines(events: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for event in events:
        lines += [f"event: {event['type']}", f"data: {json.dumps(event)}", ""]
    return lines


def _start(message_id: str) -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-6", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1},
    }}


def _end(stop_reason: str) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
         "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]


def _stream() -> list[str]:
    """The Messages API's stream of the same answer: named SSE events, ``message_stop`` last;
    ``message_start`` carries the input tokens and ``message_delta`` the output tokens."""
    return _lines([
        _start("msg_013Zva2CMHLNnXjNJJKqJ2EF"),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "po"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ng"}},
        {"type": "content_block_stop", "index": 0},
        *_end("end_turn"),
    ])


_TOOL_ID = "toolu_01A09q90qw90lq917835lq9"
_TOOL_USE: dict[str, Any] = {"type": "tool_use", "id": _TOOL_ID, "name": "get_weather",
                             "input": {"city": "Paris"}}


def _tool_stream() -> list[str]:
    """The tool answer streamed as the API does: the ``tool_use`` block starts with its ID,
    name and an empty input, the input follows in two ``input_json_delta`` pieces."""
    return _lines([
        _start("msg_01Aq9w938a90dw8q"),
        {"type": "content_block_start", "index": 0,
         "content_block": {**_TOOL_USE, "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
        {"type": "content_block_stop", "index": 0},
        *_end("tool_use"),
    ])


def _tools() -> ToolCase:
    """The Messages API's answer calling get_weather({"city": "Paris"}), and its stream."""
    from ipfs_accel.testing import Reply, Stream, ToolCase  # noqa: PLC0415 - kit loads here

    return ToolCase(
        reply=Reply(200, json={
            "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-6", "content": [_TOOL_USE],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 3},
        }),
        stream=Stream(_tool_stream()),
        id=_TOOL_ID,
    )


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import Case, Reply, Stream  # noqa: PLC0415 - the kit loads only here

    return Case(
        backend="claude",
        plugin="ipfs_accel_claude",
        success=Reply(200, json={
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": "pong"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 3},
        }),
        tokens=(9, 3),
        auth=("x-api-key", "{key}"),
        bad_request=Reply(400, json=_error("invalid_request_error", "conformance: bad request")),
        overloaded=Reply(529, json=_error("overloaded_error", "Overloaded")),
        rate_limited=Reply(429, json=_error("rate_limit_error", "conformance: rate limited")),
        text="pong",
        finish="stop",  # end_turn
        stream=Stream(_stream()),
        params={"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
                "stop": "stop_sequences"},
        tools=_tools(),
        batch=batch_case(),
    )

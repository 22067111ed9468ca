"""The Text Generation Inference backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a TGI Messages API (``/v1/chat/completions``) answer, shaped as the
API's documentation shows it; the kit replays it from a loopback server while it checks
counters, keys, backoff, queue and request IDs. The kit is imported only when the hook is
called, never on normal use.

The tool round trip (``Case.tools``) is answered as TGI 3.3 answers a chat offering
``get_weather``: the call named ``"0"``, its ``arguments`` JSON text, ``finish_reason:
"stop"``; streamed, the name on the first fragment (whose ``arguments`` is ``"{"``), the
arguments in pieces, then the usage chunk and ``[DONE]`` with no chunk saying a
``finish_reason``, as TGI sends it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel.testing import Case, ToolCase

__all__ = ["conformance_case"]

_MODEL = "tgi"
_FINGERPRINT = "3.3.6-native"
_USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def _chunk(delta: dict[str, Any] | None, usage: dict[str, int] | None = None) -> str:
    choices = [] if delta is None else [
        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]
    return "data: " + json.dumps({
        "id": "", "object": "chat.completion.chunk", "created": 1764201600, "model": _MODEL,
        "system_fingerprint": _FINGERPRINT, "choices": choices, "usage": usage,
    })


def _fragment(arguments: str, name: str | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "0", "type": "function",
         "function": {"name": name, "arguments": arguments}}]}


def _tools() -> ToolCase:
    from ipfs_accel.testing import Reply, Stream, ToolCase  # noqa: PLC0415 - kit loads only here

    body = {
        "id": "", "object": "chat.completion", "created": 1764201600, "model": _MODEL,
        "system_fingerprint": _FINGERPRINT,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop", "message": {
            "role": "assistant", "content": None, "tool_calls": [{
                "id": "0", "type": "function",
                "function": {"description": None, "name": "get_weather",
                             "arguments": '{"city":"Paris"}'}}]}}],
        "usage": _USAGE,
    }
    events = [
        _chunk(_fragment("{", "get_weather")),
        # TGI's tokens; the last (the grammar's '"}}') loses the closing brace of its envelope
        *(_chunk(_fragment(piece)) for piece in (' "', "city", '":', ' "', "Paris", '"}')),
        _chunk(None, _USAGE),
        "data: [DONE]",
    ]
    lines: list[str] = []
    for event in events:
        lines += [event, ""]
    return ToolCase(reply=Reply(200, json=body), stream=Stream(lines), id="0")


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import openai_chat_case  # noqa: PLC0415 - the kit loads only here

    case = openai_chat_case(
        backend="hf_tgi",
        plugin="ipfs_accel_hf_tgi",
        model=_MODEL,
        extra={"system_fingerprint": "3.0.0-native"},
        stream=True,
        params={"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
                "stop": "stop"},
    )
    return dataclasses.replace(case, tools=_tools())

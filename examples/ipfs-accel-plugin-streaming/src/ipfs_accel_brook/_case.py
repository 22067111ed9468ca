"""The conformance case: how the kit (``BackendConformance``, ``ipfs-accel report``) and
``ipfs-accel demo`` drive this backend. Imported only by the ``conformance_case`` hook, so
normal use never loads the kit."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ipfs_accel.testing import Case, Reply, Stream, ToolCase

if TYPE_CHECKING:
    from ipfs_accel import Backend

__all__ = ["CHAT_REPLY", "EMBED_REPLY", "STREAM_EVENTS", "TOOL_EVENTS", "TOOL_REPLY", "case"]

CHAT_REPLY = {
    "id": "brk-0001",
    "model": "brook-chat-1",
    "message": {"role": "assistant", "text": "Hello!"},
    "end": "END_OF_TURN",
    "meter": {"read": 5, "written": 2},
}
"""A unary ``/v2/chat`` answer, as the Brook API sends it."""

STREAM_EVENTS = [
    ("start", {"id": "brk-0002", "meter": {"read": 5}}),
    ("text", {"text": "Hel"}),
    ("text", {"text": "lo!"}),
    ("end", {"end": "END_OF_TURN", "meter": {"written": 2}}),
]
"""A streamed ``/v2/chat`` answer: the prompt's tokens come first, the reply's last."""

TOOL_REPLY = {
    "id": "brk-0003",
    "model": "brook-chat-1",
    "message": {"role": "assistant", "text": "",
                "calls": [{"id": "call-brk-1", "tool": "get_weather", "input": {"city": "Paris"}}]},
    "end": "TOOL_CALL",
    "meter": {"read": 31, "written": 9},
}
"""A unary ``/v2/chat`` answer calling the kit's ``get_weather`` tool."""

TOOL_EVENTS = [
    ("start", {"id": "brk-0004", "meter": {"read": 31}}),
    ("call", {"index": 0, "id": "call-brk-1", "tool": "get_weather"}),
    ("call_input", {"index": 0, "json": '{"ci'}),
    ("call_input", {"index": 0, "json": 'ty": "Par'}),
    ("call_input", {"index": 0, "json": 'is"}'}),
    ("end", {"end": "TOOL_CALL", "meter": {"written": 9}}),
]
"""The same answer streamed: the call's ID and tool first, then its input in pieces."""

EMBED_REPLY = {
    "model": "brook-embed-1",
    "embeddings": [{"index": 0, "values": [0.25, -0.5, 1.0]}],
    "meter": {"read": 1},
}
"""A ``/v2/embed`` answer for one input."""


def _sse(events: list[tuple[str, Any]]) -> list[str]:
    lines = []
    for name, data in events:
        lines += [f"event: {name}", f"data: {json.dumps(data)}", ""]  # "" ends the event
    return lines


def _error(status: int, code: str) -> Reply:
    return Reply(status, json={"error": {"message": f"conformance: {code}", "code": code}})


def _chat(backend: Backend, endpoint_id: str, request_id: str) -> Any:
    return backend.chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint_id,
                        request_id=request_id)


def case() -> Case:
    """The brook backend's case: a chat call and its canned reply, the API's error replies,
    what the kit needs to drive chat, stream_chat and embed and the common parameters, and
    the answers of the tool round trip."""
    return Case(
        backend="brook",
        success=Reply(200, json=CHAT_REPLY),
        tokens=(5, 2),                           # what parse_usage must read from success
        auth=("authorization", "Key {key}"),     # where and how the key must appear
        request_id_header="x-client-request-id",
        call=_chat,
        bad_request=_error(400, "invalid_request"),
        overloaded=_error(503, "busy"),
        rate_limited=_error(429, "rate_limited"),
        text="Hello!",                           # what the chat reply and the stream say
        finish="stop",                           # what END_OF_TURN means
        stream=Stream(_sse(STREAM_EVENTS)),
        embed=Reply(200, json=EMBED_REPLY),      # the answer to embed(["ping"])
        params={"max_tokens": "max_new_tokens", "temperature": "temperature",
                "top_p": "nucleus", "stop": "stop_sequences"},
        # the tool round trip: the call (with Brook's ID, which must come back with the
        # tool's answer), unary and streamed; the answer after it is the chat reply above
        tools=ToolCase(reply=Reply(200, json=TOOL_REPLY), stream=Stream(_sse(TOOL_EVENTS)),
                       id="call-brk-1"),
    )

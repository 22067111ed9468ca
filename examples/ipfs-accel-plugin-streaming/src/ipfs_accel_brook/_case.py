"""The conformance case: how the kit (``BackendConformance``, ``ipfs-accel report``) and
``ipfs-accel demo`` drive this backend. Imported only by the ``conformance_case`` hook, so
normal use never loads the kit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipfs_accel.testing import Case, Reply

if TYPE_CHECKING:
    from ipfs_accel import Backend

__all__ = ["CHAT_REPLY", "case"]

CHAT_REPLY = {
    "id": "brk-0001",
    "model": "brook-chat-1",
    "message": {"role": "assistant", "text": "Hello!"},
    "end": "END_OF_TURN",
    "meter": {"read": 5, "written": 2},
}
"""A unary ``/v2/chat`` answer, as the Brook API sends it."""


def _error(status: int, code: str) -> Reply:
    return Reply(status, json={"error": {"message": f"conformance: {code}", "code": code}})


def _chat(backend: Backend, endpoint_id: str, request_id: str) -> Any:
    return backend.chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint_id,
                        request_id=request_id)


def case() -> Case:
    """The brook backend's case: a chat call, its canned reply and the API's error replies."""
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
    )

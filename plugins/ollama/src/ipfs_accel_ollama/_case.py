"""The Ollama backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a non-streamed ``/api/chat`` answer, shaped as the API's documentation
shows it; the kit replays it from a loopback server while it checks counters, keys, backoff,
queue and request IDs. The kit is imported only when the hook is called, never on normal
use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel import Backend
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


def _chat(backend: Backend, endpoint_id: str, request_id: str) -> Any:
    return backend.chat([{"role": "user", "content": "ping"}], model="llama3.2",
                        endpoint_id=endpoint_id, request_id=request_id)


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import Case, Reply  # noqa: PLC0415 - the kit loads only here

    return Case(
        backend="ollama",
        plugin="ipfs_accel_ollama",
        success=Reply(200, json={
            "model": "llama3.2",
            "created_at": "2026-11-27T10:00:00.000000Z",
            "message": {"role": "assistant", "content": "pong"},
            "done": True,
            "done_reason": "stop",
            "total_duration": 5191566416,
            "load_duration": 2154458,
            "prompt_eval_count": 9,
            "prompt_eval_duration": 383809000,
            "eval_count": 3,
            "eval_duration": 4799921000,
        }),
        tokens=(9, 3),
        auth=("authorization", "Bearer {key}"),
        call=_chat,
    )

"""The Gemini backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a ``generateContent`` answer, shaped as the API's documentation shows
it; the kit replays it from a loopback server while it checks counters, keys, backoff, queue
and request IDs. The kit is imported only when the hook is called, never on normal use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import Case, Reply  # noqa: PLC0415 - the kit loads only here

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
    )

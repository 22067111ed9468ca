"""The OpenAI backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a Chat Completions answer, shaped as the API's documentation shows it;
the kit replays it from a loopback server while it checks counters, keys, backoff, queue and
request IDs. The kit is imported only when the hook is called, never on normal use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import Case, Reply  # noqa: PLC0415 - the kit loads only here

    return Case(
        backend="openai",
        plugin="ipfs_accel_openai",
        success=Reply(200, json={
            "id": "chatcmpl-abc123",
            "object": "chat.completion",
            "created": 1764201600,
            "model": "gpt-4o-mini",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "pong"},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }),
        tokens=(9, 3),
        auth=("authorization", "Bearer {key}"),
        request_id_header="x-client-request-id",
    )

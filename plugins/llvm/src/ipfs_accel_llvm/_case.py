"""The LLVM API server backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is an ``/models/{id}/infer`` answer, shaped as the API's documentation
shows it; the kit replays it from a loopback server while it checks counters, keys, backoff,
queue and request IDs. The kit is imported only when the hook is called, never on normal
use.
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
        backend="llvm",
        plugin="ipfs_accel_llvm",
        success=Reply(200, json={
            "result": "pong",
            "model": "default",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }),
        tokens=(9, 3),
        auth=("authorization", "Bearer {key}"),
        text="pong",
        finish="stop",
        # the contract's ``parameters`` object takes the common names as they are
        params={"max_tokens": "parameters.max_tokens", "temperature": "parameters.temperature",
                "top_p": "parameters.top_p", "stop": "parameters.stop"},
    )

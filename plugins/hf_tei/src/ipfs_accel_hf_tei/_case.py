"""The Text Embeddings Inference backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a TEI ``/embed`` answer, shaped as the API's documentation shows it:
a bare list of vectors, with the input token count in the ``x-compute-tokens`` header (TEI
reports no output tokens). The kit replays it from a loopback server while it checks
counters (so the header's usage must be read), keys, backoff, queue and request IDs. The
kit is imported only when the hook is called, never on normal use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel import Backend
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


def _embed(backend: Backend, endpoint_id: str, request_id: str) -> Any:
    return backend.embed(["ping"], endpoint_id=endpoint_id, request_id=request_id)


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import Case, Reply  # noqa: PLC0415 - the kit loads only here

    embedded = Reply(200, json=[[0.0123, -0.0456, 0.0789]], headers={
        "x-compute-tokens": "3", "x-compute-characters": "4", "x-total-time": "2",
        "x-tokenization-time": "0", "x-queue-time": "0", "x-inference-time": "1",
    })
    return Case(
        backend="hf_tei",
        plugin="ipfs_accel_hf_tei",
        success=embedded,
        tokens=(3, 0),
        auth=("authorization", "Bearer {key}"),
        call=_embed,
        embed=embedded,  # embed(["ping"]): one vector; TEI neither chats nor streams
    )

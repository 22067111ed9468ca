"""The OpenVINO Model Server backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is an OVMS ``/v3/chat/completions`` answer, shaped as the API's
documentation shows it; the kit replays it from a loopback server while it checks counters,
keys, backoff, queue and request IDs. OVMS answers tool calls in OpenAI's form (its output
parsers give each call an ID), unary and streamed, so the tool round trip is the OpenAI one.
The kit is imported only when the hook is called, never on normal use.
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
    from ipfs_accel.testing import openai_chat_case  # noqa: PLC0415 - the kit loads only here

    return openai_chat_case(
        backend="ovms",
        plugin="ipfs_accel_ovms",
        model="m",
        settings={"model": "m"},  # OVMS serves models by name: no default to fall back on
        stream=True,
        embed=True,
        params={"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
                "stop": "stop"},
        tools=True,
    )

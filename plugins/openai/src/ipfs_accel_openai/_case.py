"""The OpenAI backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a Chat Completions answer, shaped as the API's documentation shows it;
the kit replays it from a loopback server while it checks counters, keys, backoff, queue and
request IDs. The kit is imported only when the hook is called, never on normal use.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ipfs_accel import hookimpl, openai_batch

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import openai_chat_case  # noqa: PLC0415 - the kit loads only here

    case = openai_chat_case(
        backend="openai",
        plugin="ipfs_accel_openai",
        model="gpt-4o-mini",
        request_id_header="x-client-request-id",
        stream=True,
        embed=True,
        tools=True,  # the tool round trip, as the kit's "tools" check drives it
        # the Chat Completions API's name for max_tokens (the old name is deprecated there)
        params={"max_tokens": "max_completion_tokens", "temperature": "temperature",
                "top_p": "top_p", "stop": "stop"},
    )
    # the Batch API's answers: the file uploaded, the batch in each state (unset fields
    # left out, as the spec wants), the output and error files' lines
    return dataclasses.replace(case, batch=openai_batch.batch_case(
        model="gpt-4o-mini",
        file_extra={"status": "processed", "expires_at": 1764201600 + 30 * 86400}))

"""The operations the kit drives itself: chat, stream_chat and embed, sync or async.

A case that declares ``text`` (chat), ``stream`` (stream_chat) or ``embed`` *covers* that
operation: the kit makes the call with one user message (or the case's ``inputs``) and reads
the result against the case. :func:`drive` makes one call and answers a :class:`Driven`:
the result (for a stream, its chunks) or the error it raised, never raising itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .._backend import Backend
from .._errors import CallError
from .._types import StreamChunk
from ._actions import Action, Reply
from ._case import Case
from ._run import CheckFailed

__all__ = ["COVERABLE", "MESSAGES", "Driven", "covered", "drive", "reply_for", "run_async"]

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "ping"}]
COVERABLE = ("chat", "stream_chat", "embed")
"""The operations a case can cover, in the order the checks drive them."""

T = TypeVar("T")


def covered(case: Case) -> list[str]:
    """The operations the case declares a reply for, in :data:`COVERABLE` order."""
    has = {"chat": case.text is not None, "stream_chat": case.stream is not None,
           "embed": case.embed is not None}
    return [op for op in COVERABLE if has[op]]


def reply_for(case: Case, operation: str) -> Action:
    """The server's answer to the kit's call of ``operation`` (a covered one)."""
    if operation == "chat":
        reply = case.chat if case.chat is not None else case.success
        if not isinstance(reply, Reply):
            raise CheckFailed("the case declares text but its chat reply is a stream: set "
                              "chat=Reply(...) to the API's unary chat answer")
        return reply
    if operation == "stream_chat":
        assert case.stream is not None
        return case.stream
    assert case.embed is not None
    return case.embed


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` builds to its end, in a loop of its own.

    On a thread that already runs a loop (a check started from async code) it runs on a
    worker thread instead: a check never blocks, or nests in, the caller's loop.
    """
    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@dataclasses.dataclass
class Driven:
    """One call the kit made: what it was, and its result or the error it raised."""

    operation: str
    mode: str  # "sync" or "async"
    request_id: str
    result: Any = None  # ChatResult, EmbedResult, or a list of StreamChunk
    error: CallError | None = None

    @property
    def name(self) -> str:
        """``"chat (async)"``: how a reason names the call."""
        return f"{self.operation} ({self.mode})"


def _sync(backend: Backend, operation: str, case: Case, *, eid: str, rid: str,
          params: dict[str, Any]) -> Any:
    if operation == "chat":
        return backend.chat(MESSAGES, endpoint_id=eid, request_id=rid, **params)
    if operation == "stream_chat":
        return list(backend.stream_chat(MESSAGES, endpoint_id=eid, request_id=rid, **params))
    return backend.embed(list(case.inputs), endpoint_id=eid, request_id=rid, **params)


async def _async(backend: Backend, operation: str, case: Case, *, eid: str, rid: str,
                 params: dict[str, Any]) -> Any:
    if operation == "chat":
        return await backend.achat(MESSAGES, endpoint_id=eid, request_id=rid, **params)
    if operation == "stream_chat":
        chunks: list[StreamChunk] = []
        async for chunk in backend.astream_chat(MESSAGES, endpoint_id=eid, request_id=rid,
                                                **params):
            chunks.append(chunk)
        return chunks
    return await backend.aembed(list(case.inputs), endpoint_id=eid, request_id=rid, **params)


def drive(
    backend: Backend, operation: str, case: Case, endpoint_id: str, request_id: str, *,
    mode: str = "sync", params: dict[str, Any] | None = None,
) -> Driven:
    """Make one ``operation`` call (``mode`` ``"sync"`` or ``"async"``); never raises a
    :class:`~ipfs_accel.CallError`, it is kept on the answer."""
    done = Driven(operation, mode, request_id)
    eid, rid, given = endpoint_id, request_id, dict(params or {})
    try:
        if mode == "sync":
            done.result = _sync(backend, operation, case, eid=eid, rid=rid, params=given)
        else:
            done.result = run_async(
                lambda: _async(backend, operation, case, eid=eid, rid=rid, params=given))
    except CallError as exc:
        done.error = exc
    return done

"""What ``stream_chat`` and ``stream_generate`` return: the chunks, and after them the whole
answer as one :class:`ChatResult`, the way the vendors' stream helpers offer it.

Iterating yields the chunks as they arrive, as before. Once the stream has ended,
:attr:`ChatStream.result` is the answer the chunks made: the text joined, the tool calls,
the finish reason, the usage (counted once, as for any stream) and both request IDs.
:meth:`ChatStream.final` reads what is left and returns it. Closing the stream (``close``,
a ``with`` block, or dropping it) ends the call as before.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Any

from ._errors import IpfsAccelError
from ._toolcall import ToolCall
from ._types import ChatResult, StreamChunk
from ._usage import Usage

__all__ = ["AsyncChatStream", "ChatStream", "StreamNotDoneError"]


class StreamNotDoneError(IpfsAccelError):
    """:attr:`ChatStream.result` was read before the stream ended."""


class _Answer:
    """The answer the chunks make, gathered as they pass."""

    __slots__ = ("calls", "done", "extra", "last", "model", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: list[ToolCall] = []
        self.extra: dict[str, Any] | None = None
        self.model: str | None = None
        self.last: StreamChunk | None = None
        self.done = False

    def add(self, chunk: StreamChunk) -> None:
        if chunk.delta:
            self.texts.append(chunk.delta)
        if chunk.tool_calls:
            self.calls.extend(chunk.tool_calls)
        if chunk.model and self.model is None:
            self.model = chunk.model
        if chunk.extra_content:
            self.extra = {**(self.extra or {}), **chunk.extra_content}
        self.last = chunk
        if chunk.done:
            self.done = True

    def result(self) -> ChatResult:
        last = self.last
        if not self.done or last is None:
            raise StreamNotDoneError(
                "the stream has not ended: iterate it to the end (or call final()) first")
        return ChatResult(
            text="".join(self.texts),
            finish_reason=last.finish_reason,
            native_finish_reason=last.native_finish_reason,
            model=self.model,
            usage=last.usage or Usage(),
            request_id=last.request_id,
            server_request_id=last.server_request_id,
            tool_calls=self.calls or None,
            extra_content=self.extra,
        )


class ChatStream(Iterator[StreamChunk]):
    """A streamed chat or completion: iterate for the chunks, then read :attr:`result`."""

    __slots__ = ("_answer", "_chunks")

    def __init__(self, chunks: Iterator[StreamChunk]) -> None:
        self._chunks = chunks
        self._answer = _Answer()

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamChunk:
        chunk = next(self._chunks)
        self._answer.add(chunk)
        return chunk

    @property
    def result(self) -> ChatResult:
        """The whole answer; :class:`StreamNotDoneError` before the stream has ended."""
        return self._answer.result()

    def final(self) -> ChatResult:
        """Read the rest of the stream and return the whole answer."""
        for _ in self:
            pass
        return self._answer.result()

    def close(self) -> None:
        """End the stream early; the call ends (cancelled) and frees its slot."""
        chunks = self._chunks
        if isinstance(chunks, Generator):
            chunks.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncChatStream(AsyncIterator[StreamChunk]):
    """:class:`ChatStream` on the event loop: ``async for``, then :attr:`result`."""

    __slots__ = ("_answer", "_chunks")

    def __init__(self, chunks: AsyncIterator[StreamChunk]) -> None:
        self._chunks = chunks
        self._answer = _Answer()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> StreamChunk:
        chunk = await self._chunks.__anext__()
        self._answer.add(chunk)
        return chunk

    @property
    def result(self) -> ChatResult:
        """The whole answer; :class:`StreamNotDoneError` before the stream has ended."""
        return self._answer.result()

    async def final(self) -> ChatResult:
        """Read the rest of the stream and return the whole answer."""
        async for _ in self:
            pass
        return self._answer.result()

    async def aclose(self) -> None:
        """End the stream early; the call ends (cancelled) and frees its slot."""
        chunks = self._chunks
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

"""The HTTP clients a backend sends through: one sync client, one async client per loop.

The sync path is httpx2's. The async path is httpx2's too, or aiohttp's when chosen
(``Registry(http="aiohttp")`` or ``IPFS_ACCEL_HTTP=aiohttp``; see ``_http_aiohttp``): the
engine sees either through :class:`AsyncSender` and :class:`AsyncAnswer`, the part of
httpx2's ``AsyncClient`` and ``Response`` it uses.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import httpx2

from ._http_choice import HTTP_ENV, HttpChoice, aiohttp_missing, choose_http

__all__ = ["HTTP", "Answer", "AsyncAnswer", "AsyncSender"]

_LIMITS = httpx2.Limits(max_connections=None, max_keepalive_connections=256)
# The endpoint queues bound concurrency; the pool must not add a second, hidden limit.


class Answer(Protocol):
    """What the engine reads of a response whose body is in (sync or async)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...  # case-insensitive
    @property
    def content(self) -> bytes: ...


class AsyncAnswer(Answer, Protocol):
    """An async response, its body perhaps still to read."""

    async def aread(self) -> bytes: ...
    def aiter_lines(self) -> AsyncIterator[str]: ...
    async def aclose(self) -> None: ...


class AsyncSender(Protocol):
    """An event loop's client: httpx2's ``AsyncClient``, or the aiohttp path's."""

    # the request is the client's own type, only ever handed back to its send (Any: httpx2's
    # send takes its Request, the aiohttp path's its AioRequest)
    def build_request(
        self, method: str, url: str, *, content: Any = ..., params: Any = ...,
        headers: Any = ..., timeout: httpx2.Timeout = ...,
    ) -> Any: ...
    async def send(self, request: Any, *, stream: bool = ...) -> AsyncAnswer: ...


if TYPE_CHECKING:
    from ._http_aiohttp import AioClient

    AsyncClient: TypeAlias = httpx2.AsyncClient | AioClient


class HTTP:
    """Owns the httpx2 clients of one backend.

    An ``httpx2.AsyncClient`` belongs to the event loop it first ran on, so each running
    loop gets its own (a program that calls ``asyncio.run`` for every call keeps working).
    A loop's client is closed, on that loop, when the loop shuts its async generators down
    (``asyncio.run`` and ``asyncio.Runner`` do, as they end); the client of a loop closed
    some other way is dropped the next time a new loop appears, so neither clients nor
    their sockets pile up. Tests pass ``transport``/``async_transport``
    (``httpx2.MockTransport`` serves both).

    ``http`` chooses the async path's library, ``"httpx2"`` or ``"aiohttp"`` (``None``: the
    ``IPFS_ACCEL_HTTP`` environment variable, else httpx2; see :func:`choose_http`: aiohttp
    chosen by the variable but not installed fails the first async call). An
    ``async_transport``, or a ``MockTransport`` as ``transport``, keeps it on httpx2: a
    test's transport answers its calls whatever the choice. The sync path is httpx2's.
    """

    __slots__ = ("_async", "_closers", "_lock", "_sync", "async_transport", "choice",
                 "transport")

    def __init__(
        self,
        *,
        transport: httpx2.BaseTransport | None = None,
        async_transport: httpx2.AsyncBaseTransport | None = None,
        http: str | None = None,
    ) -> None:
        self.transport = transport
        self.async_transport = async_transport
        choice = choose_http(http)  # checked even when a transport overrides it
        if async_transport is not None or isinstance(transport, httpx2.MockTransport):
            choice = "httpx2"
        self.choice: HttpChoice = choice
        self._sync: httpx2.Client | None = None
        # Plain dicts, not weak ones: a client refers back to its loop through its
        # connections, so a weak key would never die. Entries leave when their loop ends.
        self._async: dict[asyncio.AbstractEventLoop, AsyncClient] = {}
        self._closers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        self._lock = threading.Lock()

    @property
    def sync(self) -> httpx2.Client:
        """The sync client (created on first use; thread-safe)."""
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    self._sync = httpx2.Client(
                        transport=self.transport, limits=_LIMITS, follow_redirects=False
                    )
                client = self._sync
        return client

    def on_loop(self) -> AsyncSender | None:
        """The running loop's async client if it has one already (no coroutine to await on
        every call's way); ``None``: :meth:`for_loop` makes it."""
        return self._async.get(asyncio.get_running_loop())

    async def for_loop(self, loop: asyncio.AbstractEventLoop) -> AsyncSender:
        """The async client of ``loop`` (the running loop)."""
        client = self._async.get(loop)
        if client is None:
            client = await self._new_for_loop(loop)
        return client

    async def _new_for_loop(self, loop: asyncio.AbstractEventLoop) -> AsyncClient:
        with self._lock:
            for old in [lp for lp in self._async if lp.is_closed()]:
                # closed without shutting its async generators down: nothing can run on it
                # any more, so let its client and sockets go to the garbage collector
                del self._async[old]
                self._closers.pop(old, None)
        client: AsyncClient
        if self.choice == "aiohttp":
            try:
                from ._http_aiohttp import AioClient  # noqa: PLC0415 - only when chosen
            except ImportError as exc:  # chosen by IPFS_ACCEL_HTTP, not installed
                raise aiohttp_missing(f"{HTTP_ENV}=") from exc
            client = AioClient()
        else:
            transport = self.async_transport
            if transport is None and isinstance(self.transport, httpx2.MockTransport):
                transport = self.transport
            client = httpx2.AsyncClient(transport=transport, limits=_LIMITS,
                                        follow_redirects=False)
        # An async generator parked on this loop: the loop closes it (aclose) when it shuts
        # its async generators down, and closing it closes the client, on its own loop.
        closer = self._closer(loop, client)
        with self._lock:
            self._async[loop] = client
            self._closers[loop] = closer
        await closer.__anext__()  # runs to its first yield at once: no other task interleaves
        return client

    async def _closer(
        self, loop: asyncio.AbstractEventLoop, client: AsyncClient
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._async.get(loop) is client:
                    del self._async[loop]
                if self._closers.get(loop) is not None:
                    del self._closers[loop]
            await client.aclose()

    def close(self) -> None:
        """Close the sync client; async calls and their clients are left alone."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client; sync calls and other loops' clients are
        left alone."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.pop(loop, None)
            closer = self._closers.pop(loop, None)
        if closer is not None:
            await closer.aclose()
        elif client is not None:
            await client.aclose()

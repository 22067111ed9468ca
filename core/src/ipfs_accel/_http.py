"""The HTTP clients a backend sends through: one sync client, one async client per loop."""

from __future__ import annotations

import asyncio
import threading
import weakref

import httpx2

__all__ = ["HTTP"]

_LIMITS = httpx2.Limits(max_connections=None, max_keepalive_connections=256)
# The endpoint queues bound concurrency; the pool must not add a second, hidden limit.


class HTTP:
    """Owns the httpx2 clients of one backend.

    An ``httpx2.AsyncClient`` belongs to the event loop it first ran on, so each running
    loop gets its own (a program that calls ``asyncio.run`` twice keeps working). Tests
    pass ``transport``/``async_transport`` (``httpx2.MockTransport`` serves both).
    """

    __slots__ = ("_async", "_lock", "_sync", "async_transport", "transport")

    def __init__(
        self,
        *,
        transport: httpx2.BaseTransport | None = None,
        async_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.transport = transport
        self.async_transport = async_transport
        self._sync: httpx2.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
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

    def for_loop(self, loop: asyncio.AbstractEventLoop) -> httpx2.AsyncClient:
        """The async client of ``loop``."""
        client = self._async.get(loop)
        if client is None:
            transport = self.async_transport
            if transport is None and isinstance(self.transport, httpx2.MockTransport):
                transport = self.transport
            client = httpx2.AsyncClient(transport=transport, limits=_LIMITS, follow_redirects=False)
            self._async[loop] = client
        return client

    def close(self) -> None:
        """Close the sync client. Async clients close with :meth:`aclose` on their loop."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close the running loop's async client and the sync client."""
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

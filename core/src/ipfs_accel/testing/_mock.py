"""Unit-test helpers over httpx2's MockTransport: a scripted, recording handler and a backend.

The loopback :class:`~ipfs_accel.testing.FaultServer` is for faults that need a real socket;
these are for the many fast tests that only need to script answers and look at requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeAlias

import httpx2

from .._backend import Backend
from .._registry import Registry

__all__ = ["FAST_RETRIES", "Answer", "Recorder", "mock_backend", "openai_sse"]

Answer: TypeAlias = httpx2.Response | Callable[[httpx2.Request], httpx2.Response] | BaseException
"""What a :class:`Recorder` answers with: a response, a handler, or an exception to raise."""

FAST_RETRIES: Mapping[str, Any] = {"initial_retry_delay": 0.001, "max_retry_delay": 0.01}
"""``create_endpoint`` settings that keep retries real but fast (milliseconds, not seconds)."""


class Recorder:
    """A MockTransport handler that answers from a script and records every request.

    ``Recorder(*answers)`` answers the first request with the first answer, the second with
    the second, and so on; the last answer repeats. An answer is an ``httpx2.Response``
    (a fresh copy each time, so a repeated answer can be read again), a handler called with
    the request, or an exception, which is raised (a transport failure). With no answers at
    all, a request is recorded and then fails with :class:`LookupError` (for tests that
    expect no request to be sent). Thread-safe: calls
    from several threads are recorded in the order they arrived.
    """

    def __init__(self, *answers: Answer) -> None:
        self.answers: list[Answer] = list(answers)
        self.requests: list[httpx2.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        with self._lock:
            self.requests.append(request)
            if not self.answers:
                raise LookupError(f"the Recorder has no answer for {request.method} {request.url}")
            answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx2.Response):
            return _fresh(answer)
        return answer(request)

    @property
    def last(self) -> httpx2.Request:
        """The most recent request."""
        return self.requests[-1]

    def body(self, i: int = -1) -> Any:
        """The JSON body of request ``i`` (the last by default)."""
        return json.loads(self.requests[i].content)


def _fresh(response: httpx2.Response) -> httpx2.Response:
    # a client consumes the response it is given; a copy lets the answer repeat. A response
    # whose body is still an unread stream (a deliberately truncated one) goes out as it is.
    try:
        content = response.content
    except httpx2.ResponseNotRead:
        return response
    return httpx2.Response(response.status_code, headers=response.headers, content=content)


def mock_backend(
    plugin: ModuleType | object,
    handler: Callable[[httpx2.Request], httpx2.Response],
    *,
    environ: Mapping[str, str] | None = None,
    **defaults: Any,
) -> Backend:
    """The ``plugin``'s backend with its HTTP going to ``handler`` (e.g. a :class:`Recorder`).

    Only ``plugin`` is registered (no entry points); ``environ`` replaces the process
    environment (empty by default, so no real key leaks in); ``defaults`` are endpoint
    settings for every endpoint of the backend, as for :meth:`Registry.get`.
    """
    registry = Registry(plugins=[plugin], entry_points=False,
                        transport=httpx2.MockTransport(handler), environ=dict(environ or {}))
    (name,) = registry.names()  # one plugin, one backend
    return registry.get(name, **defaults)


def openai_sse(*events: Any, done: bool = True) -> bytes:
    """An OpenAI-style server-sent events body: one ``data:`` event per item.

    Each event is JSON-encoded, except a ``str``, which is sent as it is (a malformed event
    on purpose); ``data: [DONE]`` ends the stream when ``done`` (``False`` for a truncated
    stream). Put it in a response with ``content-type: text/event-stream``.
    """
    out = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)
    return (out + ("data: [DONE]\n\n" if done else "")).encode()


class CutBody(httpx2.SyncByteStream):
    """A ``MockTransport`` response body that sends ``head`` and then breaks off, as a
    dropped connection looks to the reader: ``httpx2.Response(200, stream=CutBody(b"..."))``."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    def __iter__(self) -> Any:
        yield self.head
        raise httpx2.RemoteProtocolError("peer closed connection without sending complete body")

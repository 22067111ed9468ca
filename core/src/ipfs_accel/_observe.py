"""What happens to a call, told to observers: the interface telemetry builds on.

An :class:`Observer` is asked, as each logical call starts, for an :class:`Observation` of
it (``None``: not this one; the core then skips every later event at the cost of one
``is None`` test). The observation hears, in order: the call waiting in its endpoint's queue
and leaving it, each attempt (which endpoint, and the headers to send with it, such as W3C
``traceparent``), each retry as it is planned, each wait before an attempt and why
(``backoff``, ``retry-after``, ``pause``, ``pace``, ``shared``, ``failover``), each
attempt's end, a stream's first chunk (and each chunk, if it asks), what a stream's reader
knew at its end, and the call's end, with its result or its error: exactly once, whatever
happens.

The endpoint's own stats follow every call through the same interface
(:class:`~ipfs_accel._stats.Counted`, which passes each event on to the observers'
observation), so ``get_stats()`` and telemetry never disagree on what happened.

A pool's call is one logical call: its attempts on the members are attempts of that call,
not calls of their own. Observer methods run on the caller's thread or event loop, outside
the core's locks; an observer that raises is logged once and ignored, never the call's
failure.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._endpoint import Endpoint
    from ._exchange import Exchanger
    from ._settings import EndpointConfig
    from ._types import Call

__all__ = ["CallStart", "Observation", "Observer", "default_observers", "end_of", "held_for",
           "observe", "observe_call", "server_of"]

log = logging.getLogger("ipfs_accel")
_NOTABLE = 0.001  # a wait shorter than this is not one


class CallStart:
    """What an observer is told of a call as it starts."""

    __slots__ = ("backend", "call", "endpoint_id", "pooled", "provider", "server", "stream")

    def __init__(self, call: Call, *, backend: str, provider: str, endpoint_id: str,
                 server: tuple[str, int | None] | None, stream: bool, pooled: bool) -> None:
        self.call = call  # operation, model, params, request_id (never the key)
        self.backend = backend
        self.provider = provider  # gen_ai.provider.name (BackendInfo.provider or the name)
        self.endpoint_id = endpoint_id  # the first endpoint tried (a pool's: its first pick)
        self.server = server  # (host, port) of that endpoint
        self.stream = stream
        self.pooled = pooled


class Observation:
    """One call as an observer follows it; every method a no-op here.

    ``wants_chunks``: told each chunk of a stream (:meth:`chunk`), such as to record the
    answer; false by default, sparing every stream a call per chunk.
    """

    wants_chunks = False

    def queued(self) -> None:
        """The call waits in its endpoint's queue."""

    def dequeued(self, waited: float) -> None:
        """It left the queue after ``waited`` seconds (to run, or ending unsent)."""

    def attempt(self, endpoint_id: str, server: tuple[str, int | None] | None,
                ) -> dict[str, str] | None:
        """The next attempt starts on ``endpoint_id``; the headers to send with it
        (``None``: none)."""
        return None

    def attempt_end(self, error: BaseException | None, status: int | None = None) -> None:
        """The attempt ended: ``error`` ``None`` answered (``status``), else failed."""

    def retrying(self, seconds: float, reason: str) -> None:
        """The attempt that just failed is to be followed by another, planned ``seconds``
        from now for ``reason`` (``backoff`` or ``retry-after``); the :meth:`wait` that
        follows says how long the call really waited."""

    def wait(self, seconds: float, reason: str) -> None:
        """The call waited ``seconds`` before its next attempt went (or until it ended),
        for ``reason``."""

    def first_chunk(self) -> None:
        """A stream's first chunk reached the caller."""

    def chunk(self, chunk: Any) -> None:
        """A chunk of a stream reached the caller (only if :attr:`wants_chunks`)."""

    def streamed(self, summary: Any) -> None:
        """A stream that opened ended, read to its end or not: what its reader knew
        (usage, finish). The call's :meth:`end` follows (a pool's: once its last member's
        stream ended)."""

    def end(self, result: Any, error: BaseException | None) -> None:
        """The call ended with ``result`` (``error`` ``None``) or ``error``."""


class _Fanout(Observation):
    """Several observations of one call, each told every event; a failing one is dropped."""

    __slots__ = ("_parts", "wants_chunks")

    def __init__(self, parts: list[Observation]) -> None:
        self._parts = parts
        self.wants_chunks = any(part.wants_chunks for part in parts)

    def _each(self, name: str, *args: Any) -> list[Any]:
        out = []
        for part in list(self._parts):
            try:
                out.append(getattr(part, name)(*args))
            except Exception:  # an observer's failure is never the call's
                _dropped(part, name)
                self._parts.remove(part)
        return out

    def queued(self) -> None:
        self._each("queued")

    def dequeued(self, waited: float) -> None:
        self._each("dequeued", waited)

    def attempt(self, endpoint_id: str, server: tuple[str, int | None] | None,
                ) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        for got in self._each("attempt", endpoint_id, server):
            if got:
                headers.update(got)
        return headers or None

    def attempt_end(self, error: BaseException | None, status: int | None = None) -> None:
        self._each("attempt_end", error, status)

    def retrying(self, seconds: float, reason: str) -> None:
        self._each("retrying", seconds, reason)

    def wait(self, seconds: float, reason: str) -> None:
        self._each("wait", seconds, reason)

    def first_chunk(self) -> None:
        self._each("first_chunk")

    def chunk(self, chunk: Any) -> None:
        for part in list(self._parts):
            if part.wants_chunks:
                try:
                    part.chunk(chunk)
                except Exception:  # an observer's failure is never the call's
                    _dropped(part, "chunk")
                    self._parts.remove(part)

    def streamed(self, summary: Any) -> None:
        self._each("streamed", summary)

    def end(self, result: Any, error: BaseException | None) -> None:
        self._each("end", result, error)


_warned: set[tuple[str, str]] = set()


def _dropped(part: object, name: str) -> None:
    key = (type(part).__qualname__, name)
    if key not in _warned:
        _warned.add(key)
        log.warning("observer %s failed in %s; it no longer follows this call",
                    key[0], name, exc_info=True)


class Observer:
    """Follows calls: :meth:`start` returns an :class:`Observation` of a call, or ``None``.
    :meth:`following` answers, cheaply, whether it may follow calls at all now (``False``:
    the core does not even describe the call to it)."""

    def following(self) -> bool:
        return True

    def start(self, info: CallStart) -> Observation | None:
        return None


def server_of(config: EndpointConfig) -> tuple[str, int | None] | None:
    """The host and port of an endpoint's base URL (``server.address`` / ``server.port``;
    never its user or password)."""
    return _server(config.base_url) if config.base_url else None


@functools.lru_cache(maxsize=1024)  # a URL is parsed once, not on every call
def _server(url: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None:
        return None
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname, port if port is not None else default


def observe(observers: Sequence[Observer], info: CallStart) -> Observation | None:
    """The observation of a call by ``observers`` (``None`` when none follows it)."""
    got: list[Observation] = []
    for observer in observers:
        try:
            obs = observer.start(info)
        except Exception:  # an observer's failure is never the call's
            _dropped(observer, "start")
            continue
        if obs is not None:
            got.append(obs)
    return _Fanout(got) if got else None


def end_of(own: Observation | None, result: Any, error: BaseException | None) -> None:
    """The call ends: told to its observation, if it has one of its own (not a pool's)."""
    if own is not None:
        own.end(result, error)


def held_for(obs: Observation, res: Any, seconds: float) -> None:
    """An attempt waited ``seconds`` for its endpoint's limits before it went (``res``: its
    booking, saying what held it; none: the shared limits)."""
    if seconds >= _NOTABLE:
        held = getattr(res, "held", None)
        obs.wait(seconds, held or "shared")


def observe_call(x: Exchanger, endpoint: Endpoint, config: EndpointConfig, call: Call, *,
                 stream: bool, given: Observation | None = None, pooled: bool = False,
                 ) -> Observation | None:
    """The observation of a call starting (``given``: a pool's, of which this call is an
    attempt; ``pooled``: a pool's call, starting on its first member); ``None`` when no
    observer follows it."""
    if given is not None or not x.observers:
        return given
    observers = [o for o in x.observers if o.following()]
    if not observers:
        return None
    return observe(observers, CallStart(
        call, backend=x.backend, provider=x.provider, endpoint_id=endpoint.endpoint_id,
        server=server_of(config), stream=stream, pooled=pooled))


def default_observers() -> tuple[Observer, ...]:
    """The observers every Registry has unless told not to: OpenTelemetry's, when its API
    is installed (it does nothing until the application sets a provider)."""
    try:
        from ._otel import OtelObserver  # noqa: PLC0415 - only with the [otel] extra
    except ImportError:
        return ()
    return (OtelObserver(),)

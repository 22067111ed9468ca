"""Finding backend plugins: entry points in ``ipfs_accel.backends``, or objects passed in."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import importlib_metadata
import msgspec

from ._errors import ConfigurationError, PluginLoadError
from ._http_choice import choose_http
from ._observe import Observer, default_observers
from ._plugin import PluginHooks

if TYPE_CHECKING:  # the HTTP machinery is imported when a backend is made, not to list plugins
    import httpx2

    from ._backend import Backend
    from ._pool import Pool

__all__ = ["ENTRY_POINT_GROUP", "PluginStatus", "Registry"]

ENTRY_POINT_GROUP = "ipfs_accel.backends"


class PluginStatus(msgspec.Struct, kw_only=True, frozen=True):
    """What the registry knows of one plugin: where it comes from and whether it loads.

    ``loaded`` is false until the plugin is imported (listing never imports);
    ``error`` says why a plugin failed to import or validate.
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    target: str | None = None
    loaded: bool = False
    error: str | None = None


class _Entry:
    __slots__ = ("dist", "entry_point", "error", "hooks", "name", "version")

    def __init__(self, name: str) -> None:
        self.name = name
        self.entry_point: importlib_metadata.EntryPoint | None = None
        self.dist: str | None = None
        self.version: str | None = None
        self.hooks: PluginHooks | None = None
        self.error: PluginLoadError | None = None


class Registry:
    """The installed backends, found lazily through the ``ipfs_accel.backends`` entry points.

    ``names()`` and ``status()`` read package metadata only; ``get(name)`` imports and
    validates one plugin (once) and returns its :class:`Backend` (one per name). A plugin that fails
    to import or validate is reported by ``status()``/``errors()`` and raises
    :class:`PluginLoadError` from ``get``; the others are unaffected.

    ``plugins`` registers plugin modules or objects directly (tests, embedders); with
    ``entry_points=False`` only those are seen. ``transport``/``async_transport`` replace
    the HTTP transport of every backend this registry makes (``httpx2.MockTransport``).
    ``http`` chooses the library of async calls: ``"httpx2"`` (the default) or ``"aiohttp"``
    (``pip install 'ipfs-accel-core[aiohttp]'``; less CPU per call); when not given, the
    environment variable ``IPFS_ACCEL_HTTP`` of the process chooses (``environ`` does not).
    Anything else is a :class:`ConfigurationError`, and so is aiohttp not installed: here
    for ``http="aiohttp"``, at the first async call when the variable chose it. A
    ``transport``/``async_transport`` keeps async calls on httpx2; sync calls always are.
    ``shared`` (or the environment variable ``IPFS_ACCEL_SHARED``), a ``redis://`` URL, shares
    every endpoint's limits (``rpm``, ``tpm``, pauses, ``max_concurrent_requests``) with the
    other processes that name the endpoint alike (``pip install 'ipfs-accel-core[redis]'``).
    ``observers`` follow every call of every backend this registry makes (see
    :class:`Observer`); with OpenTelemetry's API installed (``ipfs-accel-core[otel]``), one
    that traces and measures calls once the application sets a tracer or meter provider is
    always among them (``telemetry=False``: not).
    """

    def __init__(
        self,
        *,
        plugins: Iterable[object] = (),
        entry_points: bool = True,
        transport: httpx2.BaseTransport | None = None,
        async_transport: httpx2.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        shared: str | None = None,
        observers: Iterable[Observer] = (),
        telemetry: bool = True,
        http: str | None = None,
    ) -> None:
        choose_http(http)  # a wrong choice fails here, before any call
        self._http = http
        self._use_entry_points = entry_points
        self._observers = (*observers, *(default_observers() if telemetry else ()))
        url = shared if shared is not None else (
            environ if environ is not None else os.environ).get("IPFS_ACCEL_SHARED")
        self._shared_url = url or None
        self._shared: Any = None  # made on first use (it imports the Redis client)
        self._shared_lock = threading.Lock()
        self._transport = transport
        self._async_transport = async_transport
        self._environ = environ
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] | None = None
        self._direct: dict[str, _Entry] = {}
        self._backends: dict[str, tuple[Backend, dict[str, Any]]] = {}
        for plugin in plugins:
            hooks = PluginHooks(plugin)
            entry = _Entry(hooks.info.name)
            entry.hooks = hooks
            if entry.name in self._direct:
                raise ConfigurationError(f"two plugins passed for backend {entry.name!r}")
            self._direct[entry.name] = entry

    def _scan(self) -> dict[str, _Entry]:
        entries = self._entries
        if entries is not None:
            return entries
        with self._lock:
            if self._entries is not None:
                return self._entries
            found: dict[str, _Entry] = {}
            if self._use_entry_points:
                for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
                    if ep.name in found:  # the first installed wins, as importlib does
                        continue
                    entry = _Entry(ep.name)
                    entry.entry_point = ep
                    if ep.dist is not None:
                        entry.dist = ep.dist.name
                        entry.version = ep.dist.version
                    found[ep.name] = entry
            found.update(self._direct)
            self._entries = found
            return found

    def names(self) -> list[str]:
        """The backend names, sorted. Imports no plugin code."""
        return sorted(self._scan())

    def status(self) -> list[PluginStatus]:
        """Every plugin's origin and state, sorted by name (imports nothing new)."""
        out = []
        for name, entry in sorted(self._scan().items()):
            ep = entry.entry_point
            out.append(
                PluginStatus(
                    name=name,
                    distribution=entry.dist,
                    version=entry.version,
                    target=ep.value if ep is not None else None,
                    loaded=entry.hooks is not None,
                    error=str(entry.error) if entry.error else None,
                )
            )
        return out

    def load_all(self) -> list[PluginStatus]:
        """Import and validate every plugin; return their status (broken ones with errors)."""
        for name in self.names():
            with contextlib.suppress(PluginLoadError):
                self.hooks(name)
        return self.status()

    def errors(self) -> dict[str, PluginLoadError]:
        """Plugins that failed to load so far, by name."""
        return {n: e.error for n, e in self._scan().items() if e.error is not None}

    def hooks(self, name: str) -> PluginHooks:
        """The validated hooks of plugin ``name``, importing it on first use."""
        entries = self._scan()
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none installed"
            raise ConfigurationError(f"unknown backend {name!r} (known: {known})")
        if entry.hooks is not None:
            return entry.hooks
        if entry.error is not None:
            raise entry.error
        with self._lock:
            if entry.hooks is None and entry.error is None:
                self._load(entry)
        return self._loaded(entry)

    @staticmethod
    def _loaded(entry: _Entry) -> PluginHooks:
        if entry.error is not None:
            raise entry.error
        assert entry.hooks is not None
        return entry.hooks

    @staticmethod
    def _load(entry: _Entry) -> None:
        ep = entry.entry_point
        assert ep is not None
        where = f" (distribution {entry.dist})" if entry.dist else ""
        try:
            plugin = ep.load()
        except Exception as exc:
            error = PluginLoadError(
                f"backend {entry.name!r}{where} failed to import {ep.value!r}: "
                f"{type(exc).__name__}: {exc}",
                name=entry.name,
                distribution=entry.dist,
            )
            error.__cause__ = exc
            entry.error = error
            return
        try:
            entry.hooks = PluginHooks(plugin, name=entry.name, dist=entry.dist)
        except PluginLoadError as exc:
            entry.error = exc

    def get(self, name: str, **defaults: Any) -> Backend:
        """The :class:`Backend` for plugin ``name``: one per name per Registry.

        The first ``get(name, **defaults)`` makes it; ``defaults`` apply to all its
        endpoints (``api_key``, ``base_url``, ``max_retries``...), validated now: an
        unknown or invalid one raises :class:`ConfigurationError`. Later calls return the
        same Backend (so a pool member named ``"openai"`` is this Backend's endpoint);
        a later call with other defaults raises :class:`ConfigurationError`, since the
        Backend it would return does not have them: set per-endpoint settings with
        ``create_endpoint``, or make a separate Backend with :meth:`fresh`.
        """
        from ._backend import hide_key  # noqa: PLC0415 - see the TYPE_CHECKING import

        # first: a refused setting's traceback must not show the raw key among our locals
        defaults = hide_key(defaults)
        self.hooks(name)
        with self._lock:
            made = self._backends.get(name)
            if made is not None:
                backend, given = made
                if defaults and defaults != given:
                    raise ConfigurationError(
                        f"backend {name!r} was already made by this Registry with other "
                        "defaults; set per-endpoint settings with create_endpoint(), or "
                        "make a separate Backend with Registry.fresh(name, **defaults)")
                return backend
            backend = self.fresh(name, **defaults)
            self._backends[name] = (backend, defaults)
            return backend

    def fresh(self, name: str, **defaults: Any) -> Backend:
        """A new :class:`Backend` for plugin ``name``, apart from the one :meth:`get`
        returns: its own endpoints, stats, connections and ``defaults`` (validated now).
        Pools that name their members by backend name use :meth:`get`'s."""
        from ._backend import Backend, hide_key  # noqa: PLC0415 - see the TYPE_CHECKING import
        from ._http import HTTP  # noqa: PLC0415

        defaults = hide_key(defaults)
        hooks = self.hooks(name)
        http = HTTP(transport=self._transport, async_transport=self._async_transport,
                    http=self._http)
        return Backend(hooks, http=http, defaults=defaults, environ=self._environ,
                       shared=self._shared_state(), observers=self._observers)

    def _shared_state(self) -> Any:
        """The Redis connection every backend of this registry shares limits through."""
        if self._shared_url is None:
            return None
        with self._shared_lock:  # get() holds self._lock while it makes a backend
            if self._shared is None:
                from ._shared import Shared  # noqa: PLC0415 - only shared limits need Redis

                self._shared = Shared(self._shared_url)
            return self._shared

    def pool(
        self, members: Iterable[tuple[Any, ...]] = (), *, strategy: str = "least-busy",
        **options: Any,
    ) -> Pool:
        """A :class:`Pool` of endpoints: each member is ``(backend, endpoint_id)`` or
        ``(backend, endpoint_id, weight)``, the backend given by name (this Registry's
        Backend for it) or as a Backend. ``strategy``: ``least-busy`` (default),
        ``round-robin``, ``weighted``, ``latency`` or ``ordered``; ``options`` are
        :class:`~ipfs_accel.PoolSettings` (``max_retries``, ``deadline``, ``max_wait``...).
        """
        from ._pool import Pool  # noqa: PLC0415 - see the TYPE_CHECKING import

        return Pool(members, strategy=strategy, resolve=self.get, **options)

"""A backend: one plugin, its endpoints, and the operations users call."""

from __future__ import annotations

import os
import random
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._batch_submit import BatchMethods
from ._call import Engine
from ._chatstream import AsyncChatStream, ChatStream
from ._endpoint import Endpoint
from ._errors import ConfigurationError, UnsupportedOperationError
from ._http import HTTP
from ._plugin import PluginHooks
from ._secrets import Secret
from ._settings import EndpointConfig, build_settings, resolve_config
from ._stats import Stats
from ._types import (
    BackendInfo,
    Call,
    ChatResult,
    EmbedResult,
    InvokeResult,
    Operation,
)
from .tools import check_features, check_needs

if TYPE_CHECKING:
    from ._observe import Observer
    from ._shared import Shared

__all__ = ["Backend", "hide_key", "new_request_id"]

# the operations whose calls the core reads for tools, response formats and images (an
# invoke operation's parameters are the plugin's own)
_CORE_OPERATIONS = frozenset(op.value for op in Operation)

# Request IDs need to be unique, not secret: a generator seeded from the OS (and again in
# a forked child, so two processes never share a sequence) gives 96 bits in ~0.2 us, where
# secrets.token_hex asks the OS each time (~1.5 us, a visible share of a fast call).
_ids = random.Random(secrets.randbits(256))  # noqa: S311 - unique, not secret
_id_bits = _ids.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _ids.seed(secrets.randbits(256)))


def hide_key(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of keyword settings with a str ``api_key`` wrapped in :class:`Secret`.

    Rebinding the caller's local to it keeps the raw key out of frame locals, so a traceback
    printed with them (Sentry, ``pytest -l``) of a refused setting does not show it.
    """
    out = dict(settings)
    if isinstance(out.get("api_key"), str):
        out["api_key"] = Secret(out["api_key"])
    return out


def new_request_id() -> str:
    """A fresh request ID: ``req_`` and 24 random hex digits."""
    return f"req_{_id_bits(96):024x}"


class Backend(BatchMethods):
    """One backend (a plugin) with its endpoints. Get one from ``Registry().get(name)``.

    Every operation takes ``endpoint_id=`` (the default endpoint when omitted: the first
    one created, or one made from the backend defaults on first use) and ``request_id=``
    (generated when omitted). Sync methods block the calling thread; ``a``-prefixed
    methods run on the caller's event loop. Both share each endpoint's queue and stats.
    """

    def __init__(
        self,
        hooks: PluginHooks,
        *,
        http: HTTP | None = None,
        defaults: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        shared: Shared | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self._hooks = hooks
        self._shared = shared
        self.info: BackendInfo = hooks.info
        self.name = hooks.info.name
        self._http = http or HTTP()
        self._engine = Engine(hooks, self._http, observers)
        self._environ = os.environ if environ is None else environ
        self._defaults = defaults = hide_key(defaults or {})
        build_settings(self._defaults, options_type=self.info.options, backend=self.name)
        self._endpoints: dict[str, Endpoint] = {}
        self._values: dict[str, dict[str, Any]] = {}  # as given, for update_endpoint
        self._default_id: str | None = None
        self._lock = threading.Lock()
        self._counter = 0

    def __repr__(self) -> str:
        return f"<Backend {self.name} endpoints={len(self._endpoints)}>"

    # -- endpoints ---------------------------------------------------------------------

    def _config(self, endpoint_id: str, values: Mapping[str, Any]) -> EndpointConfig:
        return resolve_config(self.info, endpoint_id, {**self._defaults, **values}, self._environ)

    def create_endpoint(self, endpoint_id: str | None = None, **settings: Any) -> str:
        """Add an endpoint with these settings (over the backend defaults); return its ID.

        Raises :class:`ConfigurationError` naming any unknown or invalid setting, and
        when the ID is taken.
        """
        settings = hide_key(settings)
        with self._lock:
            return self._create_locked(endpoint_id, settings)

    def _create_locked(self, endpoint_id: str | None, settings: Mapping[str, Any]) -> str:
        if endpoint_id is None:
            self._counter += 1
            endpoint_id = f"{self.name}-{self._counter}"
            while endpoint_id in self._endpoints:
                self._counter += 1
                endpoint_id = f"{self.name}-{self._counter}"
        elif endpoint_id in self._endpoints:
            raise ConfigurationError(f"endpoint {endpoint_id!r} already exists on {self.name!r}")
        if not isinstance(endpoint_id, str) or not endpoint_id:
            raise ConfigurationError("endpoint_id must be a non-empty string")
        config = self._config(endpoint_id, settings)
        shared = self._shared
        self._endpoints[endpoint_id] = Endpoint(
            config, shared.endpoint(self.name, config)
            if shared is not None and config.settings.shared else None)
        self._values[endpoint_id] = dict(settings)
        if self._default_id is None:
            self._default_id = endpoint_id
        return endpoint_id

    def get_endpoint(self, endpoint_id: str | None = None) -> EndpointConfig:
        """The endpoint's resolved configuration (its key shows as ``Secret('********')``)."""
        return self._endpoint(endpoint_id).config

    def update_endpoint(self, endpoint_id: str, **settings: Any) -> None:
        """Change some settings of an endpoint; calls already running finish as they were."""
        settings = hide_key(settings)
        endpoint = self._endpoint(endpoint_id)
        values = {**self._values[endpoint_id], **settings}
        endpoint.reconfigure(self._config(endpoint_id, values))
        self._values[endpoint_id] = values

    def remove_endpoint(self, endpoint_id: str) -> None:
        """Remove an endpoint. Calls already admitted to it still finish."""
        with self._lock:
            self._endpoint(endpoint_id)
            del self._endpoints[endpoint_id]
            del self._values[endpoint_id]
            if self._default_id == endpoint_id:
                self._default_id = next(iter(self._endpoints), None)

    def endpoints(self) -> list[str]:
        """The IDs of this backend's endpoints, in creation order."""
        return list(self._endpoints)

    def _endpoint(self, endpoint_id: str | None) -> Endpoint:
        if endpoint_id is None:
            endpoint_id = self._default_id
            if endpoint_id is None:
                with self._lock:  # first use from several threads at once makes one default
                    if self._default_id is None:
                        self._create_locked("default", {})
                    endpoint_id = self._default_id
                assert endpoint_id is not None
        try:
            return self._endpoints[endpoint_id]
        except KeyError:
            raise ConfigurationError(
                f"no endpoint {endpoint_id!r} on backend {self.name!r}"
            ) from None

    # -- stats -------------------------------------------------------------------------

    def get_stats(self, endpoint_id: str | None = None) -> Stats:
        """One endpoint's stats, or (no ID) the sum over all endpoints with ``endpoints_count``."""
        if endpoint_id is not None:
            return self._endpoint(endpoint_id).snapshot()
        return Stats.sum(e.snapshot() for e in list(self._endpoints.values()))

    def reset_stats(self, endpoint_id: str | None = None) -> None:
        """Zero the counters of one endpoint, or of all."""
        targets = [self._endpoint(endpoint_id)] if endpoint_id else list(self._endpoints.values())
        for endpoint in targets:
            endpoint.reset_stats()

    # -- operations --------------------------------------------------------------------

    def _prepare(
        self,
        operation: str,
        endpoint_id: str | None,
        request_id: str | None,
        model: str | None,
        params: dict[str, Any],
        *,
        messages: Any = None,
        prompt: str | None = None,
        inputs: Any = None,
        needs: frozenset[str] | None = None,
    ) -> tuple[Endpoint, Call]:
        """The endpoint and the call, checked. ``needs``: what the call needs (tools, a
        response format, images), its shape already checked once for all its attempts (a
        pool's call): only this backend's features are checked against it."""
        if operation not in self.info.operations:
            offered = ", ".join(sorted(self.info.operations)) or "none"
            raise UnsupportedOperationError(
                f"backend {self.name!r} does not support {operation!r} (it offers: {offered})"
            )
        endpoint = self._endpoint(endpoint_id)
        if messages is not None and not isinstance(messages, list):
            raise ConfigurationError("messages must be a list of {'role', 'content'} dicts")
        if operation in _CORE_OPERATIONS:
            if needs is None:
                check_features(self.name, operation, self.info.features, params, messages)
            else:
                check_needs(self.name, operation, self.info.features, needs)
        if inputs is not None:
            if isinstance(inputs, str):
                inputs = [inputs]
            elif not (isinstance(inputs, list) and all(isinstance(i, str) for i in inputs)):
                raise ConfigurationError("inputs must be a string or a list of strings")
        named = model or endpoint.config.settings.model
        call = Call(
            operation=operation,
            model=named or self.info.default_models.get(operation) or endpoint.config.model,
            model_named=bool(named),
            messages=messages,
            prompt=prompt,
            inputs=inputs,
            params=params,
            request_id=request_id or new_request_id(),
        )
        return endpoint, call

    def chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        endpoint_id: str | None = None, request_id: str | None = None, **params: Any,
    ) -> ChatResult:
        """Chat completion for OpenAI-style ``messages``."""
        endpoint, call = self._prepare(
            Operation.CHAT.value, endpoint_id, request_id, model, params, messages=messages
        )
        return self._engine.call(endpoint, call, ChatResult)

    async def achat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        endpoint_id: str | None = None, request_id: str | None = None, **params: Any,
    ) -> ChatResult:
        """Async :meth:`chat`."""
        endpoint, call = self._prepare(
            Operation.CHAT.value, endpoint_id, request_id, model, params, messages=messages
        )
        return await self._engine.acall(endpoint, call, ChatResult)

    def generate(
        self, prompt: str, *, model: str | None = None, endpoint_id: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> ChatResult:
        """Text completion of a raw ``prompt``."""
        endpoint, call = self._prepare(
            Operation.GENERATE.value, endpoint_id, request_id, model, params, prompt=prompt
        )
        return self._engine.call(endpoint, call, ChatResult)

    async def agenerate(
        self, prompt: str, *, model: str | None = None, endpoint_id: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> ChatResult:
        """Async :meth:`generate`."""
        endpoint, call = self._prepare(
            Operation.GENERATE.value, endpoint_id, request_id, model, params, prompt=prompt
        )
        return await self._engine.acall(endpoint, call, ChatResult)

    def embed(
        self, inputs: str | list[str], *, model: str | None = None,
        endpoint_id: str | None = None, request_id: str | None = None, **params: Any,
    ) -> EmbedResult:
        """Embeddings: one vector per input, in input order."""
        endpoint, call = self._prepare(
            Operation.EMBED.value, endpoint_id, request_id, model, params, inputs=inputs
        )
        return self._engine.call(endpoint, call, EmbedResult)

    async def aembed(
        self, inputs: str | list[str], *, model: str | None = None,
        endpoint_id: str | None = None, request_id: str | None = None, **params: Any,
    ) -> EmbedResult:
        """Async :meth:`embed`."""
        endpoint, call = self._prepare(
            Operation.EMBED.value, endpoint_id, request_id, model, params, inputs=inputs
        )
        return await self._engine.acall(endpoint, call, EmbedResult)

    def stream_chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        endpoint_id: str | None = None, request_id: str | None = None, **params: Any,
    ) -> ChatStream:
        """Stream a chat reply: chunks with text ``delta``; the last has ``done`` and usage.
        After the stream, its ``result`` is the whole answer (a :class:`ChatResult`).

        The endpoint slot is held until the stream is consumed or closed.
        """
        endpoint, call = self._prepare(
            Operation.STREAM_CHAT.value, endpoint_id, request_id, model, params, messages=messages
        )
        return ChatStream(self._engine.stream(endpoint, call))

    def astream_chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None,
        endpoint_id: str | None = None, request_id: str | None = None, **params: Any,
    ) -> AsyncChatStream:
        """Async :meth:`stream_chat` (``async for chunk in backend.astream_chat(...)``)."""
        endpoint, call = self._prepare(
            Operation.STREAM_CHAT.value, endpoint_id, request_id, model, params, messages=messages
        )
        return AsyncChatStream(self._engine.astream(endpoint, call))

    def stream_generate(
        self, prompt: str, *, model: str | None = None, endpoint_id: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> ChatStream:
        """Stream a completion of a raw ``prompt``."""
        endpoint, call = self._prepare(
            Operation.STREAM_GENERATE.value, endpoint_id, request_id, model, params, prompt=prompt
        )
        return ChatStream(self._engine.stream(endpoint, call))

    def astream_generate(
        self, prompt: str, *, model: str | None = None, endpoint_id: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> AsyncChatStream:
        """Async :meth:`stream_generate`."""
        endpoint, call = self._prepare(
            Operation.STREAM_GENERATE.value, endpoint_id, request_id, model, params, prompt=prompt
        )
        return AsyncChatStream(self._engine.astream(endpoint, call))

    def invoke(
        self, operation: str, *, model: str | None = None, endpoint_id: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> InvokeResult:
        """A backend-specific operation (``rerank``, ``infer``, ``list_models``...).

        ``backend.info.operations`` lists what the backend offers.
        """
        endpoint, call = self._prepare(operation, endpoint_id, request_id, model, params)
        return self._engine.call(endpoint, call, InvokeResult)

    async def ainvoke(
        self, operation: str, *, model: str | None = None, endpoint_id: str | None = None,
        request_id: str | None = None, **params: Any,
    ) -> InvokeResult:
        """Async :meth:`invoke`."""
        endpoint, call = self._prepare(operation, endpoint_id, request_id, model, params)
        return await self._engine.acall(endpoint, call, InvokeResult)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections of this backend's sync calls (``chat``, ``stream_chat``...).

        Async calls keep their connections: each event loop has its own, closed by
        :meth:`aclose` on that loop, or when the loop ends under ``asyncio.run``. A sync call
        made after ``close`` opens new connections.
        """
        self._http.close()

    async def aclose(self) -> None:
        """Close the HTTP connections of the running event loop's async calls.

        Sync calls (perhaps running in other threads) and other loops keep theirs; use
        :meth:`close` for the sync ones. An async call made after ``aclose`` opens new ones.
        """
        await self._http.aclose()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


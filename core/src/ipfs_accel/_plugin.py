"""One validated plugin behind a typed facade: the only way the core calls hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from . import _hookspecs
from ._batch_types import BATCH_OPERATION, BatchOutcome
from ._classify import default_classification
from ._errors import ConfigurationError, PluginLoadError
from ._types import BackendInfo, Call, Classification, Exchange, Failure, RateLimits, Usage

if TYPE_CHECKING:
    from ._settings import EndpointConfig
    from .testing import Case

__all__ = ["PluginHooks", "make_plugin_manager"]

_REQUIRED = ("backend_info", "send")


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with the ipfs-accel hook specs; no global state."""
    pm = pluggy.PluginManager(_hookspecs.PROJECT)
    pm.add_hookspecs(_hookspecs)
    return pm


def _direct(pm: pluggy.PluginManager, name: str) -> Callable[..., Any] | None:
    """The single implementation of hook ``name`` as a plain function, or ``None``.

    Each backend's manager holds exactly one plugin, so calling the function directly is
    what pluggy would do, minus its per-call bookkeeping; wrappers force the pluggy path.
    """
    caller = getattr(pm.hook, name)
    impls = caller.get_hookimpls()
    if not impls:
        return None
    if len(impls) == 1 and not (impls[0].hookwrapper or impls[0].wrapper):
        function: Callable[..., Any] = impls[0].function
        return function
    return caller  # type: ignore[no-any-return]  # pluggy's HookCaller is untyped here


class PluginHooks:
    """The hooks of one backend plugin, validated and typed.

    Raises :class:`PluginLoadError` if the object is not a valid plugin: unknown hooks or
    arguments (pluggy's ``check_pending`` and signature checks), a required hook missing,
    or a ``backend_info`` that is not a :class:`BackendInfo`.
    """

    __slots__ = ("_batch", "_batch_result", "_case", "_classify", "_parse_usage", "_rate_limits",
                 "_send", "info", "plugin", "pm")

    def __init__(self, plugin: object, *, name: str | None = None, dist: str | None = None):
        label: str = name or str(getattr(plugin, "__name__", None) or repr(plugin))
        pm = make_plugin_manager()
        try:
            pm.register(plugin, name=label)
            pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginLoadError(
                f"plugin {label!r} does not validate: {exc}", name=label, distribution=dist
            ) from exc
        for hook in _REQUIRED:
            if not getattr(pm.hook, hook).get_hookimpls():
                raise PluginLoadError(
                    f"plugin {label!r} does not implement the required hook {hook!r}",
                    name=label,
                    distribution=dist,
                )
        try:
            info = pm.hook.backend_info()
        except Exception as exc:
            raise PluginLoadError(
                f"plugin {label!r}: backend_info() raised {type(exc).__name__}: {exc}",
                name=label,
                distribution=dist,
            ) from exc
        if not isinstance(info, BackendInfo):
            raise PluginLoadError(
                f"plugin {label!r}: backend_info() must return BackendInfo, got {info!r}",
                name=label,
                distribution=dist,
            )
        if name is not None and info.name != name:
            raise PluginLoadError(
                f"entry point {name!r} loads a plugin that calls itself {info.name!r}",
                name=name,
                distribution=dist,
            )
        self.plugin = plugin
        self.pm = pm
        self.info = info
        send = _direct(pm, "send")
        assert send is not None
        self._send = send
        self._parse_usage = _direct(pm, "parse_usage")
        self._classify = _direct(pm, "classify_error")
        self._case = _direct(pm, "conformance_case")
        self._rate_limits = _direct(pm, "parse_rate_limits")
        self._batch = _direct(pm, "batch_exchange")
        self._batch_result = _direct(pm, "batch_result")

    @property
    def reads_rate_limits(self) -> bool:
        """Whether the plugin implements ``parse_rate_limits``."""
        return self._rate_limits is not None

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        """The plugin's reading of a response's rate-limit headers; ``None`` if it has no
        such hook, finds nothing, or fails (a broken parser never fails a call)."""
        if self._rate_limits is None:
            return None
        try:
            result = self._rate_limits(headers=headers)
        except Exception:
            return None
        return result if isinstance(result, RateLimits) else None

    @property
    def has_batches(self) -> bool:
        """Whether the plugin declares batch limits and implements both batch hooks."""
        return (self.info.batch is not None and self._batch is not None
                and self._batch_result is not None)

    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        """The plugin's exchange for ``call`` (a batch's step, operation ``batch``, from its
        ``batch_exchange`` hook); a wrong answer is a configuration error."""
        if call.operation == BATCH_OPERATION:
            exchange = self._batch(step=call.params["step"], endpoint=endpoint) if (
                self._batch is not None) else None
        else:
            exchange = self._send(call=call, endpoint=endpoint)
        if not isinstance(exchange, Exchange):
            raise ConfigurationError(
                f"backend {self.info.name!r}: send() returned {type(exchange).__name__}, "
                "not an Exchange"
            )
        return exchange

    def parse_usage(self, operation: str, data: Any) -> Usage | None:
        """Usage from a body or event; ``None`` if the plugin has no such hook or finds none,
        and for a batch step's answer (a batch's usage is counted with each result read)."""
        if self._parse_usage is None or data is None or operation == BATCH_OPERATION:
            return None
        result = self._parse_usage(operation=operation, data=data)
        return result if isinstance(result, Usage) else None

    def batch_result(self, data: Any, operation: str) -> BatchOutcome:
        """One result of a batch as the plugin reads it; anything else is a
        :class:`ResponseError`-worthy ``ValueError``."""
        assert self._batch_result is not None
        out = self._batch_result(data=data, operation=operation)
        if not isinstance(out, BatchOutcome):
            raise ValueError(f"batch_result() returned {type(out).__name__}, not a BatchOutcome")
        return out

    def classify_error(self, failure: Failure) -> Classification:
        """The plugin's classification, falling back to the default; never raises."""
        if self._classify is not None:
            try:
                result = self._classify(failure=failure)
            except Exception:  # a broken classifier must not lose the original error
                result = None
            if isinstance(result, Classification):
                return result
        return default_classification(failure)

    def conformance_case(self) -> Case | None:
        """The plugin's conformance case, or ``None`` when it offers none (optional hook)."""
        if self._case is None:
            return None
        return self._case()  # type: ignore[no-any-return]  # pluggy's hook callers are untyped

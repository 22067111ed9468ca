"""Endpoint settings: one typed Struct, validated when the endpoint is created."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from ._errors import ConfigurationError
from ._types import Secret

__all__ = ["EndpointConfig", "EndpointSettings", "build_settings"]

_T = TypeVar("_T")


class EndpointSettings(msgspec.Struct, kw_only=True, frozen=True):
    """How one endpoint is reached and how calls to it are queued and retried.

    Times are in seconds. ``timeout`` bounds one attempt; ``deadline`` bounds the whole
    call, from admission through queue wait, attempts and backoff (``None``: no deadline).
    Retry delay n (1-based) is ``min(initial_retry_delay * backoff_factor**(n-1),
    max_retry_delay)`` plus up to ``retry_jitter`` of that (never above
    ``max_retry_delay``), unless the server's Retry-After asks for longer.
    """

    base_url: str | None = None
    api_key: Secret | None = None
    model: str | None = None
    timeout: float = 60.0
    deadline: float | None = None
    max_retries: int = 5
    initial_retry_delay: float = 1.0
    backoff_factor: float = 2.0
    max_retry_delay: float = 60.0
    retry_jitter: float = 0.1
    honor_retry_after: bool = True
    queue_size: int = 100
    max_concurrent_requests: int = 5
    headers: dict[str, str] = {}

    def __post_init__(self) -> None:
        _check(self)


def _bad(name: str, value: object, need: str) -> ConfigurationError:
    return ConfigurationError(f"setting {name!r} must be {need}, got {value!r}")


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def _check(s: EndpointSettings) -> None:
    for name in ("timeout", "initial_retry_delay", "max_retry_delay"):
        value = getattr(s, name)
        if not (value > 0 and _finite(value)):
            raise _bad(name, value, "a positive number of seconds")
    if s.deadline is not None and not (s.deadline > 0 and _finite(s.deadline)):
        raise _bad("deadline", s.deadline, "a positive number of seconds or None")
    if not (s.backoff_factor >= 1 and _finite(s.backoff_factor)):
        raise _bad("backoff_factor", s.backoff_factor, "a number >= 1")
    if not (0 <= s.retry_jitter <= 1):
        raise _bad("retry_jitter", s.retry_jitter, "a fraction between 0 and 1")
    if s.max_retries < 0:
        raise _bad("max_retries", s.max_retries, "an integer >= 0")
    if s.queue_size < 0:
        raise _bad("queue_size", s.queue_size, "an integer >= 0")
    if s.max_concurrent_requests < 1:
        raise _bad("max_concurrent_requests", s.max_concurrent_requests, "an integer >= 1")
    if s.base_url is not None and not s.base_url.startswith(("http://", "https://")):
        raise _bad("base_url", s.base_url, "an http:// or https:// URL")


_FIELDS = frozenset(EndpointSettings.__struct_fields__)


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise TypeError("an API key must be a str")  # never echo the value: it may be a key
    raise NotImplementedError


def build_settings(
    values: Mapping[str, Any],
    *,
    options_type: type[msgspec.Struct] | None,
    backend: str,
) -> tuple[EndpointSettings, msgspec.Struct | None]:
    """Split keyword settings into the core's settings and the plugin's options, validated.

    An unknown key, a value of the wrong type or a value out of range raises
    :class:`ConfigurationError` naming the setting.
    """
    option_fields = frozenset(options_type.__struct_fields__) if options_type else frozenset()
    core: dict[str, Any] = {}
    opts: dict[str, Any] = {}
    for key, value in values.items():
        if key in _FIELDS:
            core[key] = value
        elif key in option_fields:
            opts[key] = value
        else:
            known = ", ".join(sorted(_FIELDS | option_fields))
            raise ConfigurationError(
                f"unknown setting {key!r} for backend {backend!r}; known settings: {known}"
            )
    if isinstance(core.get("api_key"), str):
        core["api_key"] = Secret(core["api_key"])
    settings = _convert(EndpointSettings, core, backend)
    options = _convert(options_type, opts, backend) if options_type is not None else None
    return settings, options


def _convert(type_: type[_T], values: dict[str, Any], backend: str) -> _T:
    try:
        return msgspec.convert(values, type_, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        # msgspec names the field as "at `$.name`"; the secret itself is never in the text
        raise ConfigurationError(f"invalid setting for backend {backend!r}: {exc}") from None


class EndpointConfig(msgspec.Struct, kw_only=True, frozen=True):
    """What a plugin's ``send`` hook sees of the endpoint it is sending through.

    ``api_key`` is already resolved (endpoint, backend default, env vars) and may be
    ``None``; ``options`` is the plugin's own options Struct (or ``None``).
    """

    endpoint_id: str
    base_url: str
    api_key: Secret | None
    model: str | None
    options: Any
    settings: EndpointSettings

    def scrub(self, text: str) -> str:
        """``text`` with this endpoint's key masked: for messages that quote a server's words."""
        key = self.api_key.reveal() if self.api_key is not None else ""
        return text.replace(key, "********") if key and key in text else text

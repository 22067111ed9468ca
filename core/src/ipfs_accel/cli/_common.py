"""What every command shares: one-line errors, opening a backend with its endpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._backend import Backend
from .._errors import (
    AuthenticationError,
    BadRequestError,
    CallError,
    ConfigurationError,
    ContextLengthError,
    NotFoundError,
    OverloadedError,
    PluginLoadError,
    QueueFullError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
    TransportError,
    UnsupportedOperationError,
)
from .._registry import Registry

__all__ = ["CliError", "describe_error", "exit_code_for", "open_backend"]


class CliError(Exception):
    """A failure the command reports as one line (``message``, then what to do)."""

    def __init__(self, message: str, *, hint: str | None = None, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


def _hint(exc: BaseException, env: str | None) -> str | None:
    key = f"check the key in ${env}" if env else "check the API key (or --api-key-env)"
    hints: list[tuple[type[BaseException], str]] = [
        (AuthenticationError, key),
        (QuotaExceededError, "the account is out of quota or credit: check its billing"),
        (RateLimitError, "rate limited after all retries: wait, lower --concurrency or "
                         "raise --max-retries"),
        (OverloadedError, "the server is overloaded: try again later or raise --max-retries"),
        (ContextLengthError, "the input is too long for the model: shorten it"),
        (BadRequestError, "the server rejected the request: check the model and parameters"),
        (NotFoundError, "check the model name (-m) and --endpoint-url"),
        (ServerError, "the server failed: try again later or raise --max-retries"),
        (TimeoutError, "no answer in time: raise --timeout or check the server"),
        (StreamInterruptedError, "the stream broke off: try again"),
        (TransportError, "could not reach the server: is it running? check --endpoint-url"),
        (ResponseError, "the server's answer was not what this backend expects: "
                        "check --endpoint-url points at the right kind of server"),
        (QueueFullError, "too many calls at once: lower --concurrency"),
        (PluginLoadError, "reinstall the plugin, or see `ipfs-accel backends`"),
        (UnsupportedOperationError, "see `ipfs-accel backends` for what each backend offers"),
    ]
    for kind, text in hints:
        if isinstance(exc, kind):
            return text
    if isinstance(exc, ConfigurationError) and "model" in str(exc):
        return "name one with -m/--model"
    return None


def describe_error(
    exc: BaseException,
    *,
    action: str = "call",
    base_urls: Mapping[str, str] | None = None,
    env: str | None = None,
) -> str:
    """One line: what failed, where (backend, endpoint, URL, request ID) and what to do.

    Never contains an API key: :class:`CallError` messages are scrubbed by the core and the
    key is not otherwise known here.
    """
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, CallError):
        where = []
        if exc.backend:
            where.append(f"backend {exc.backend}")
        if exc.endpoint_id:
            url = (base_urls or {}).get(exc.endpoint_id)
            where.append(f"endpoint {exc.endpoint_id}" + (f" ({url})" if url else ""))
        if exc.status is not None:
            where.append(f"status {exc.status}")
        if exc.request_id:
            where.append(f"request {exc.request_id}")
        if exc.attempts > 1:
            where.append(f"after {exc.attempts} attempts")
        detail = exc.message or type(exc).__name__
        line = f"{action} failed: {type(exc).__name__}: {detail}"
        if where:
            line += f" [{', '.join(where)}]"
    elif isinstance(exc, ConfigurationError) and action == "call":
        line = str(exc)  # raised before anything was sent: the message says it all
    else:
        line = f"{action} failed: {exc}"
    hint = _hint(exc, env)
    return f"{line}; {hint}" if hint else line


def exit_code_for(exc: BaseException) -> int:
    """2 for wrong usage or configuration, 1 for a call that failed."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, ConfigurationError):
        return 2
    return 1


def _key_from_env(backend: Backend, api_key_env: str | None) -> tuple[str | None, str | None]:
    """The key to pass (from ``--api-key-env``) and the variable it came from, for hints."""
    info = backend.info
    if api_key_env:
        value = os.environ.get(api_key_env)
        if not value:
            raise CliError(
                f"environment variable {api_key_env} (named by --api-key-env) is not set",
                hint=f"export {api_key_env}=... with the key for backend {info.name}",
            )
        return value, api_key_env
    for var in info.api_key_env:
        if os.environ.get(var):
            return None, var  # the core reads it itself
    if info.api_key_required:
        names = " or ".join(info.api_key_env) or "a variable"
        raise CliError(
            f"backend {info.name} needs an API key and none is set",
            hint=f"set {names}, or name the variable holding it with --api-key-env",
        )
    return None, info.api_key_env[0] if info.api_key_env else None


def open_backend(
    registry: Registry,
    name: str,
    *,
    endpoint_urls: Sequence[str] = (),
    api_key_env: str | None = None,
    model: str | None = None,
    settings: Mapping[str, Any] | None = None,
    keys: Sequence[str] = (),
) -> tuple[Backend, list[str], dict[str, str], str | None]:
    """The backend, its endpoint IDs, their URLs, the key's env.

    One endpoint per URL (or one on the default URL) and, with ``keys``, one per key on
    each URL: ``<name>-<url #>`` for one key, ``<name>-<url #>-k<key #>`` for several (a key
    is named by its position, never shown). Without ``keys`` the key comes from
    ``api_key_env`` or the backend's own variable. Unknown backends, broken plugins and a
    missing key raise one-line errors.
    """
    try:
        backend = registry.get(name)
    except PluginLoadError:
        raise
    except ConfigurationError as exc:
        raise CliError(str(exc), hint="see `ipfs-accel backends`") from None
    if keys and api_key_env:
        raise CliError("--api-key-env names one key; with -k/--keys-file give every key there")
    key, env = (None, None) if keys else _key_from_env(backend, api_key_env)
    common: dict[str, Any] = {k: v for k, v in (settings or {}).items() if v is not None}
    if key is not None:
        common["api_key"] = key
    if model:
        common["model"] = model
    ids = []
    for i, url in enumerate(endpoint_urls or [None], start=1):
        values = dict(common)
        if url is not None:
            values["base_url"] = url
        if len(keys) > 1:
            for k, each in enumerate(keys, start=1):
                ids.append(backend.create_endpoint(f"{name}-{i}-k{k}", **values, api_key=each))
        else:
            ids.append(backend.create_endpoint(
                f"{name}-{i}", **values, **({"api_key": keys[0]} if keys else {})))
    urls = {eid: backend.get_endpoint(eid).base_url for eid in ids}
    return backend, ids, urls, env

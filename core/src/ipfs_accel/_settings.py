"""Endpoint settings: one typed Struct, validated when the endpoint is created."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec

from ._errors import ConfigurationError
from ._secrets import Secret, mask_secret_values, scrub

if TYPE_CHECKING:
    from ._types import BackendInfo

__all__ = [
    "EndpointConfig",
    "EndpointSettings",
    "api_key_problem",
    "build_settings",
    "check_base_url",
    "resolve_config",
]

_T = TypeVar("_T")


class EndpointSettings(msgspec.Struct, kw_only=True, frozen=True):
    """How one endpoint is reached and how calls to it are queued and retried.

    Times are in seconds, and each one is a bound on wall-clock time, however slowly a
    server sends its bytes:

    - ``timeout`` bounds one attempt: one HTTP request until its whole response is read
      (for a stream, until its first chunk). An attempt past it is a retryable
      :class:`~ipfs_accel.TimeoutError`.
    - ``deadline`` bounds the whole call, from admission through queue wait, attempts,
      backoff and (for a stream) every chunk up to the last (``None``: no deadline).
    - ``stream_idle_timeout`` bounds the silence between two data events of a stream once
      it has started; keep-alive comments and ``ping`` events are not progress.
    - ``max_retry_after`` caps a wait the server asks for (``Retry-After``, rate-limit
      headers): a longer one fails the call at once with the server's ``retry_after`` on
      the error, for the caller to decide.

    Pacing and health (see the README's "Pools and pacing"):

    - ``rpm`` / ``tpm`` (``None``: no limit) pace calls so that neither requests nor
      tokens per minute exceed them, spaced evenly; ``tpm`` books an estimate before each
      attempt (input size / 4 + ``max_tokens``) and settles with the usage the server reports.
    - ``unhealthy_after`` consecutive transport failures, timeouts or 5xx mark the endpoint
      unhealthy for ``cooldown`` seconds, doubling (up to ``max_cooldown``) while failures
      continue; a pool then sends it one probe call, which decides.

    Shared limits (a Registry made with ``shared="redis://..."``): ``shared`` (True) puts
    this endpoint's ``rpm``, ``tpm``, pauses, health and ``max_concurrent_requests`` in Redis
    for every process naming it alike; a call holds a lease that expires ``lease_seconds``
    after its worker stops renewing it; ``shared_fail`` ``"open"`` goes on with local limits
    while Redis is unreachable, ``"closed"`` fails the attempt instead.

    Telemetry: ``propagate_trace`` (True) sends W3C ``traceparent`` with each attempt while
    a span is recording (off for a server that refuses headers it does not know).

    Retry delay n (1-based) is ``min(initial_retry_delay * backoff_factor**(n-1),
    max_retry_delay)`` plus up to ``retry_jitter`` of that (never above
    ``max_retry_delay``), unless the server's Retry-After asks for longer.
    """

    base_url: str | None = None
    api_key: Secret | None = None
    model: str | None = None
    timeout: float = 60.0
    deadline: float | None = None
    stream_idle_timeout: float = 60.0
    max_retry_after: float = 300.0
    max_retries: int = 5
    initial_retry_delay: float = 1.0
    backoff_factor: float = 2.0
    max_retry_delay: float = 60.0
    retry_jitter: float = 0.1
    honor_retry_after: bool = True
    queue_size: int = 100
    max_concurrent_requests: int = 5
    rpm: float | None = None
    tpm: int | None = None
    unhealthy_after: int = 3
    cooldown: float = 5.0
    max_cooldown: float = 300.0
    shared: bool = True
    lease_seconds: float = 10.0
    shared_fail: Literal["open", "closed"] = "open"
    propagate_trace: bool = True
    headers: dict[str, str] = {}

    def __post_init__(self) -> None:
        _check(self)

    # ``headers`` may carry a credential of the user's own (a proxy's token): mask the
    # values whose names look secret, in the repr and in rich's pretty-printing alike.
    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            (name, mask_secret_values(self.headers) if name == "headers" else getattr(self, name))
            for name in self.__struct_fields__
        ]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__rich_repr__())
        return f"{type(self).__name__}({fields})"


def _bad(name: str, value: object, need: str) -> ConfigurationError:
    return ConfigurationError(f"setting {name!r} must be {need}, got {value!r}")


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def _check(s: EndpointSettings) -> None:
    for name in ("timeout", "initial_retry_delay", "max_retry_delay", "stream_idle_timeout",
                 "cooldown", "max_cooldown"):
        value = getattr(s, name)
        if not (value > 0 and _finite(value)):
            raise _bad(name, value, "a positive number of seconds")
    if s.deadline is not None and not (s.deadline > 0 and _finite(s.deadline)):
        raise _bad("deadline", s.deadline, "a positive number of seconds or None")
    if not (s.max_retry_after >= 0 and _finite(s.max_retry_after)):
        raise _bad("max_retry_after", s.max_retry_after, "a number of seconds >= 0")
    if not (s.backoff_factor >= 1 and _finite(s.backoff_factor)):
        raise _bad("backoff_factor", s.backoff_factor, "a number >= 1")
    if not (0 <= s.retry_jitter <= 1):
        raise _bad("retry_jitter", s.retry_jitter, "a fraction between 0 and 1")
    if s.max_retries < 0:
        raise _bad("max_retries", s.max_retries, "an integer >= 0")
    if s.queue_size < 0:
        raise _bad("queue_size", s.queue_size, "an integer >= 0")
    _check_limits(s)
    if s.max_concurrent_requests < 1:
        raise _bad("max_concurrent_requests", s.max_concurrent_requests, "an integer >= 1")
    if s.base_url is not None:
        if not s.base_url.startswith(("http://", "https://")):
            raise _bad("base_url", s.base_url, "an http:// or https:// URL")
        check_base_url(s.base_url, "setting 'base_url'")
    _check_sent(s)


def _check_limits(s: EndpointSettings) -> None:
    for name in ("rpm", "tpm"):
        value = getattr(s, name)
        if value is not None and not (value > 0 and _finite(value)):
            raise _bad(name, value, "a positive number per minute or None")
    if s.unhealthy_after < 1:
        raise _bad("unhealthy_after", s.unhealthy_after, "an integer >= 1")
    if not (s.lease_seconds > 0 and _finite(s.lease_seconds)):
        raise _bad("lease_seconds", s.lease_seconds, "a positive number of seconds")


def _check_sent(s: EndpointSettings) -> None:
    """What goes on the wire as it is (the key, the headers) must be sendable: refuse it
    here rather than fail, and be retried, at call time."""
    if s.api_key is not None:
        problem = api_key_problem(s.api_key.reveal())
        if problem is not None:
            raise ConfigurationError(f"setting 'api_key' {problem}")
    for name, value in s.headers.items():
        _check_header(name, value)


# RFC 9110: a header name is a token; a value is visible ASCII, spaces and tabs inside.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VISIBLE = re.compile(r"[\x21-\x7e]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?")


def api_key_problem(key: str) -> str | None:
    """Why ``key`` cannot go into an auth header, or ``None`` when it can.

    A key is one or more visible ASCII characters: no whitespace, line break, control
    character or non-ASCII character. The answer never quotes the key.
    """
    if not key:
        return "is empty (leave it out, or pass None, for no key)"
    if _VISIBLE.fullmatch(key):
        return None
    if key != key.strip():
        return ("has whitespace or a line break at its start or end (a key read from a file"
                " or a mounted secret keeps its trailing newline: strip it)")
    if not key.isascii():
        return "contains non-ASCII characters (an HTTP header cannot carry them)"
    return "contains whitespace or control characters"


def _check_header(name: str, value: str) -> None:
    # the name may be quoted (escaped by repr); the value never is: it may be a credential
    if not _TOKEN.fullmatch(name):
        raise ConfigurationError(
            f"setting 'headers' has an invalid header name {name!r}: a name is letters, "
            "digits and !#$%&'*+-.^_`|~ only"
        )
    if _FIELD_VALUE.fullmatch(value):
        return
    if not value.isascii():
        problem = "contains non-ASCII characters (an HTTP header cannot carry them)"
    elif value != value.strip(" \t"):
        problem = "starts or ends with whitespace"
    else:
        problem = "contains a line break or control character"
    raise ConfigurationError(f"setting 'headers': the value of header {name!r} {problem}")


def check_base_url(url: str, source: str) -> None:
    """Raise :class:`ConfigurationError` naming ``source`` unless ``url`` is a usable
    http(s) URL with a host (no whitespace, a valid port and IPv6 literal)."""
    if any(c.isspace() for c in url) or not url.isprintable():
        raise ConfigurationError(f"{source} is not a valid URL: it contains whitespace "
                                 "or control characters")
    try:  # urllib, not httpx2: listing backends must not import the HTTP stack
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it (a ValueError when out of range)
    except ValueError as exc:
        raise ConfigurationError(f"{source} is not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ConfigurationError(f"{source} is not a valid URL: it has no host")


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
        """``text`` with this endpoint's key masked: for messages that quote a server's words.

        The rule: a key shorter than :data:`MIN_SECRET_LENGTH` (8) characters is left alone
        (``"k"``, ``"none"``, ``"EMPTY"``: the dummy keys local servers take are no secret,
        and masking them would mangle ordinary words); a longer key is replaced by
        ``********`` wherever it stands as a whole token (no letter or digit glued to
        either side), as it is or in an escaped form: ``repr`` of the str or of its bytes,
        JSON, ``unicode_escape`` and URL encodings.
        """
        return scrub(self.api_key, text)

    def quotes_key(self, text: str) -> bool:
        """Whether :meth:`scrub` would mask something in ``text``."""
        return self.scrub(text) != text


def resolve_config(
    info: BackendInfo, endpoint_id: str, values: Mapping[str, Any], environ: Mapping[str, str]
) -> EndpointConfig:
    """An endpoint's configuration from its settings over the backend defaults (``values``):
    validated, the key taken from the settings or the backend's env vars, the base URL from
    the settings, an env var or the plugin's default. Raises :class:`ConfigurationError`
    naming what is wrong (never a key's value).
    """
    merged = values
    settings, options = build_settings(merged, options_type=info.options, backend=info.name)
    api_key = settings.api_key
    if api_key is None:
        for var in info.api_key_env:
            if environ.get(var):
                api_key = Secret(environ[var])
                problem = api_key_problem(api_key.reveal())
                if problem is not None:
                    raise ConfigurationError(f"environment variable {var} (the API key "
                                             f"of backend {info.name!r}) {problem}")
                break
    if api_key is None and info.api_key_required:
        env = " or ".join(info.api_key_env) or "an environment variable"
        raise ConfigurationError(
            f"backend {info.name!r} needs an API key: pass api_key= or set {env}"
        )
    base_url = settings.base_url
    source = "setting 'base_url'"
    if base_url is None:
        for var in info.base_url_env:
            if environ.get(var):
                base_url = environ[var]
                source = f"environment variable {var}"
                break
    if base_url is None:
        base_url = info.default_base_url
        source = f"the default base URL of backend {info.name!r}"
    if not base_url:
        raise ConfigurationError(f"backend {info.name!r} needs base_url= (it has no default)")
    if not base_url.startswith(("http://", "https://")):
        base_url = "http://" + base_url  # OLLAMA_HOST=localhost:11434 is common
    check_base_url(base_url, source)
    return EndpointConfig(
        endpoint_id=endpoint_id,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        model=settings.model or info.default_model,
        options=options,
        settings=settings,
    )

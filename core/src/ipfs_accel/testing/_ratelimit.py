"""Per-key rate limits for the :class:`FaultServer`, enforced and reported as vendors do.

Each limited API key has a requests budget (``rpm``) and, optionally, a tokens budget
(``tpm``), each a smooth GCRA (generic cell rate algorithm): a budget holds ``burst`` units
and earns one back every ``60 / rpm`` seconds (``60 / tpm`` for tokens), continuously, not
in whole-minute windows. A request is accepted when every budget has room for it (one
request; its tokens); a refused request takes nothing, is answered 429 with ``retry-after``
(whole seconds, rounded up) and ``retry-after-ms`` (the exact wait, in ms rounded up), and
an error body in the API's shape. Every response to a limited key carries its budgets in
the chosen header style:

- ``"openai"`` (OpenAI, Groq): ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``;
  the limit is ``rpm`` / ``tpm``, remaining the whole units left now, reset the time until
  the budget is whole again as a duration (``120ms``, ``7.66s``, ``1m0s``).
- ``"anthropic"``: ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``, the
  reset an RFC 3339 UTC time (to the millisecond, rounded up, where Anthropic sends whole
  seconds: pacing tests need the exact time).
- ``None``: no budget headers, only the 429s.

The key of a request is read from ``Authorization: Bearer <key>``, ``x-api-key``,
``api-key``, ``x-goog-api-key`` or the ``key`` query parameter, in that order; a request
without one has the key ``None``. Keys never appear in a repr or a message here.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from ._actions import RecordedRequest, Reply
from ._ratelimit_wire import HeaderStyle, Snapshot, budget_headers, refusal

__all__ = ["RateLimit", "RateLimiter", "RateStats", "Verdict", "mask_key", "request_key",
           "request_tokens"]

_EPSILON = 1e-9  # float slack: a request exactly on its schedule is on time


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """The rate limit of one API key on a :class:`FaultServer`.

    - ``rpm``: requests per minute, one earned back every ``60 / rpm`` seconds.
    - ``burst``: requests that may come back to back on a full budget. The default, 1, is
      pure spacing: each request must come ``60 / rpm`` s after the one before, so a client
      that paces by the headers is never refused, and one that bursts is at once.
    - ``tpm``: tokens per minute (``None``: tokens are not limited). A request's tokens
      are its body's ``max_tokens`` (or ``max_completion_tokens``) plus its body's length
      in bytes // 4.
    - ``token_burst``: tokens that may be spent at once; by default ``tpm`` (a minute's
      worth: one request costs many tokens). A request costing more is refused with
      ``x-should-retry: false``, as no wait would let it through.

    ``rpm=None`` limits tokens only; at least one of ``rpm`` and ``tpm`` is required.
    """

    rpm: int | None = None
    burst: int = 1
    tpm: int | None = None
    token_burst: int | None = None

    def __post_init__(self) -> None:
        if self.rpm is None and self.tpm is None:
            raise ValueError("RateLimit needs rpm, tpm or both")
        for name in ("rpm", "tpm", "token_burst"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"RateLimit {name} must be at least 1, not {value}")
        if self.burst < 1:
            raise ValueError(f"RateLimit burst must be at least 1, not {self.burst}")


class RateStats(NamedTuple):
    """How many requests of one key were accepted and how many refused (429)."""

    accepted: int
    refused: int


def mask_key(key: str | None) -> str:
    """A key as the kit shows it: its last 4 characters (``...ab12``), ``...`` for a short
    one, ``<no key>`` for ``None``."""
    if key is None:
        return "<no key>"
    return f"...{key[-4:]}" if len(key) >= 12 else "..."


def request_key(request: RecordedRequest) -> str | None:
    """The API key a request carries, wherever the APIs put it (see the module docstring)."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in ("x-api-key", "api-key", "x-goog-api-key"):
        value = request.headers.get(name)
        if value:
            return value
    return request.query.get("key") or None


def request_tokens(request: RecordedRequest) -> int:
    """The tokens a request costs: ``max_tokens`` (or ``max_completion_tokens``) from its
    JSON body, when that is a whole number, plus the body's length in bytes // 4."""
    tokens = len(request.body) // 4
    try:
        data = request.json()
    except ValueError:
        return tokens
    if isinstance(data, dict):
        for name in ("max_tokens", "max_completion_tokens"):
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return tokens + value
    return tokens


class _Budget:
    """One GCRA budget: ``capacity`` units, one earned back every ``interval`` seconds.

    ``full_at`` is when every unit spent so far will have been earned back (the
    theoretical arrival time); units in use now are ``(full_at - now) / interval``.
    """

    __slots__ = ("capacity", "full_at", "interval", "limit")

    def __init__(self, limit: int, capacity: int) -> None:
        self.limit = limit
        self.capacity = capacity
        self.interval = 60.0 / limit
        self.full_at = -math.inf

    def wait(self, now: float, cost: int) -> float:
        """Seconds until ``cost`` units fit (0 when they fit now)."""
        end = max(self.full_at, now) + cost * self.interval
        return max(end - self.capacity * self.interval - now, 0.0)

    def take(self, now: float, cost: int) -> None:
        self.full_at = max(self.full_at, now) + cost * self.interval

    def remaining(self, now: float) -> int:
        used = max(self.full_at - now, 0.0) / self.interval
        return max(math.floor(self.capacity - used + _EPSILON), 0)

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(self.limit, self.remaining(now), max(self.full_at - now, 0.0))


class _KeyState:
    __slots__ = ("accepted", "refused", "requests", "tokens")

    def __init__(self, limit: RateLimit) -> None:
        self.requests = None if limit.rpm is None else _Budget(limit.rpm, limit.burst)
        self.tokens = (None if limit.tpm is None
                       else _Budget(limit.tpm, limit.token_burst or limit.tpm))
        self.accepted = 0
        self.refused = 0


class Verdict(NamedTuple):
    """The limiter's answer to one request: the 429 to send instead (``refusal``), or the
    budget headers to add to whatever answers it."""

    refusal: Reply | None
    headers: dict[str, str]


Clock: TypeAlias = Callable[[], float]
_NOT_LIMITED = Verdict(None, {})


class RateLimiter:
    """The per-key budgets of one :class:`FaultServer` (one lock; see the module docstring).

    ``limits`` maps keys (``None``: requests without a key) to their :class:`RateLimit`;
    ``default`` limits every other key, each with its own budget (as a vendor limits each
    key); ``clock`` is read for every request (``time.monotonic`` unless a test drives it).
    """

    def __init__(
        self,
        limits: Mapping[str | None, RateLimit] | None = None,
        *,
        default: RateLimit | None = None,
        style: HeaderStyle = "openai",
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        if style not in ("openai", "anthropic", None):
            raise ValueError(f"rate_limit_headers must be 'openai', 'anthropic' or None, not {style!r}")
        self.default = default
        self.style: HeaderStyle = style
        self._limits: dict[str | None, RateLimit] = dict(limits or {})
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._states: dict[str | None, _KeyState] = {}

    def __repr__(self) -> str:
        keys = ", ".join(mask_key(k) for k in self._limits)
        return f"RateLimiter(keys=[{keys}], default={self.default!r}, style={self.style!r})"

    def limit(self, key: str | None, limit: RateLimit) -> None:
        """Limit ``key`` by ``limit`` from now on, with a full budget; its counts are kept."""
        with self._lock:
            self._limits[key] = limit
            state = self._states.get(key)
            if state is not None:
                fresh = _KeyState(limit)
                fresh.accepted, fresh.refused = state.accepted, state.refused
                self._states[key] = fresh

    def stats(self) -> dict[str | None, RateStats]:
        """Accepted and refused requests per key that has been limited."""
        with self._lock:
            return {k: RateStats(s.accepted, s.refused) for k, s in self._states.items()}

    def reset(self) -> None:
        """Every budget full again, every count zero (the limits stay)."""
        with self._lock:
            self._states.clear()

    def admit(self, request: RecordedRequest) -> Verdict:
        """Accept ``request`` (taking from its key's budgets) or refuse it; never raises for
        what a request holds."""
        key = request_key(request)
        limit = self._limits.get(key, self.default)
        if limit is None:
            return _NOT_LIMITED
        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _KeyState(limit)
            now = self._clock()
            requests, tokens = state.requests, state.tokens
            cost = request_tokens(request) if tokens is not None else 0
            too_big = tokens is not None and cost > tokens.capacity
            request_wait = requests.wait(now, 1) if requests is not None else 0.0
            token_wait = tokens.wait(now, cost) if tokens is not None and not too_big else 0.0
            accepted = not too_big and max(request_wait, token_wait) <= _EPSILON
            if accepted:
                state.accepted += 1
                if requests is not None:
                    requests.take(now, 1)
                if tokens is not None:
                    tokens.take(now, cost)
            else:
                state.refused += 1
            headers = budget_headers(
                self.style, self._wall_clock(),
                requests=None if requests is None else requests.snapshot(now),
                tokens=None if tokens is None else tokens.snapshot(now),
            )
        if accepted:
            return Verdict(None, headers)
        if tokens is not None and (too_big or token_wait > request_wait):
            reply = refusal(self.style, headers, budget="tokens", limit=tokens.limit,
                            requested=cost, wait=None if too_big else token_wait)
        else:
            assert requests is not None  # refused, and not for tokens
            reply = refusal(self.style, headers, budget="requests", limit=requests.limit,
                            requested=1, wait=request_wait)
        return Verdict(reply, headers)

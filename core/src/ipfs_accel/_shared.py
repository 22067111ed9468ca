"""Limits shared across processes and hosts, on Redis (or Valkey).

Each process keeps its own queue and its own gate (``_limits``); with ``Registry(shared=
"redis://...")`` an attempt that its gate lets go also asks Redis, in one script, whether the
endpoint's shared state lets it go now: no pause, the ``rpm`` / ``tpm`` budgets (GCRA, on the
server's clock, so hosts whose clocks differ agree), and a lease among the cluster-wide
``max_concurrent_requests``. The answer is "go" (with a lease) or "wait this long". After the
attempt one more script gives the lease back, corrects the token budget with the real usage,
and extends the shared pause when the server asked for one (429 / overload with Retry-After).
So: one round trip to admit, one to settle.

Leases expire (``lease_seconds``, 10 s by default) unless renewed; a daemon thread renews the
leases of the calls still running every third of that time, so a worker killed with
``kill -9`` strands its slots for at most one lease time.

An endpoint's shared identity is its backend, its ``endpoint_id`` and a fingerprint of its key
and URL: an HMAC keyed with a random salt kept in Redis (``ipfs-accel:salt``), so two keys
never share a budget by accident and no key, nor an unsalted hash of one, reaches Redis.

Redis unavailable: by default each process goes on with its own local limits and logs one
warning per outage; Redis is asked again a second later, and shared state resumes when it
answers. With ``shared_fail="closed"`` the attempt fails instead, as a retryable
``TransportError``. No exception of the Redis client ever reaches the caller raw.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError, TransportError

if TYPE_CHECKING:
    import asyncio

    from ._settings import EndpointConfig

__all__ = ["Admission", "Shared", "SharedEndpoint"]

log = logging.getLogger("ipfs_accel")

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local maxc = tonumber(ARGV[4])
local held = 0
if maxc > 0 and redis.call('ZSCORE', KEYS[3], ARGV[5]) then held = 1 end
local pause = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
if pause > now then
  return {tostring(pause - now), 'pause', redis.call('HGET', KEYS[2], 'reason') or '',
          t[1], t[2], held}
end
if maxc > 0 then
  if held == 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    if redis.call('ZCARD', KEYS[3]) >= maxc then
      local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
      return {tostring(math.max(tonumber(first[2]) - now, 1)), 'busy', '', t[1], t[2], 0}
    end
  end
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
  redis.call('PEXPIRE', KEYS[3], 2 * tonumber(ARGV[6]) + 60000)
  held = 1
end
local ri = tonumber(ARGV[1])
local ti = tonumber(ARGV[2])
if ARGV[7] ~= '1' and (ri > 0 or ti > 0) then
  local rt = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
  local tt = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
  local start = now
  if ri > 0 and rt > start then start = rt end
  if ti > 0 and tt > start then start = tt end
  local keep = start - now + 60000
  if ri > 0 then redis.call('HSET', KEYS[1], 'r', tostring(start + ri)); keep = keep + ri end
  if ti > 0 then
    local booked = tonumber(ARGV[3]) * ti
    redis.call('HSET', KEYS[1], 't', tostring(start + booked)); keep = keep + booked
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil(keep))
  if start > now then return {tostring(start - now), 'booked', '', t[1], t[2], held} end
end
return {'0', 'go', '', t[1], t[2], held}
"""

_SETTLE = """
redis.call('ZREM', KEYS[3], ARGV[1])
local delta = tonumber(ARGV[2])
if delta ~= 0 then
  local tt = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
  if tt > 0 then redis.call('HSET', KEYS[1], 't', tostring(tt + delta)) end
end
local p = tonumber(ARGV[3])
if p > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local cur = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
  if now + p > cur then
    redis.call('HSET', KEYS[2], 'until', tostring(now + p), 'reason', ARGV[4])
    redis.call('PEXPIRE', KEYS[2], p + 60000)
  end
end
return 1
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 1
"""

_SALT_KEY = "ipfs-accel:salt"
_POLL = 0.025  # a busy endpoint is asked again this soon (a lease may be given back early)
_RETRY_DOWN = 1.0  # Redis unreachable: ask again after this long


class Admission:
    """Redis's answer: ``wait`` seconds (0: go) and why not yet (``"booked"``: the budgets
    are booked for then), and the concurrency ``lease`` the attempt holds, if any."""

    __slots__ = ("lease", "reason", "wait", "why")

    def __init__(self, wait: float, why: str, reason: str = "", lease: str | None = None):
        self.wait = wait
        self.why = why  # "go", "pause", "booked" (its budget slot), "busy", "local" (no Redis)
        self.reason = reason
        self.lease = lease


def _redis() -> Any:
    try:
        import redis  # noqa: PLC0415 - only shared limits need it
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "shared limits need the Redis client: pip install 'ipfs-accel-core[redis]'"
        ) from None
    return redis


class Shared:
    """The connection to Redis of one Registry and the endpoints sharing limits through it."""

    def __init__(self, url: str) -> None:
        redis = _redis()
        self.url = url
        self._redis = redis
        options = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        self.client = redis.Redis.from_url(url, **options)
        self._async_options = options
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary())
        self._salt: bytes | None = None
        self._lock = threading.Lock()
        self.down_until = 0.0  # monotonic: Redis is not asked before then
        self._warned = False
        self._leases: dict[str, tuple[str, set[str], float]] = {}  # key -> (zset, ids, ttl)
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return "<Shared redis>"  # the URL may carry a password

    # -- identity ---------------------------------------------------------------------

    def salt(self) -> bytes:
        """The salt of fingerprints, made once per Redis and kept there."""
        if self._salt is None:
            self.client.set(_SALT_KEY, secrets.token_hex(32), nx=True)
            value = self.client.get(_SALT_KEY)
            self._salt = value if isinstance(value, bytes) else str(value).encode()
        return self._salt

    def endpoint(self, backend: str, config: EndpointConfig) -> SharedEndpoint:
        """The shared state of one endpoint (its key names are made on first use)."""
        return SharedEndpoint(self, backend, config)

    # -- failures -----------------------------------------------------------------------

    def errors(self) -> tuple[type[BaseException], ...]:
        return (self._redis.RedisError, OSError)

    def failed(self, exc: BaseException) -> None:
        """Redis did not answer: go on locally until ``down_until``; warn once an outage."""
        with self._lock:
            self.down_until = time.monotonic() + _RETRY_DOWN
            if not self._warned:
                self._warned = True
                log.warning("shared limits: Redis unavailable (%s); each process goes on "
                            "with its own limits until it answers again", type(exc).__name__)

    def answered(self) -> None:
        if self._warned:
            with self._lock:
                if self._warned:
                    self._warned = False
                    log.warning("shared limits: Redis answers again; limits are shared")

    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    # -- clients ------------------------------------------------------------------------

    def aclient(self) -> Any:
        """The asyncio client of the running loop (one per loop, released with it)."""
        import asyncio  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            # A connection the asyncio pool kept from before Redis restarted fails once
            # when next used (the sync pool checks each as it hands it out): one retry at
            # once on a new connection, for a dropped connection only (a Redis that does
            # not answer still costs one socket timeout, not two).
            redis = self._redis
            retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 1,
                                              supported_errors=(redis.ConnectionError,))
            client = redis.asyncio.Redis.from_url(self.url, retry=retry, **self._async_options)
            self._async[loop] = client
        return client

    # -- leases -------------------------------------------------------------------------

    def hold(self, zset: str, lease: str, ttl: float) -> None:
        with self._lock:
            entry = self._leases.setdefault(zset, (zset, set(), ttl))
            entry[1].add(lease)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, name="ipfs-accel-leases",
                                                 daemon=True)
                self._renewer.start()

    def release(self, zset: str, lease: str) -> None:
        with self._lock:
            entry = self._leases.get(zset)
            if entry is not None:
                entry[1].discard(lease)

    def _renew(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                jobs = [(z, list(ids), ttl) for z, ids, ttl in self._leases.values() if ids]
                wait = min((ttl for _, _, ttl in jobs), default=10.0) / 3
            for zset, ids, ttl in jobs:
                try:
                    self.client.eval(_RENEW, 1, zset, int(ttl * 1000), *ids)
                except self.errors():  # the lease may lapse: its slot is freed, not lost
                    pass
            self._stop.wait(wait)

    def close(self) -> None:
        self._stop.set()
        self.client.close()


class SharedEndpoint:
    """One endpoint's shared state: admit an attempt, settle it."""

    __slots__ = ("_keys", "backend", "config", "shared")

    def __init__(self, shared: Shared, backend: str, config: EndpointConfig) -> None:
        self.shared = shared
        self.backend = backend
        self.config = config
        self._keys: tuple[str, str, str] | None = None

    def configured(self, config: EndpointConfig) -> SharedEndpoint | None:
        """The shared state for the endpoint's new settings (``None``: it opted out); a new
        key or URL is a new identity, with budgets of its own."""
        if not config.settings.shared:
            return None
        return SharedEndpoint(self.shared, self.backend, config)

    def keys(self) -> tuple[str, str, str]:
        if self._keys is None:
            c = self.config
            secret = c.api_key.reveal() if c.api_key is not None else ""
            mac = hmac.new(self.shared.salt(), f"{secret}\0{c.base_url}".encode(),
                           hashlib.sha256).hexdigest()[:24]
            # one hash tag: the three keys of an endpoint live on one Redis Cluster slot
            base = f"ipfs-accel:{{{self.backend}:{c.endpoint_id}:{mac}}}"
            self._keys = (f"{base}:budget", f"{base}:pause", f"{base}:leases")
        return self._keys

    def _args(self, tokens: float, lease: str, booked: bool) -> list[Any]:
        s = self.config.settings
        return [
            repr(60000 / s.rpm) if s.rpm else 0,  # ms per request, not rounded
            repr(60000 / s.tpm) if s.tpm else 0,  # ms per token
            tokens,
            s.max_concurrent_requests,
            lease,
            int(s.lease_seconds * 1000),
            1 if booked else 0,  # an earlier answer booked its budgets: pause and lease only
        ]

    def _answer(self, raw: Any, lease: str) -> Admission:
        # then the server's TIME (for tests of the script) and whether the lease is held
        wait_ms, why, reason, _sec, _usec, held = raw
        why = why.decode() if isinstance(why, bytes) else str(why)
        reason = reason.decode() if isinstance(reason, bytes) else str(reason)
        wait = float(wait_ms) / 1000
        if int(held):
            self.shared.hold(self.keys()[2], lease, self.config.settings.lease_seconds)
        if why == "busy":  # asked again soon (a lease may come back early), not all at once
            wait = min(wait, _POLL * (0.5 + random.random()))  # noqa: S311 - jitter
        return Admission(wait, why, reason, lease=lease if int(held) else None)

    def _down(self, exc: BaseException) -> Admission:
        self.shared.failed(exc)
        if self.config.settings.shared_fail == "closed":
            err = TransportError(
                f"shared limits unavailable ({type(exc).__name__}); shared_fail='closed'",
                backend=self.backend, endpoint_id=self.config.endpoint_id)
            err.retryable = True
            raise err from None
        return Admission(0.0, "local")

    def admit(self, tokens: float, booked: bool = False, lease: str | None = None,
              ) -> Admission:
        """Ask Redis (sync) whether an attempt booking ``tokens`` may go now. The first
        answer that can takes a concurrency lease (``lease``: the attempt's, kept across its
        questions) and books the budgets (``"booked"``: wait that long, holding the lease,
        then ask again with ``booked``: only a pause can hold it then)."""
        if self.shared.is_down() and self.config.settings.shared_fail != "closed":
            return Admission(0.0, "local")
        lease = lease or secrets.token_hex(8)
        try:
            raw = self.shared.client.eval(_ADMIT, 3, *self.keys(),
                                          *self._args(tokens, lease, booked))
        except self.shared.errors() as exc:
            return self._down(exc)
        self.shared.answered()
        return self._answer(raw, lease)

    async def aadmit(self, tokens: float, booked: bool = False, lease: str | None = None,
                     ) -> Admission:
        """:meth:`admit` on the running loop (its own asyncio client: no thread hop)."""
        if self.shared.is_down() and self.config.settings.shared_fail != "closed":
            return Admission(0.0, "local")
        lease = lease or secrets.token_hex(8)
        try:
            keys = self.keys()
            raw = await self.shared.aclient().eval(_ADMIT, 3, *keys,
                                                   *self._args(tokens, lease, booked))
        except self.shared.errors() as exc:
            return self._down(exc)
        self.shared.answered()
        return self._answer(raw, lease)

    def _settle_args(self, lease: str | None, booked: float, used: float | None,
                     pause: float | None, reason: str) -> list[Any]:
        s = self.config.settings
        delta = (used - booked) * 60000 / s.tpm if s.tpm and used is not None else 0
        return [lease or "", repr(float(delta)), int((pause or 0) * 1000), reason]

    def stop_renewing(self, lease: str) -> None:
        """The call holding ``lease`` is over: its lease is no longer renewed."""
        self.shared.release(self.keys()[2], lease)

    def _settling(self, lease: str | None, pause: float | None, used: float | None) -> bool:
        if lease is not None:
            self.stop_renewing(lease)
        return not ((lease is None and pause is None and used is None) or self.shared.is_down())

    def settle(self, lease: str | None, booked: float, used: float | None,
               pause: float | None = None, reason: str = "") -> None:
        """After the attempt: give the lease back, correct the tokens, share a pause."""
        if not self._settling(lease, pause, used):
            return
        try:
            self.shared.client.eval(_SETTLE, 3, *self.keys(),
                                    *self._settle_args(lease, booked, used, pause, reason))
        except self.shared.errors() as exc:
            self.shared.failed(exc)

    async def asettle(self, lease: str | None, booked: float, used: float | None,
                      pause: float | None = None, reason: str = "") -> None:
        """:meth:`settle` on the running loop."""
        if not self._settling(lease, pause, used):
            return
        try:
            await self.shared.aclient().eval(
                _SETTLE, 3, *self.keys(), *self._settle_args(lease, booked, used, pause, reason))
        except self.shared.errors() as exc:
            self.shared.failed(exc)

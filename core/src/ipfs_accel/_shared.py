"""Limits shared across processes and hosts, on Redis (or Valkey).

Each process keeps its own queue and its own gate (``_limits``); with ``Registry(shared=
"redis://...")`` an attempt that its gate lets go also asks Redis, in one script, whether the
endpoint's shared state lets it go now: no pause, the ``rpm`` / ``tpm`` budgets (GCRA, on the
server's clock, so hosts whose clocks differ agree), the server's pace while it says its
requests budget is spent, and a lease among the cluster-wide ``max_concurrent_requests``
(attempts waiting for one queue in Redis, oldest first). The answer is "go" (with a lease)
or "wait this long", and the endpoint's shared health. After the attempt one more script
gives the lease back, corrects the token budget with the real usage, and shares what the
attempt learned: a pause (429 / overload with Retry-After, a token budget the headers say is
spent), the requests budget spent or back, the endpoint turning unhealthy or its key
refused, or answering again. So: one round trip to admit, one to settle
(``_shared_endpoint``; the scripts are in ``_shared_scripts``).

Leases expire (``lease_seconds``, 10 s by default) unless renewed; a daemon thread renews the
leases of the calls still running every third of that time, so a worker killed with
``kill -9`` strands its slots for at most one lease time.

An endpoint's shared identity is its backend, its ``endpoint_id`` and a fingerprint of its key
and URL: an HMAC keyed with a random salt kept in Redis (``ipfs-accel:salt``), so two keys
never share a budget by accident and no key, nor an unsalted hash of one, reaches Redis. A
Redis restarted empty gets the salt back from the first process that reconnects.

Redis unavailable: by default each process goes on with its own local limits and logs one
warning per outage; Redis is asked again a second later, and shared state resumes when it
answers. With ``shared_fail="closed"`` the attempt fails instead, as a retryable
``TransportError``. No exception of the Redis client ever reaches the caller raw.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._shared_scripts import RENEW, SALT, TURN

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from ._settings import EndpointConfig
    from ._shared_endpoint import SharedEndpoint

__all__ = ["Keys", "Shared"]

log = logging.getLogger("ipfs_accel")

_SALT_KEY = "ipfs-accel:salt"
_TURNS_KEPT = 4096  # turns heard, kept for waiters not yet waiting for theirs
_RETRY_DOWN = 1.0  # Redis unreachable: ask again after this long

Keys = tuple[str, str, str, str, str, str]  # budget, pause, leases, queue, alive, health


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
        self.client = redis.Redis.from_url(url, redis_connect_func=self._connected, **options)
        self._async_options = options
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary())
        self._salt: bytes | None = None
        self.epoch = 0  # counts the salts adopted: endpoints make their key names anew
        self._lock = threading.Lock()
        self.down_until = 0.0  # monotonic: Redis is not asked before then
        self._warned = False
        self._leases: dict[str, tuple[Keys, float]] = {}  # lease id -> (its keys, ttl)
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        self._waiters: dict[str, Callable[[], None]] = {}  # queued attempt -> its wake-up
        self._turned: dict[str, None] = {}  # the latest turns heard, oldest first
        self._listener: threading.Thread | None = None
        self.listening = False  # subscribed to the turns: waiters poll seldom

    def __repr__(self) -> str:
        return "<Shared redis>"  # the URL may carry a password

    # -- identity ---------------------------------------------------------------------

    def salt(self) -> bytes:
        """The salt of fingerprints, made once per Redis and kept there."""
        if self._salt is None:
            self._adopt(self.client.eval(SALT, 1, _SALT_KEY, secrets.token_hex(32)))
        assert self._salt is not None
        return self._salt

    def _adopt(self, value: Any) -> None:
        salt = value if isinstance(value, bytes) else str(value).encode()
        if salt != self._salt:
            with self._lock:
                self._salt = salt
                self.epoch += 1

    # A Redis restarted empty has lost the salt: every new connection (one after a restart
    # is one) installs the salt this process knows before anything else, or adopts the one
    # a process started meanwhile installed, so all name an endpoint alike again.

    def _connected(self, conn: Any) -> None:
        conn.on_connect()
        if self._salt is not None:
            conn.send_command("EVAL", SALT, 1, _SALT_KEY, self._salt)
            self._adopt(conn.read_response())

    async def _aconnected(self, conn: Any) -> None:
        await conn.on_connect()
        if self._salt is not None:
            await conn.send_command("EVAL", SALT, 1, _SALT_KEY, self._salt)
            self._adopt(await conn.read_response())

    def endpoint(self, backend: str, config: EndpointConfig) -> SharedEndpoint:
        """The shared state of one endpoint (its key names are made on first use)."""
        from ._shared_endpoint import SharedEndpoint  # noqa: PLC0415 - it imports this module

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
            client = redis.asyncio.Redis.from_url(
                self.url, retry=retry, redis_connect_func=self._aconnected,
                **self._async_options)
            self._async[loop] = client
        return client

    # -- leases -------------------------------------------------------------------------

    def hold(self, keys: Keys, lease: str, ttl: float) -> None:
        """Renew ``lease`` (on ``keys``) until :meth:`release`."""
        with self._lock:
            self._leases[lease] = (keys, ttl)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, name="ipfs-accel-leases",
                                                 daemon=True)
                self._renewer.start()

    def release(self, lease: str) -> Keys | None:
        """Stop renewing ``lease``; the keys it was taken on (``None``: not held)."""
        with self._lock:
            entry = self._leases.pop(lease, None)
        return entry[0] if entry is not None else None

    def renewing(self, lease: str) -> bool:
        return lease in self._leases

    def _renew(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                jobs: dict[tuple[str, float], list[str]] = {}
                for lease, (keys, ttl) in self._leases.items():
                    jobs.setdefault((keys[2], ttl), []).append(lease)
                wait = min((ttl for _, ttl in jobs), default=10.0) / 3
            try:
                for (zset, ttl), ids in jobs.items():
                    self.client.eval(RENEW, 1, zset, int(ttl * 1000), *ids)
                if self._salt is not None:  # emptied without a restart (FLUSHALL): again
                    self._adopt(self.client.eval(SALT, 1, _SALT_KEY, self._salt))
            except self.errors():  # a lease may lapse: its slot is freed, not lost
                pass
            self._stop.wait(wait)

    # -- turns: a waiter is told when a freed slot is its to take -----------------------

    def wait_turn(self, lease: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from another thread) when a settle says it is ``lease``'s turn,
        until :meth:`stop_waiting`."""
        with self._lock:
            self._waiters[lease] = wake
            turned = lease in self._turned  # heard before it could wait for it
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="ipfs-accel-turns",
                                                  daemon=True)
                self._listener.start()
        if turned:
            wake()

    def stop_waiting(self, lease: str) -> None:
        with self._lock:
            self._waiters.pop(lease, None)

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(TURN)
                self.listening = True
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._turns(message["data"])
            except self.errors():  # Redis away: waiters poll as often as they did
                pass
            finally:
                self.listening = False
                with contextlib.suppress(*self.errors()):
                    pubsub.close()
            self._stop.wait(_RETRY_DOWN)

    def _turns(self, data: Any) -> None:
        ids = (data.decode() if isinstance(data, bytes) else str(data)).split()
        with self._lock:
            wakes = [w for w in map(self._waiters.get, ids) if w is not None]
            turned = self._turned
            for lease in ids:
                turned[lease] = None
            while len(turned) > _TURNS_KEPT:
                del turned[next(iter(turned))]
        for wake in wakes:
            wake()

    def close(self) -> None:
        self._stop.set()
        self.client.close()


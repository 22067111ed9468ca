"""One endpoint's shared state (see ``_shared``): admit an attempt, settle it.

Admit asks, in one script, whether the endpoint is paused, whether its budgets (and the
server's pace while it says its requests budget is spent) let the attempt go now, and for a
lease among the cluster-wide ``max_concurrent_requests``; a full endpoint queues the attempt
in Redis, so a freed slot goes to the attempt waiting longest, whichever process it is in.
The answer also carries the endpoint's shared health. Settle gives the lease back, corrects
the token budget with the real usage and shares what the attempt learned: a pause the server
asked for, what its rate-limit headers said, and a change of health.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from typing import TYPE_CHECKING, Any

from ._errors import TransportError
from ._shared_scripts import ADMIT, SETTLE, TURN

if TYPE_CHECKING:
    from ._settings import EndpointConfig
    from ._shared import Keys, Shared

__all__ = ["Admission", "SharedEndpoint"]

_POLL = 0.025  # a busy endpoint is asked again this soon (a lease may be given back early)
_POLL_NEXT = 0.01  # and this soon by a waiter next in line for a slot
_POLL_TOLD = 0.5  # and this seldom by one told when its turn comes (to stay in the queue)
_QUIET = 3.0  # a waiter that has not asked again for this long leaves the queue


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Admission:
    """Redis's answer: ``wait`` seconds (0: go) and why not yet (``"booked"``: the budgets
    are booked for then; ``"spent"``: the server's spent requests budget paces it), the
    concurrency ``lease`` the attempt holds, if any, and the endpoint's shared ``health``:
    ``""`` well, ``"off"`` (its key refused), or the seconds left of a cooldown."""

    __slots__ = ("health", "lease", "reason", "wait", "why")

    def __init__(self, wait: float, why: str, reason: str = "", lease: str | None = None,
                 health: str = ""):
        self.wait = wait
        # "go", "pause", "booked", "spent", "busy" (no slot free), "local" (no Redis)
        self.why = why
        self.reason = reason
        self.lease = lease
        self.health = health


class SharedEndpoint:
    """One endpoint's shared state: admit an attempt, settle it."""

    __slots__ = ("_keys", "_news", "backend", "config", "shared")

    def __init__(self, shared: Shared, backend: str, config: EndpointConfig) -> None:
        self.shared = shared
        self.backend = backend
        self.config = config
        self._keys: tuple[int, Keys] | None = None  # the salt's epoch they were made with
        # what the server's headers said since the last settle: a pause (seconds, reason)
        # and the requests budget (its reset in seconds when spent, -1 when some is left)
        self._news: tuple[float, str, float] | None = None

    def configured(self, config: EndpointConfig) -> SharedEndpoint | None:
        """The shared state for the endpoint's new settings (``None``: it opted out); a new
        key or URL is a new identity, with budgets of its own."""
        if not config.settings.shared:
            return None
        return SharedEndpoint(self.shared, self.backend, config)

    def keys(self) -> Keys:
        salt = self.shared.salt()
        cached = self._keys
        if cached is None or cached[0] != self.shared.epoch:
            c = self.config
            secret = c.api_key.reveal() if c.api_key is not None else ""
            mac = hmac.new(salt, f"{secret}\0{c.base_url}".encode(),
                           hashlib.sha256).hexdigest()[:24]
            # one hash tag: the keys of an endpoint live on one Redis Cluster slot
            base = f"ipfs-accel:{{{self.backend}:{c.endpoint_id}:{mac}}}"
            cached = self._keys = (self.shared.epoch, tuple(  # type: ignore[assignment]
                f"{base}:{part}" for part in ("budget", "pause", "leases", "queue", "alive",
                                              "health")))
            assert cached is not None
        return cached[1]

    # -- before an attempt ----------------------------------------------------------------

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
            int(_QUIET * 1000),
        ]

    def _answer(self, raw: Any, lease: str, keys: Keys) -> Admission:
        # then the server's TIME (for tests of the script), whether the lease is held, health
        wait_ms, why, reason, _sec, _usec, held, health = raw
        why, reason, health = _text(why), _text(reason), _text(health)
        wait = float(wait_ms) / 1000
        if int(held):
            self.shared.hold(keys, lease, self.config.settings.lease_seconds)
        return Admission(wait, why, reason, lease if int(held) else None, health)

    def busy_wait(self, adm: Admission, *, told: bool) -> float:
        """How long an attempt the endpoint's full concurrency holds waits before asking
        again: not past the first lease's expiry, and jittered so waiters do not ask all at
        once. One that will be ``told`` when its turn comes (a settle publishes it) asks
        seldom, in case the word is lost; one that will not asks often, next in line most."""
        if told and self.shared.listening:
            poll = _POLL_TOLD
        elif int(adm.reason or 0) < self.config.settings.max_concurrent_requests:
            poll = _POLL_NEXT
        else:
            poll = _POLL
        return min(adm.wait, poll * (0.5 + random.random()))  # noqa: S311 - jitter

    def _down(self, exc: BaseException) -> Admission:
        self.shared.failed(exc)
        if self.config.settings.shared_fail == "closed":
            err = TransportError(
                f"shared limits unavailable ({type(exc).__name__}); shared_fail='closed'",
                backend=self.backend, endpoint_id=self.config.endpoint_id)
            err.retryable = True
            raise err from None
        return Admission(0.0, "local")

    def _local(self) -> bool:
        return self.shared.is_down() and self.config.settings.shared_fail != "closed"

    def admit(self, tokens: float, booked: bool = False, lease: str | None = None,
              ) -> Admission:
        """Ask Redis (sync) whether an attempt booking ``tokens`` may go now. The first
        answer that can takes a concurrency lease (``lease``: the attempt's, kept across its
        questions) and books the budgets (``"booked"``: wait that long, holding the lease,
        then ask again with ``booked``: only a pause can hold it then)."""
        if self._local():
            return Admission(0.0, "local")
        lease = lease or secrets.token_hex(8)
        try:
            keys = self.keys()
            raw = self.shared.client.eval(ADMIT, 6, *keys, *self._args(tokens, lease, booked))
        except self.shared.errors() as exc:
            return self._down(exc)
        self.shared.answered()
        return self._answer(raw, lease, keys)

    async def aadmit(self, tokens: float, booked: bool = False, lease: str | None = None,
                     ) -> Admission:
        """:meth:`admit` on the running loop (its own asyncio client: no thread hop)."""
        if self._local():
            return Admission(0.0, "local")
        lease = lease or secrets.token_hex(8)
        try:
            keys = self.keys()
            raw = await self.shared.aclient().eval(ADMIT, 6, *keys,
                                                   *self._args(tokens, lease, booked))
        except self.shared.errors() as exc:
            return self._down(exc)
        self.shared.answered()
        return self._answer(raw, lease, keys)

    # -- after it ---------------------------------------------------------------------------

    def heard(self, pause: float | None, reason: str, spent: float | None) -> None:
        """What an answer's rate-limit headers said, shared with the next settle: a pause
        (a token budget spent until its reset) and the requests budget (``spent``: its reset
        when none is left, -1 when some is)."""
        old = self._news
        if old is not None:
            if (pause or 0) < old[0]:
                pause, reason = old[0], old[1]
            if spent is None:
                spent = old[2]  # else the latest answer's word on the requests budget
        self._news = (pause or 0.0, reason, spent or 0.0)

    def has_news(self) -> bool:
        return self._news is not None

    def stop_renewing(self, lease: str) -> Keys | None:
        """The call holding ``lease`` is over: its lease is no longer renewed (the keys it
        was taken on; ``None``: it was not held)."""
        return self.shared.release(lease)

    def _settle_args(self, lease: str | None, booked: float, used: float | None, *,
                     pause: float | None, reason: str, health: tuple[str, float],
                     keys: Keys | None) -> tuple[Keys, list[Any]] | None:
        """The keys and arguments of a settle (``None``: nothing to tell Redis); a lease is
        given back on the keys it was taken on, even if the salt changed since."""
        if lease is not None:
            keys = self.stop_renewing(lease) or keys
        news, self._news = self._news, None
        if news is not None and news[0] > (pause or 0):
            pause, reason = news[0], news[1]
        spent = news[2] if news is not None else 0.0
        if ((lease is None and not pause and used is None and not spent
             and health[0] in ("", "well")) or self.shared.is_down()):
            return None
        s = self.config.settings
        delta = (used - booked) * 60000 / s.tpm if s.tpm and used is not None else 0
        return keys or self.keys(), [
            lease or "", repr(float(delta)), int((pause or 0) * 1000), reason,
            int(spent * 1000) if spent > 0 else (-1 if spent < 0 else 0),
            health[0], int(health[1] * 1000), s.max_concurrent_requests, TURN]

    def settle(self, lease: str | None, booked: float, used: float | None, *,
               pause: float | None = None, reason: str = "",
               health: tuple[str, float] = ("", 0.0), keys: Keys | None = None) -> None:
        """After the attempt: give the lease back (taken on ``keys``, if it is no longer
        renewed), correct the tokens, share a pause, what the headers said and a change of
        health (``("well", 0)``, ``("sick", cooldown)``, ``("off", seconds marked)``)."""
        try:
            job = self._settle_args(lease, booked, used, pause=pause, reason=reason,
                                      health=health, keys=keys)
            if job is not None:
                self.shared.client.eval(SETTLE, 6, *job[0], *job[1])
        except self.shared.errors() as exc:
            self.shared.failed(exc)

    async def asettle(self, lease: str | None, booked: float, used: float | None, *,
                      pause: float | None = None, reason: str = "",
                      health: tuple[str, float] = ("", 0.0), keys: Keys | None = None,
                      ) -> None:
        """:meth:`settle` on the running loop."""
        try:
            job = self._settle_args(lease, booked, used, pause=pause, reason=reason,
                                      health=health, keys=keys)
            if job is not None:
                await self.shared.aclient().eval(SETTLE, 6, *job[0], *job[1])
        except self.shared.errors() as exc:
            self.shared.failed(exc)

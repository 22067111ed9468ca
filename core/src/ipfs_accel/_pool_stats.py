"""A pool's own counters, beside its members' endpoint counters.

Every attempt runs on (and is counted by) one member endpoint: there it is one request, a
success or a failure, with its tokens and latency. The pool counts logical calls. The
conservation laws between the two, exact when the members serve only this pool and no call
is in flight (property-tested in ``tests/``):

- ``calls == ok + failed`` (``+ in_flight`` while calls run);
- ``attempts == sum(m.total_requests for m in members)``;
- ``ok == sum(m.successful_requests for m in members)``;
- ``attempts - ok == sum(m.failed_requests for m in members)``;
- ``attempts == calls - unsent + retries``, where ``unsent`` counts calls that ended before
  any attempt (no member could take them in time) and ``retries`` the extra attempts, of
  which ``failovers`` went to a different member than the attempt before;
- tokens of the pool's calls == the sum of the members' tokens.

``reset_stats`` with calls in flight keeps them counted, and the attempt each is running
then (as its member endpoint keeps it) as that call's first: the laws hold again once
they end.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

from ._stats import Stats

__all__ = ["PoolCounter", "PoolStats", "Tally"]


class PoolStats(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of a pool: its own counters and each member's endpoint stats.

    ``members`` maps ``"backend/endpoint_id"`` to that endpoint's :class:`Stats` (all its
    calls, the pool's and any made on it directly); ``ready``, ``paused``, ``unhealthy``
    and ``disabled`` count the members in each state now (``unhealthy`` includes
    ``probing``). ``waits`` counts the times a call waited for a member to come back (every
    member paused or cooling down) and ``wait_seconds`` the time spent so;
    ``retry_wait_seconds`` is the backoff slept between two attempts on one member (when no
    other was ready).
    """

    calls: int = 0
    ok: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    attempts: int = 0
    retries: int = 0
    failovers: int = 0
    unsent: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    retry_wait_seconds: float = 0.0
    ready: int = 0
    paused: int = 0
    unhealthy: int = 0
    disabled: int = 0
    members: dict[str, Stats] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self.__struct_fields__:
            return getattr(self, name)
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The counters as plain dicts (members' too)."""
        out: dict[str, Any] = msgspec.structs.asdict(self)
        out["members"] = {k: v.to_dict() for k, v in self.members.items()}
        return out


class Tally:
    """What the counters hold of one call in flight: its attempts counted (since the last
    reset) and whether one is running now."""

    __slots__ = ("counted", "running")

    def __init__(self) -> None:
        self.counted = 0
        self.running = False


class PoolCounter:
    """The pool's counters, changed under one lock."""

    __slots__ = ("_live", "_lock", "attempts", "backoff", "calls", "cancelled", "failed",
                 "failovers", "ok", "retries", "unsent", "wait_seconds", "waits")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Tally] = set()
        self.reset()

    def reset(self) -> None:
        """Zero the counters of finished calls and attempts. Calls in flight stay counted,
        and so does an attempt running now (as its member endpoint keeps it), as its call's
        first: the laws hold again once they end."""
        with self._lock:
            running = 0
            for tally in self._live:
                tally.counted = int(tally.running)
                running += tally.counted
            self.calls = len(self._live)
            self.attempts = running
            self.ok = self.failed = self.cancelled = self.retries = 0
            self.failovers = self.unsent = self.waits = 0
            self.wait_seconds = self.backoff = 0.0

    def started(self) -> Tally:
        tally = Tally()
        with self._lock:
            self.calls += 1
            self._live.add(tally)
        return tally

    def attempt(self, tally: Tally, *, failover: bool) -> None:
        """An attempt begins: a retry unless it is the call's first counted."""
        with self._lock:
            self.attempts += 1
            if tally.counted:
                self.retries += 1
                if failover:
                    self.failovers += 1
            tally.counted += 1
            tally.running = True

    def attempt_ended(self, tally: Tally) -> None:
        with self._lock:
            tally.running = False

    def waited(self, seconds: float, *, new: bool = True) -> None:
        with self._lock:
            if new:
                self.waits += 1
            self.wait_seconds += seconds

    def backed_off(self, seconds: float) -> None:
        with self._lock:
            self.backoff += seconds

    def ended(self, tally: Tally, *, ok: bool, cancelled: bool) -> None:
        with self._lock:
            self._live.discard(tally)
            sent = tally.counted > 0
            if ok:
                self.ok += 1
            else:
                self.failed += 1
                if cancelled:
                    self.cancelled += 1
                if not sent:
                    self.unsent += 1

    def snapshot(self, **extra: Any) -> PoolStats:
        with self._lock:
            return PoolStats(
                calls=self.calls, ok=self.ok, failed=self.failed, cancelled=self.cancelled,
                in_flight=self.calls - self.ok - self.failed, attempts=self.attempts,
                retries=self.retries, failovers=self.failovers, unsent=self.unsent,
                waits=self.waits, wait_seconds=self.wait_seconds,
                retry_wait_seconds=self.backoff, **extra,
            )

"""A pool: many endpoints (keys, servers, backends) behind one call.

Each attempt of a call goes to one ready member, picked by the pool's strategy
(``_pool_pick``), and runs there as a one-attempt call of that member's endpoint: its
queue, pacing, pause, timeout and stats. A failure that another member may not share (429,
overload, 5xx, transport, timeout, an authentication or quota failure of the member, a full
queue) moves the call to another member when one is ready, else waits for one to come back
(bounded by the call's deadline and the pool's ``max_wait``); a failure of the call itself
(400, context too long) ends it. A call has one retry budget and one deadline, whichever
members its attempts run on. A stream may move only before its first chunk reaches the
caller. The decisions live here; waiting is done by the sync and async runners in
``_pool_run``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from ._backoff import backoff_delay, plan_wait
from ._errors import (
    CallError,
    ConfigurationError,
    ErrorKind,
    QueueFullError,
    RateLimitError,
    TimeoutError,
    UnsupportedOperationError,
)
from ._limits import DISABLED, PAUSED, PROBING, READY, UNHEALTHY
from ._pool_ops import PoolOperations
from ._pool_pick import STRATEGIES, Member, Picker, takes
from ._pool_stats import PoolCounter, PoolStats, Tally

if TYPE_CHECKING:
    from ._backend import Backend
    from ._endpoint import Endpoint

__all__ = ["Pool", "PoolSettings", "Run"]

_monotonic = time.monotonic
# Failures of one member that another may not share, though not retryable on the member
# (a server error a stream reports in an event before its first chunk is one).
_MEMBER_KINDS = frozenset({ErrorKind.AUTH, ErrorKind.QUOTA_EXCEEDED, ErrorKind.RATE_LIMITED,
                           ErrorKind.SERVER})
_PROBE_POLL = 0.05  # every member's probe is out: look again this soon


class PoolSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a pool retries and waits (its members' own retry settings do not apply: the
    pool makes one attempt at a time on a member and decides the next).

    ``max_retries`` extra attempts per call, over all members; ``deadline`` bounds a whole
    call (``None``: only the members' deadlines); ``max_wait`` is the longest a call waits
    for a member to come back when none is ready (every member paused, cooling down or
    paced), or for a Retry-After, before failing. Backoff between two attempts on the same
    member (when no other is ready) is ``initial_retry_delay * backoff_factor**(n-1)``,
    capped by ``max_retry_delay``, plus up to ``retry_jitter`` of it.
    """

    max_retries: int = 5
    deadline: float | None = None
    max_wait: float = 300.0
    initial_retry_delay: float = 1.0
    backoff_factor: float = 2.0
    max_retry_delay: float = 60.0
    retry_jitter: float = 0.1

    def __post_init__(self) -> None:
        checks = (
            ("max_retries", self.max_retries >= 0, "an integer >= 0"),
            ("deadline", self.deadline is None or (0 < self.deadline < math.inf),
             "a positive number of seconds or None"),
            ("max_wait", 0 <= self.max_wait < math.inf, "a number of seconds >= 0"),
            ("initial_retry_delay", 0 < self.initial_retry_delay < math.inf,
             "a positive number of seconds"),
            ("backoff_factor", 1 <= self.backoff_factor < math.inf, "a number >= 1"),
            ("max_retry_delay", 0 < self.max_retry_delay < math.inf,
             "a positive number of seconds"),
            ("retry_jitter", 0 <= self.retry_jitter <= 1, "a fraction between 0 and 1"),
        )
        for name, good, need in checks:
            if not good:
                raise ConfigurationError(
                    f"pool option {name!r} must be {need}, got {getattr(self, name)!r}")


class Run:
    """One pool call in progress: its deadline, attempts so far, last member and error, and
    the members that refused it in a way asking them again would not change (``refused``)."""

    __slots__ = ("attempts", "deadline_at", "last", "last_error", "needs", "operation", "probe",
                 "refused", "request_id", "tally", "waiting_since")

    def __init__(
        self, operation: str, request_id: str, deadline_at: float | None, tally: Tally,
        needs: frozenset[str] = frozenset(),
    ) -> None:
        self.operation = operation
        self.needs = needs
        self.tally = tally  # what the pool's counters hold of it
        self.request_id = request_id
        self.deadline_at = deadline_at
        self.attempts = 0
        self.last: Member | None = None
        self.last_error: CallError | None = None
        self.refused: set[Member] = set()
        self.probe = False  # the member last picked was taken as its endpoint's probe
        self.waiting_since: float | None = None  # no member could take it since then


MemberSpec = tuple[Any, str] | tuple[Any, str, float]



class Pool(PoolOperations):
    """Several endpoints behind one call. Make one with ``Registry().pool(...)``.

    The same operations and arguments as a :class:`Backend` (``chat``, ``achat``,
    ``stream_chat``, ``embed``, ``invoke``...), without ``endpoint_id``: the pool picks the
    member for each attempt. Each member uses its own endpoint's ``model`` unless the call
    names one (then every member is asked for that model). Members can be added and removed
    while calls run.
    """

    def __init__(
        self,
        members: Iterable[MemberSpec] = (),
        *,
        strategy: str = "least-busy",
        resolve: Callable[[str], Backend] | None = None,
        **options: Any,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigurationError(
                f"unknown pool strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
        try:
            self.settings = msgspec.convert(options, PoolSettings, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigurationError(f"invalid pool option: {exc}") from None
        self.strategy = strategy
        self._resolve = resolve
        self._lock = threading.Lock()
        self._picker = Picker(strategy)
        self._members: tuple[Member, ...] = ()
        self.counter = PoolCounter()
        for spec in members:
            self.add(*spec)

    def __repr__(self) -> str:
        keys = ", ".join(m.key for m in self._members)
        return f"<Pool {self.strategy} [{keys}]>"

    # -- members -------------------------------------------------------------------------

    def _backend(self, backend: Any) -> Backend:
        if isinstance(backend, str):
            if self._resolve is None:
                raise ConfigurationError(
                    f"member {backend!r} is named by its backend: make the pool with "
                    "Registry().pool(...) or pass the Backend itself")
            return self._resolve(backend)
        from ._backend import Backend  # noqa: PLC0415 - a cycle: Backend imports nothing here

        if not isinstance(backend, Backend):
            raise ConfigurationError(
                f"a pool member is (backend name or Backend, endpoint_id[, weight]), "
                f"got a {type(backend).__name__} for the backend")
        return backend

    def add(self, backend: Any, endpoint_id: str, weight: float = 1.0) -> None:
        """Add a member: an endpoint of a backend (the Backend, or its name in the pool's
        Registry), with a ``weight`` for the ``weighted`` strategy."""
        b = self._backend(backend)
        b._endpoint(endpoint_id)
        if not (isinstance(weight, int | float) and 0 < weight < math.inf):
            raise ConfigurationError(f"a member's weight must be a positive number, got {weight!r}")
        member = Member(b, endpoint_id, float(weight))
        with self._lock:
            if any(m.backend is b and m.endpoint_id == endpoint_id for m in self._members):
                raise ConfigurationError(f"{member.key} is already a member of this pool")
            self._members = (*self._members, member)

    def remove(self, backend: Any, endpoint_id: str) -> None:
        """Remove a member; its calls already running finish where they are."""
        b = self._backend(backend)
        with self._lock:
            kept = tuple(m for m in self._members
                         if not (m.backend is b and m.endpoint_id == endpoint_id))
            if len(kept) == len(self._members):
                raise ConfigurationError(f"{b.name}/{endpoint_id} is not a member of this pool")
            self._members = kept

    def members(self) -> list[str]:
        """The members, as ``"backend/endpoint_id"``, in pool order."""
        return [m.key for m in self._members]

    # -- stats ---------------------------------------------------------------------------

    def get_stats(self) -> PoolStats:
        """The pool's counters, each member's endpoint stats and how many are in each state."""
        members: dict[str, Any] = {}
        states = {READY: 0, PAUSED: 0, UNHEALTHY: 0, DISABLED: 0}
        for m in self._members:
            try:
                stats = m.backend.get_stats(m.endpoint_id)
            except ConfigurationError:  # the endpoint was removed from its backend
                continue
            members[m.key] = stats
            state = UNHEALTHY if stats.state == PROBING else stats.state
            states[state] = states.get(state, 0) + 1
        return self.counter.snapshot(members=members, **states)

    def reset_stats(self) -> None:
        """Zero the pool's counters and its members' endpoint counters."""
        self.counter.reset()
        for m in self._members:
            try:
                m.backend.reset_stats(m.endpoint_id)
            except ConfigurationError:
                continue

    # -- decisions (no waiting here: the runners wait) -------------------------------------

    def check(self, operation: str, needs: frozenset[str] = frozenset()) -> None:
        """Refuse at once an operation no member offers, or a call needing what no member
        takes in it (tools, a response format, images)."""
        if not any(operation in m.backend.info.operations for m in self._members):
            if not self._members:
                raise ConfigurationError("the pool has no members")
            raise UnsupportedOperationError(f"no member of the pool offers {operation!r}")
        if needs and not any(takes(m, operation, needs) for m in self._members):
            raise ConfigurationError(
                f"no member of the pool takes {' and '.join(sorted(needs))} in {operation!r}")

    def begin(self, operation: str, request_id: str, needs: frozenset[str] = frozenset()) -> Run:
        """Start (and count) a call of ``operation`` (:meth:`check` it first)."""
        deadline = self.settings.deadline
        return Run(operation, request_id, None if deadline is None else _monotonic() + deadline,
                   self.counter.started(), needs)

    def pick(self, run: Run) -> Member | float:
        """A member to try now (taken: a cooled-down one becomes its probe), or the seconds
        to wait before asking again. Raises when no member can take the call in time."""
        now = _monotonic()
        ready: list[Member] = []
        endpoints: list[Endpoint] = []
        soonest = math.inf
        probing = False
        for m, endpoint in self._live(run):
            at = endpoint.ready_at(now)
            if at <= now:
                ready.append(m)
                endpoints.append(endpoint)
            elif at < soonest:
                soonest = at
            elif at == math.inf and endpoint.gate.probing:
                probing = True
        if len(ready) > 1 and run.last in ready:  # not the same one again while others are ready
            i = ready.index(run.last)
            del ready[i], endpoints[i]
        with self._lock:
            while ready:
                member = self._picker.choose(ready, endpoints)
                i = ready.index(member)
                taken = endpoints[i].take()
                if taken:
                    run.probe = taken == "probe"
                    run.waiting_since = None
                    return member
                # out since we looked (another call took its probe): ask again soon
                probing = True
                del ready[i], endpoints[i]
        if soonest < math.inf:
            return self._wait_for(run, now, soonest)
        if probing:
            return self._wait_for(run, now, now + _PROBE_POLL, probe=True)
        if run.last_error is not None:
            raise run.last_error
        raise ConfigurationError(
            "no member of the pool can take calls: every one is disabled by an "
            "authentication failure (update_endpoint with a new key brings one back) or "
            "was removed")

    def _live(self, run: Run) -> Iterator[tuple[Member, Endpoint]]:
        """The members that may take ``run``'s next attempt, with their live endpoints:
        they offer its operation, have not refused it for good, and are still there."""
        for m in self._members:
            if run.operation not in m.backend.info.operations or m in run.refused:
                continue
            if run.needs and not takes(m, run.operation, run.needs):
                continue
            try:
                endpoint = m.endpoint
            except ConfigurationError:  # removed from its backend
                continue
            yield m, endpoint

    def _wait_for(self, run: Run, now: float, until: float, *, probe: bool = False) -> float:
        """The wait until ``until`` (a probe's: only until the next look), or raise when it
        would end past the call's deadline or ``max_wait`` after the call began to wait."""
        if run.deadline_at is not None and until >= run.deadline_at:
            raise run.last_error if run.last_error is not None else self._timeout(run)
        since = now if run.waiting_since is None else run.waiting_since
        limit = since + self.settings.max_wait
        if probe and now < limit:  # the probe's outcome is not due at a known time
            until = min(until, limit)
        if until > limit:
            waited = f" after waiting {now - since:.3g}s" if now > since else ""
            if probe:
                what = ("every member of the pool that could take the call is cooling down "
                        "with its one probe call out, and none came back")
                retry_after = None
            else:
                what = (f"every member of the pool is paused or cooling down for "
                        f"{until - now:.3g}s more")
                retry_after = until - now
            err = RateLimitError(
                f"{what}{waited}: longer than the pool's max_wait ({self.settings.max_wait}s)",
                request_id=run.request_id, retry_after=retry_after,
            )
            err.retryable = False
            raise err
        run.waiting_since = since
        return until - now

    def _timeout(self, run: Run) -> TimeoutError:
        err = TimeoutError(
            "the pool's deadline would pass before any member can take the call",
            request_id=run.request_id,
        )
        err.retryable = False
        return err

    def attempting(self, run: Run, member: Member) -> None:
        """Count an attempt of ``run`` about to go to ``member``."""
        self.counter.attempt(run.tally, failover=run.last is not None and run.last is not member)
        run.attempts += 1
        run.last = member

    def after_failure(self, run: Run, member: Member, exc: CallError) -> float | None:
        """``exc`` ended an attempt on ``member``: the wait before the next attempt (0:
        go to another member now), or ``None`` to end the call with ``exc``."""
        run.last_error = exc
        now = _monotonic()
        if run.deadline_at is not None and now >= run.deadline_at:
            return None  # the call's own deadline has passed
        # A timeout that is not retryable is a deadline: the pool's has not passed, so it is
        # the member's (its own, or its pacing would hold the call past the pool's).
        refusal = exc.kind is ErrorKind.TIMEOUT or exc.kind in _MEMBER_KINDS or isinstance(
            exc, QueueFullError)
        if not (exc.retryable or refusal):
            return None  # the call itself is refused (400, context too long)
        if not exc.retryable:  # the same member would refuse it again
            run.refused.add(member)
        s = self.settings
        if run.attempts > s.max_retries:
            return None
        others = [e for m, e in self._live(run) if m is not member]
        if any(e.ready_at(now) <= now for e in others):
            return 0.0
        if not exc.retryable:  # nothing else to try, and the same member would refuse again,
            return 0.0 if others else None  # or the others' comeback is waited by pick()
        return self._again(run, member, exc, now)

    def _again(self, run: Run, member: Member, exc: CallError, now: float) -> float | None:
        """The wait before asking ``member`` again after the retryable ``exc`` (no other
        member is ready): no sooner than the backoff, as on one endpoint, whether or not
        its answer paused it (a Retry-After of 0, or one not honored, does not)."""
        s = self.settings
        remaining = None if run.deadline_at is None else run.deadline_at - now
        retry_after = exc.retry_after
        if retry_after is not None:
            try:
                endpoint = member.endpoint
            except ConfigurationError:
                return 0.0
            paused = endpoint.ready_at(now) - now
            if paused > 0:  # pick() waits for the pause (or another member back sooner)
                extra = max(backoff_delay(
                    run.attempts, initial=s.initial_retry_delay, factor=s.backoff_factor,
                    max_delay=s.max_retry_delay, jitter=s.retry_jitter) - paused, 0.0)
                return None if remaining is not None and extra >= remaining else extra
            if not endpoint.config.settings.honor_retry_after:
                retry_after = None
        return plan_wait(
            run.attempts, initial=s.initial_retry_delay, factor=s.backoff_factor,
            max_delay=s.max_retry_delay, jitter=s.retry_jitter, retry_after=retry_after,
            remaining=remaining,
        )

"""Per-endpoint usage statistics, exact under threads and coroutines."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import msgspec

from ._types import Usage

__all__ = ["Stats", "StatsCounter"]


class Stats(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of an endpoint's counters, or their sum over a backend's endpoints.

    ``total_requests`` counts calls (not attempts): it equals ``successful_requests +
    failed_requests + in_flight + queued``. ``failed_requests`` counts every call that ended
    without a result, including those ``rejected`` (queue full), those ``unsent`` (a pool's
    call that waited here and found the endpoint unhealthy or disabled when its turn came:
    it went to another member, nothing was sent here) and those ``cancelled`` (the
    task cancelled, ``KeyboardInterrupt``, a stream closed before its end, or a call whose
    event loop was closed while it waited). ``retries`` counts the extra attempts and
    ``retry_wait_seconds`` the time actually spent waiting between attempts. Read as
    attributes or as ``stats["name"]``.
    ``endpoints_count`` is 1 for one endpoint and the number summed for an aggregate.

    What the endpoint knows of its limits: ``state`` (``ready``, ``paused``, ``unhealthy``,
    ``probing`` or ``disabled``; an aggregate: the state they share, else ``mixed``),
    ``paused_until`` (a ``time.time()`` when a pause ends, ``None`` when not paused; the
    latest in an aggregate), ``consecutive_failures`` (transport failures, timeouts, 5xx in
    a row; the most in an aggregate), ``rate_limited`` (answers refusing for a limit: 429,
    overload), ``paced`` (attempts held back by pacing or a pause rather than sent into a
    refusal) and ``paced_seconds`` (the time they were held).
    """

    total_requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    rejected: int = 0
    unsent: int = 0
    cancelled: int = 0
    retries: int = 0
    queued: int = 0
    in_flight: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    retry_wait_seconds: float = 0.0
    latency_seconds_total: float = 0.0
    latency_seconds_max: float = 0.0
    endpoints_count: int = 1
    state: str = "ready"
    paused_until: float | None = None
    consecutive_failures: int = 0
    rate_limited: int = 0
    paced: int = 0
    paced_seconds: float = 0.0

    @property
    def average_latency_seconds(self) -> float:
        """Mean latency of the finished calls (queue wait included)."""
        done = self.successful_requests + self.failed_requests - self.rejected
        return self.latency_seconds_total / done if done else 0.0

    def __getitem__(self, name: str) -> Any:
        if name in self.__struct_fields__ or name == "average_latency_seconds":
            return getattr(self, name)
        raise KeyError(name)

    def keys(self) -> tuple[str, ...]:
        """The field names, so ``dict(stats)`` works."""
        return self.__struct_fields__

    def to_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (with the derived average latency)."""
        out: dict[str, Any] = msgspec.structs.asdict(self)
        out["average_latency_seconds"] = self.average_latency_seconds
        return out

    @classmethod
    def sum(cls, parts: Iterable[Stats]) -> Stats:
        """The aggregate of several endpoints' stats."""
        totals: dict[str, Any] = dict.fromkeys(_SUMMED, 0)
        totals["latency_seconds_max"] = 0.0
        totals["consecutive_failures"] = 0
        states: set[str] = set()
        paused: list[float] = []
        count = 0
        for part in parts:
            count += 1
            for name in _SUMMED:
                totals[name] += getattr(part, name)
            totals["latency_seconds_max"] = max(totals["latency_seconds_max"],
                                                part.latency_seconds_max)
            totals["consecutive_failures"] = max(totals["consecutive_failures"],
                                                 part.consecutive_failures)
            states.add(part.state)
            if part.paused_until is not None:
                paused.append(part.paused_until)
        totals["endpoints_count"] = count
        totals["state"] = "ready" if states <= {"ready"} else "mixed" if len(states) > 1 else (
            next(iter(states)))
        totals["paused_until"] = max(paused) if paused else None
        return cls(**totals)


_SUMMED = tuple(
    name for name in Stats.__struct_fields__
    if name not in {"latency_seconds_max", "endpoints_count", "state", "paused_until",
                    "consecutive_failures"}
)


class StatsCounter:
    """The counters of one endpoint's finished calls.

    They change under the endpoint's lock, the one its queue uses (see :class:`Endpoint`),
    so a call is admitted and counted, or finished and its slot handed over, in one step;
    calls queued and in flight are read from the queue itself.
    """

    __slots__ = (
        "_lock",
        "cancelled",
        "failed",
        "input_tokens",
        "latency_max",
        "latency_total",
        "output_tokens",
        "reasoning_tokens",
        "rejected",
        "retries",
        "retry_wait",
        "successful",
        "total",
        "total_tokens",
        "unsent",
    )

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.total = 0
        self.reset_locked(live=0)

    def reset_locked(self, *, live: int) -> None:
        """Zero the counters of finished calls; the ``live`` calls (queued or in flight)
        stay counted in the total."""
        self.total = live
        self.successful = self.failed = self.rejected = self.cancelled = self.retries = 0
        self.unsent = 0
        self.input_tokens = self.output_tokens = self.total_tokens = self.reasoning_tokens = 0
        self.retry_wait = self.latency_total = self.latency_max = 0.0

    def admitted_locked(self) -> None:
        """A call entered (into flight or the queue)."""
        self.total += 1

    def rejected_locked(self) -> None:
        """A call found the queue full."""
        self.total += 1
        self.failed += 1
        self.rejected += 1

    def retried(self) -> None:
        """An attempt failed and another is scheduled."""
        with self._lock:
            self.retries += 1

    def waited(self, seconds: float) -> None:
        """``seconds`` passed waiting between two attempts (or until the call ended)."""
        with self._lock:
            self.retry_wait += seconds

    def finished_locked(
        self, *, ok: bool, latency: float, usage: Usage | None, cancelled: bool = False
    ) -> None:
        """A call ended, with a result (``ok``) or an error (``cancelled``: by cancellation)."""
        if ok:
            self.successful += 1
        else:
            self.failed += 1
            if cancelled:
                self.cancelled += 1
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
            self.total_tokens += usage.total_tokens
            self.reasoning_tokens += usage.reasoning_tokens
        self.latency_total += latency
        self.latency_max = max(self.latency_max, latency)

    def snapshot_locked(self, *, queued: int, in_flight: int, **limits: Any) -> Stats:
        """The counters now, as a frozen :class:`Stats` (``limits``: what the endpoint's
        gate says: state, paused_until, consecutive_failures, rate_limited, paced...)."""
        return Stats(
            **limits,
            total_requests=self.total,
            successful_requests=self.successful,
            failed_requests=self.failed,
            rejected=self.rejected,
            unsent=self.unsent,
            cancelled=self.cancelled,
            retries=self.retries,
            queued=queued,
            in_flight=in_flight,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
            reasoning_tokens=self.reasoning_tokens,
            retry_wait_seconds=self.retry_wait,
            latency_seconds_total=self.latency_total,
            latency_seconds_max=self.latency_max,
            endpoints_count=1,
        )

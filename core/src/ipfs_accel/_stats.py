"""Per-endpoint usage statistics, exact under threads and coroutines."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from ._observe import Observation

if TYPE_CHECKING:
    from ._queue import Waiter
    from ._types import Usage

__all__ = ["Counted", "Stats", "StatsCounter"]

_monotonic = time.monotonic


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

    Provider batches: each of their steps (a submit, which for OpenAI's API is an upload and
    the create it leads to, a poll, a cancel, a download) is a request here like any
    other; ``batch_results`` counts the answers read from their results, and their tokens
    count in ``input_tokens`` / ``output_tokens`` / ``total_tokens`` as online
    calls' do, and also in ``batch_input_tokens`` / ``batch_output_tokens`` (the tokens
    billed at the batch price).
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
    batch_results: int = 0
    batch_input_tokens: int = 0
    batch_output_tokens: int = 0

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
    """The counters of one endpoint's calls, told what happens to each call by its
    :class:`Counted` observation (the same events any :class:`~ipfs_accel.Observer` hears).

    They change under the endpoint's lock, the one its queue uses (see :class:`Endpoint`):
    a call is counted queued or in flight in the step that admits it, and moves between
    those and its end under the same lock, so a snapshot never sees a call half-way
    (``total == successful + failed + in_flight + queued`` always holds).
    """

    __slots__ = (
        "batch_in",
        "batch_out",
        "batch_results",
        "cancelled",
        "failed",
        "in_flight",
        "input_tokens",
        "latency_max",
        "latency_total",
        "lock",
        "output_tokens",
        "queued",
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
        self.lock = lock
        self.in_flight = self.queued = 0
        self.reset_locked()

    def reset_locked(self) -> None:
        """Zero the counters of finished calls; the calls queued or in flight stay counted
        in the total."""
        self.total = self.in_flight + self.queued
        self.successful = self.failed = self.rejected = self.cancelled = self.retries = 0
        self.unsent = 0
        self.input_tokens = self.output_tokens = self.total_tokens = self.reasoning_tokens = 0
        self.retry_wait = self.latency_total = self.latency_max = 0.0
        self.batch_results = self.batch_in = self.batch_out = 0

    def batch_used_locked(self, usage: Usage) -> None:
        """A batch's answer was read: its tokens (at the batch price)."""
        self.batch_results += 1
        self.batch_in += usage.input_tokens
        self.batch_out += usage.output_tokens
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.total_tokens += usage.total_tokens
        self.reasoning_tokens += usage.reasoning_tokens

    def admitted_locked(self, *, queued: bool) -> None:
        """A call entered: into the queue (``queued``) or straight into flight."""
        self.total += 1
        if queued:
            self.queued += 1
        else:
            self.in_flight += 1

    def rejected_locked(self) -> None:
        """A call found the queue full."""
        self.total += 1
        self.failed += 1
        self.rejected += 1

    def dead_locked(self) -> None:
        """A queued call's event loop closed under it: it ends here, cancelled (its
        observation's late end, if any, counts nothing again)."""
        self.queued -= 1
        self.failed += 1
        self.cancelled += 1

    def snapshot_locked(self, **limits: Any) -> Stats:
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
            queued=self.queued,
            in_flight=self.in_flight,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
            reasoning_tokens=self.reasoning_tokens,
            retry_wait_seconds=self.retry_wait,
            latency_seconds_total=self.latency_total,
            latency_seconds_max=self.latency_max,
            endpoints_count=1,
            batch_results=self.batch_results,
            batch_input_tokens=self.batch_in,
            batch_output_tokens=self.batch_out,
        )


_RETRY_WAITS = frozenset(("backoff", "retry-after"))  # the waits between two attempts


class Counted(Observation):
    """One call as its endpoint's stats follow it: an :class:`Observation` like any
    observer's, counting what it hears and passing every event on to ``then`` (the
    observers' observation of the call, if any; a pool's, for a pool's attempt, whose end
    the pool tells: ``ends`` false).

    Created by the engine once the call is admitted (counted queued or in flight then);
    ``dequeued`` moves it into flight, ``retrying`` counts a retry and each backoff or
    Retry-After wait its time, ``end`` counts the outcome (an error that is not an ``Exception``, such as
    cancellation or a stream closed early, counts as cancelled), its tokens and latency.
    """

    __slots__ = ("counter", "ends", "running", "start", "summary", "then", "waiter")

    def __init__(self, counter: StatsCounter, start: float, waiter: Waiter | None,
                 then: Observation | None, *, ends: bool) -> None:
        self.counter = counter
        self.start = start
        self.waiter = waiter  # its place in the queue, if it had to wait
        self.running = waiter is None
        self.then = then
        self.ends = ends
        self.summary: Any = None  # a stream's reader, once it ended

    def queued(self) -> None:
        if self.then is not None:
            self.then.queued()

    def dequeued(self, waited: float) -> None:
        c = self.counter
        with c.lock:
            if not self.running:
                self.running = True
                c.queued -= 1
                c.in_flight += 1
        if self.then is not None:
            self.then.dequeued(waited)

    def attempt(self, endpoint_id: str, server: tuple[str, int | None] | None,
                ) -> dict[str, str] | None:
        return None if self.then is None else self.then.attempt(endpoint_id, server)

    def attempt_end(self, error: BaseException | None, status: int | None = None) -> None:
        if self.then is not None:
            self.then.attempt_end(error, status)

    def retrying(self, seconds: float, reason: str) -> None:
        c = self.counter
        with c.lock:
            c.retries += 1
        if self.then is not None:
            self.then.retrying(seconds, reason)

    def wait(self, seconds: float, reason: str) -> None:
        if reason in _RETRY_WAITS:
            c = self.counter
            with c.lock:
                c.retry_wait += seconds
        if self.then is not None:
            self.then.wait(seconds, reason)

    @property
    def wants_chunks(self) -> bool:  # type: ignore[override]  # derived from ``then``
        return self.then is not None and self.then.wants_chunks

    def first_chunk(self) -> None:
        if self.then is not None:
            self.then.first_chunk()

    def chunk(self, chunk: Any) -> None:
        if self.then is not None:
            self.then.chunk(chunk)

    def streamed(self, summary: Any) -> None:
        self.summary = summary  # its usage counts, even if the stream ends in an error
        if self.then is not None:
            self.then.streamed(summary)

    def end(self, result: Any, error: BaseException | None) -> None:
        self.count_end(result, error)
        if self.ends and self.then is not None:
            self.then.end(result, error)

    def count_end(self, result: Any, error: BaseException | None) -> None:
        """Count the call's end (nothing if its queue place died with its event loop: the
        queue counted it then)."""
        waiter = self.waiter
        if waiter is not None and waiter.dead:
            return
        latency = _monotonic() - self.start
        usage: Usage | None = getattr(result if result is not None else self.summary,
                                      "usage", None)
        c = self.counter
        with c.lock:
            if self.running:
                c.in_flight -= 1
            else:
                c.queued -= 1
            if error is None:
                c.successful += 1
            else:
                c.failed += 1
                if not isinstance(error, Exception):
                    c.cancelled += 1
            if usage is not None:
                c.input_tokens += usage.input_tokens
                c.output_tokens += usage.output_tokens
                c.total_tokens += usage.total_tokens
                c.reasoning_tokens += usage.reasoning_tokens
            c.latency_total += latency
            c.latency_max = max(c.latency_max, latency)

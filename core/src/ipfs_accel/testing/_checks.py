"""The conformance checks: each runs one feature of one backend against a :class:`FaultServer`.

Every check builds a fresh backend from the case's registry, scripts the server, makes real
calls and compares what the server received and what the backend reports with what the
feature promises. A check returns a :class:`CheckResult`; it never raises.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from .._backend import Backend
from .._errors import CallError, ErrorKind, QueueFullError
from .._registry import Registry
from .._types import Failure
from .._wire import decode_json
from ._case import Case, CheckResult
from ._server import Action, FaultServer, Hold, RecordedRequest, Reply
from ._totality import failures, invalid
from ._waits import planned_waits

__all__ = ["CHECKS", "Check", "run_check", "run_checks"]

# Fast, jitter-free retries: real waits, but short and exactly predictable.
_FAST: dict[str, Any] = {
    "initial_retry_delay": 0.01, "max_retry_delay": 0.02, "retry_jitter": 0.0, "timeout": 5.0,
}
_SLACK = 0.3  # how much later than planned a retry may arrive (scheduling, a busy CI)


class _Fail(Exception):
    """A check's expectation was not met; the message is the reason shown."""


class _Run:
    """One check's context: the case, fresh backends, test keys to scrub from reasons."""

    def __init__(self, case: Case, registry: Registry) -> None:
        self.case = case
        self.registry = registry
        self.keys: list[str] = []
        self.backends: list[Backend] = []

    def key(self) -> str:
        key = "sk-conformance-" + secrets.token_hex(8)
        self.keys.append(key)
        return key

    def backend(self) -> Backend:
        backend = self.registry.get(self.case.backend)
        self.backends.append(backend)
        return backend

    def endpoint(
        self, backend: Backend, server: FaultServer, *, key: str | None = None, **settings: Any
    ) -> str:
        values = {**_FAST, **self.case.settings, **settings}
        values["base_url"] = server.base_url
        values["api_key"] = key or self.key()
        return backend.create_endpoint(**values)

    def call(self, backend: Backend, endpoint_id: str, request_id: str | None = None) -> Any:
        try:
            return self.case.call(backend, endpoint_id, request_id or _rid())
        except CallError as exc:
            if isinstance(exc, QueueFullError):
                raise
            raise _Fail(
                f"a call that should succeed raised {type(exc).__name__} after "
                f"{exc.attempts or '?'} attempt(s): {exc}"
            ) from exc

    def fail_call(
        self, backend: Backend, endpoint_id: str, request_id: str | None = None
    ) -> CallError:
        try:
            result = self.case.call(backend, endpoint_id, request_id or _rid())
        except CallError as exc:
            return exc
        raise _Fail(f"the call should have failed, it returned {type(result).__name__}")

    def scrub(self, text: str) -> str:
        for key in self.keys:
            text = text.replace(key, "********")
        return text

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def _rid() -> str:
    return "conformance-" + secrets.token_hex(6)


@contextmanager
def _server(*actions: Action) -> Iterator[FaultServer]:
    with FaultServer() as server:
        server.script(actions)
        yield server


def _expect(ok: bool, reason: str) -> None:
    if not ok:
        raise _Fail(reason)


def _retry_after(reply: Reply, seconds: str) -> Reply:
    return dataclasses.replace(reply, headers={**reply.headers, "retry-after": seconds})


# -- counters -----------------------------------------------------------------------------


def check_counters(run: _Run) -> str:
    """4 calls on one endpoint (3 succeed, 1 fails): its counters exact, the other's zero."""
    case = run.case
    tin, tout = case.tokens
    _expect(tin > 0 or tout > 0,
            f"the case declares tokens={case.tokens}: with no usage in its success reply the "
            "token counters are not checked (declare the usage the reply carries)")
    backend = run.backend()
    with _server(case.success, case.success, case.bad_request, case.success) as server:
        used = run.endpoint(backend, server, max_retries=0)
        idle = run.endpoint(backend, server, max_retries=0)
        for _ in range(2):
            run.call(backend, used)
        run.fail_call(backend, used)
        run.call(backend, used)
        _expect(len(server.requests) == 4, f"4 calls sent {len(server.requests)} requests")
    s = backend.get_stats(used)
    got = (s.total_requests, s.successful_requests, s.failed_requests,
           s.input_tokens, s.output_tokens, s.total_tokens)
    want = (4, 3, 1, 3 * tin, 3 * tout, 3 * (tin + tout))
    names = ("total_requests", "successful_requests", "failed_requests",
             "input_tokens", "output_tokens", "total_tokens")
    wrong = [f"{n}={g} (expected {w})" for n, g, w in zip(names, got, want, strict=True) if g != w]
    _expect(not wrong, "endpoint counters wrong: " + ", ".join(wrong))
    other = backend.get_stats(idle)
    _expect(other.total_requests == 0 and other.total_tokens == 0,
            f"the unused endpoint moved: total_requests={other.total_requests}, "
            f"total_tokens={other.total_tokens}")
    agg = backend.get_stats()
    _expect(agg.total_requests == 4 and agg.endpoints_count == 2,
            f"aggregate wrong: total_requests={agg.total_requests}, "
            f"endpoints_count={agg.endpoints_count}")
    return (f"4 calls -> total 4, ok 3, failed 1, tokens {3 * tin}+{3 * tout}; "
            "second endpoint untouched; aggregate sums both")


# -- keys ---------------------------------------------------------------------------------


def _carries(request: RecordedRequest, secret: str) -> bool:
    blob = request.body.decode("utf-8", "replace") + request.path + repr(request.query)
    return secret in blob or any(secret in v for v in request.headers.values())


def check_keys(run: _Run) -> str:
    """Two endpoints, two keys: each request carries its own key in the API's header, only."""
    case = run.case
    _expect(case.auth is not None, "the case declares no auth header: the plugin sends no key")
    assert case.auth is not None
    header, template = case.auth
    backend = run.backend()
    key_a, key_b = run.key(), run.key()
    with _server(*[case.success] * 4) as server:
        eid_a = run.endpoint(backend, server, key=key_a, max_retries=0)
        eid_b = run.endpoint(backend, server, key=key_b, max_retries=0)
        order = [(eid_a, key_a, key_b), (eid_b, key_b, key_a)] * 2
        for eid, _, _ in order:
            run.call(backend, eid)
        requests = server.requests
    _expect(len(requests) == 4, f"4 calls sent {len(requests)} requests")
    for n, (request, (eid, own, other)) in enumerate(zip(requests, order, strict=True), 1):
        sent = request.header(header)
        _expect(sent is not None, f"request {n} ({eid}) has no {header!r} header")
        _expect(sent == template.format(key=own),
                f"request {n} ({eid}): {header!r} is not {template!r} with its own key")
        _expect(not _carries(request, other), f"request {n} ({eid}) carries the other key")
    # A server that echoes the key must not get it into the error.
    with _server(Reply(401, json={"error": {"message": f"invalid api key {key_a}"}})) as server:
        eid = run.endpoint(backend, server, key=key_a, max_retries=0)
        err = run.fail_call(backend, eid)
    text = f"{err} {err!r} {err.message} {err.body!r} {err.args!r}"
    _expect(key_a not in text, "an error repeated the endpoint's API key")
    _expect(key_a not in repr(backend.get_endpoint(eid)), "the endpoint's repr shows its key")
    return (f"key in {header!r} as {template!r}; two endpoints, four requests, each with only "
            "its own key; no key in errors or reprs")


# -- backoff ------------------------------------------------------------------------------


def _backoff_rounds(run: _Run, backend: Backend, script: tuple[Action, ...],
                    **settings: Any) -> tuple[list[float], list[float]]:
    """One call through ``script``: the waits the core planned, and the gaps the server saw."""
    rid = _rid()
    with _server(*script) as server, planned_waits(rid) as planned:
        eid = run.endpoint(backend, server, **settings)
        run.call(backend, eid, rid)
        times = [r.received_at for r in server.requests]
    _expect(len(times) == len(script),
            f"expected {len(script)} attempts ({len(script) - 1} retries), "
            f"the server saw {len(times)}")
    _expect(len(planned) == len(script) - 1,
            f"{len(script) - 1} retries, but the retry loop reported {len(planned)} planned "
            "waits through stamina's on_retry hooks")
    return list(planned), [b - a for a, b in itertools.pairwise(times)]


def _waited_as_planned(planned: list[float], gaps: list[float]) -> None:
    for n, (want, gap) in enumerate(zip(planned, gaps, strict=True), 1):
        _expect(want - 0.01 <= gap <= want + _SLACK,
                f"wait {n} planned {want:.3f}s, but the next attempt came {gap:.3f}s later")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def check_backoff(run: _Run) -> str:
    """Waits grow from the initial delay, honour Retry-After, jitter within bounds, stop at the
    cap, and the call gives up after max_retries + 1 attempts."""
    case = run.case
    backend = run.backend()
    # 1. No jitter: exactly 0.1, 0.2, then Retry-After: 1 beats the backoff of 0.4.
    script = (case.overloaded, case.overloaded, _retry_after(case.rate_limited, "1"), case.success)
    planned, gaps = _backoff_rounds(
        run, backend, script, max_retries=3, initial_retry_delay=0.1, backoff_factor=2.0,
        max_retry_delay=0.4, retry_jitter=0.0)
    for n, (got, want) in enumerate(zip(planned, (0.1, 0.2, 1.0), strict=True), 1):
        _expect(abs(got - want) < 1e-6,
                f"wait {n} was planned at {got:.3f}s, configured {want:.3f}s"
                + (" (Retry-After: 1 not honoured)" if n == 3 else ""))
    _waited_as_planned(planned, gaps)
    # 2. Jitter 1.0 and a cap of 0.1: bases 0.02, 0.04, 0.08, then 0.1 (not 0.16, 0.32).
    initial, cap = 0.02, 0.1
    script2 = (*[case.overloaded] * 5, case.success)
    jittered, gaps2 = _backoff_rounds(
        run, backend, script2, max_retries=5, initial_retry_delay=initial, backoff_factor=2.0,
        max_retry_delay=cap, retry_jitter=1.0)
    bases = [min(initial * 2 ** n, cap) for n in range(5)]
    for n, (got, base) in enumerate(zip(jittered, bases, strict=True), 1):
        _expect(got <= cap + 1e-9,
                f"wait {n} was planned at {got:.3f}s, above max_retry_delay={cap}")
        _expect(base - 1e-9 <= got <= 2 * base + 1e-9,
                f"wait {n} was planned at {got:.3f}s: with retry_jitter=1.0 it must lie "
                f"between {base:.3f}s and {2 * base:.3f}s")
    below_cap = [(got, base) for got, base in zip(jittered, bases, strict=True) if base < cap]
    _expect(any(got > base + 1e-9 for got, base in below_cap),
            f"retry_jitter=1.0, yet the waits {_seconds(jittered)}s are exactly the "
            "base delays: no jitter was added")
    _waited_as_planned(jittered, gaps2)
    # 3. max_retries=2: three attempts, then the error says so.
    with _server(*[case.overloaded] * 4) as server:
        eid = run.endpoint(backend, server, max_retries=2, initial_retry_delay=0.01,
                           max_retry_delay=0.02, retry_jitter=0.0)
        err = run.fail_call(backend, eid)
        seen = len(server.requests)
    _expect(seen == 3, f"max_retries=2 made {seen} attempts, expected 3")
    _expect(err.attempts == 3, f"the error says attempts={err.attempts}, expected 3")
    retries = backend.get_stats().retries
    _expect(retries == 10, f"stats count {retries} retries, expected 3 + 5 + 2")
    return (f"waits {_seconds(gaps)}s for configured 0.10, 0.20 and Retry-After 1.00; "
            f"jitter 1.0 under a 0.10 s cap planned {_seconds(jittered)}s; "
            "gave up after max_retries+1 = 3 attempts")


# -- queue --------------------------------------------------------------------------------


def _poll(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait until ``cond()`` holds (the endpoint offers no event to wait on)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def _queued(backend: Backend, endpoint_id: str, count: int) -> bool:
    return backend.get_stats(endpoint_id).queued == count


def _queued_or_sent(backend: Backend, endpoint_id: str, server: FaultServer, count: int) -> bool:
    return _queued(backend, endpoint_id, count) or len(server.requests) > 2


def _refused(run: _Run, backend: Backend, endpoint_id: str) -> float:
    """A call on a full queue fails at once: how long it took to be refused."""
    start = time.monotonic()
    try:
        run.call(backend, endpoint_id)
    except QueueFullError:
        refused = time.monotonic() - start
    else:
        raise _Fail("a 5th call with 2 running and 2 queued was not refused")
    _expect(refused < 1.0, f"the 5th call was refused only after {refused:.3f}s")
    return refused


def check_queue(run: _Run) -> str:
    """2 slots, 2 queue places: the server never sees 3 at once, a 5th call is refused at
    once, and queued calls start in the order they arrived."""
    case = run.case
    backend = run.backend()
    gates = [threading.Event() for _ in range(4)]  # one per request, in arrival order
    outcomes: dict[int, str] = {}
    done: queue.Queue[int] = queue.Queue()  # calls, in the order they ended

    def finished() -> int:
        try:
            return done.get(timeout=10)
        except queue.Empty:
            raise _Fail(f"a released call did not end: {backend.get_stats(eid)}") from None

    try:
        with _server(*[Hold(release=gate, then=case.success) for gate in gates]) as server:
            eid = run.endpoint(backend, server, max_concurrent_requests=2, queue_size=2,
                               max_retries=0)

            def one(n: int) -> None:
                try:
                    run.call(backend, eid)
                    outcomes[n] = "ok"
                except Exception as exc:  # reported below, with its type
                    outcomes[n] = f"{type(exc).__name__}: {run.scrub(str(exc))}"
                done.put(n)

            threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(4)]
            for n in (0, 1):
                threads[n].start()
            _expect(server.wait_for(2, 10), "2 calls on 2 free slots did not reach the server")
            for n in (2, 3):  # one at a time, so the queue's order is known
                threads[n].start()
                # Waiting in the queue, or (no limit) already at the server: stop looking.
                _poll(functools.partial(_queued_or_sent, backend, eid, server, n - 1))
                _expect(_queued(backend, eid, n - 1),
                        f"call {n + 1} did not wait in the queue with 2 calls running: "
                        f"{backend.get_stats(eid)}, the server saw {len(server.requests)}")
            refused = _refused(run, backend, eid)
            # Free one slot at a time; the call that takes it ends when its request is let go.
            order = []
            for running, queued in ((0, 2), (1, 3)):
                gates[running].set()
                finished()
                _expect(server.wait_for(queued + 1, 10),
                        f"a slot was freed, but no queued call reached the server: "
                        f"{backend.get_stats(eid)}")
                gates[queued].set()
                order.append(finished() + 1)
            _expect(order == [3, 4],
                    "queued calls did not start in the order they arrived (FIFO): call "
                    f"{order[0]} took the first free slot, while call 3 had waited longer")
            for t in threads:
                t.join(10)
            peak = server.peak_concurrency
            seen = len(server.requests)
    finally:
        for gate in gates:  # a failed expectation must not leave calls held
            gate.set()
    _expect([outcomes.get(n) for n in range(4)] == ["ok"] * 4,
            f"queued calls did not all succeed: {outcomes}")
    _expect(seen == 4, f"the server saw {seen} requests for 4 admitted calls")
    _expect(peak == 2, f"the server saw {peak} requests at once with max_concurrent_requests=2")
    rejected = backend.get_stats(eid).rejected
    _expect(rejected == 1, f"stats count {rejected} rejected calls, expected 1")
    return (f"peak concurrency at the server 2 of 4 calls; queued calls started first in, "
            f"first out; 5th call refused in {refused * 1000:.0f} ms with QueueFullError")


# -- request ID ---------------------------------------------------------------------------


def check_request_id(run: _Run) -> str:
    """Our request ID reaches the server on every attempt and comes back on result and error."""
    case = run.case
    header = case.request_id_header
    backend = run.backend()
    rid = _rid()
    script = (case.overloaded, _retry_after(case.rate_limited, "0"), case.success)
    with _server(*script) as server:
        eid = run.endpoint(backend, server, max_retries=2)
        result = run.call(backend, eid, rid)
        sent = [r.header(header) for r in server.requests]
    _expect(len(sent) == 3, f"expected 3 attempts, the server saw {len(sent)}")
    _expect(sent == [rid] * 3, f"{header!r} on the 3 attempts was {sent}, expected {rid!r}")
    got = getattr(result, "request_id", None)
    _expect(got == rid, f"the result carries request_id={got!r}, expected {rid!r}")
    rid2 = _rid()
    with _server(case.overloaded, case.overloaded) as server:
        eid = run.endpoint(backend, server, max_retries=1)
        err = run.fail_call(backend, eid, rid2)
        sent = [r.header(header) for r in server.requests]
    _expect(sent == [rid2] * 2, f"{header!r} on the failing attempts was {sent}")
    _expect(err.request_id == rid2, f"the error carries request_id={err.request_id!r}")
    rid3 = _rid()
    with _server(case.bad_request) as server:
        eid = run.endpoint(backend, server)
        err = run.fail_call(backend, eid, rid3)
    _expect(err.request_id == rid3, f"a 400 error carries request_id={err.request_id!r}")
    return f"{header!r} on all 3 attempts; on the result, the retried error and the 400 error"


# -- classify_error -----------------------------------------------------------------------

def _own_failure(reply: Reply, operation: str) -> Failure:
    raw = reply.body or (httpx2.Response(200, json=reply.json).content
                         if reply.json is not None else b"")
    return Failure(operation=operation, status=reply.status, headers=dict(reply.headers),
                   content=raw, data=decode_json(raw))


def check_classify(run: _Run) -> str:
    """classify_error answers the API's own errors rightly, and is total: odd statuses,
    headers, bodies (truncated JSON) and exceptions never make it raise."""
    case = run.case
    hooks = run.registry.hooks(case.backend)
    caller = hooks.pm.hook.classify_error
    _expect(bool(caller.get_hookimpls()),
            "no classify_error hook: the API's errors are left to the core's default "
            "classification, so there is nothing of the plugin's to check")
    operations = sorted(hooks.info.operations) or ["chat"]
    op = operations[0]
    own = (
        ("bad request", case.bad_request, {ErrorKind.BAD_REQUEST}, False, None),
        ("overloaded", case.overloaded, {ErrorKind.OVERLOADED, ErrorKind.SERVER}, True, None),
        # TEI and TGI answer 429 when their queue is full: overloaded is a fair reading too.
        ("rate limited", _retry_after(case.rate_limited, "7"),
         {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED}, True, 7.0),
    )
    for name, reply, kinds, retryable, retry_after in own:
        where = f"the API's own {name} reply ({reply.status})"
        try:
            c = caller(failure=_own_failure(reply, op))
        except Exception as exc:
            raise _Fail(f"classify_error raised {type(exc).__name__}: {exc} for {where}") from None
        _expect(c is not None, f"classify_error answered None for {where}: it classifies nothing")
        problem = invalid(c)
        _expect(problem is None, f"classify_error {problem} for {where}")
        _expect(c.kind in kinds and c.retryable is retryable,
                f"classify_error said kind={c.kind.value}, retryable={c.retryable} for {where}; "
                f"expected {'/'.join(sorted(k.value for k in kinds))}, retryable={retryable}")
        _expect(retry_after is None or c.retry_after == retry_after,
                f"classify_error said retry_after={c.retry_after} for {where} with "
                "Retry-After: 7")
    count = 0
    for failure in failures(case, operations):
        count += 1
        exc_name = type(failure.exception).__name__ if failure.exception else None
        where = (f"status={failure.status} exception={exc_name} "
                 f"in_stream={failure.in_stream} body={failure.content[:40]!r}")
        try:
            result = caller(failure=failure)
        except Exception as exc:
            raise _Fail(f"classify_error raised {type(exc).__name__}: {exc} for {where}") from None
        problem = invalid(result)
        _expect(problem is None, f"classify_error {problem} for {where}")
    return (f"the API's 400, {case.overloaded.status} and 429 (Retry-After: 7) classified as "
            f"such; {count} odd failures (statuses, headers, truncated/non-JSON bodies, "
            "exceptions) answered without raising")


# -- running ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One conformance check: its name, the feature it proves, and the function."""

    name: str
    feature: str
    run: Callable[[_Run], str]


CHECKS: tuple[Check, ...] = (
    Check("counters", "per-endpoint counters", check_counters),
    Check("keys", "per-endpoint API key", check_keys),
    Check("backoff", "backoff", check_backoff),
    Check("queue", "queue", check_queue),
    Check("request_id", "request ID", check_request_id),
    Check("classify_error", "classify_error total", check_classify),
)
"""The checks, in report order; the first five are the report's five features."""


def run_check(check: Check | str, case: Case, registry: Registry) -> CheckResult:
    """Run one check (or the one named) for ``case``; never raises."""
    if isinstance(check, str):
        check = next(c for c in CHECKS if c.name == check)
    run = _Run(case, registry)
    start = time.monotonic()
    passed, reason, detail = False, "", ""
    try:
        detail = check.run(run)
        passed = True
    except _Fail as exc:
        reason = str(exc)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        run.close()
    return CheckResult(
        check=check.name, feature=check.feature, passed=passed, reason=run.scrub(reason),
        detail=run.scrub(detail), seconds=round(time.monotonic() - start, 3),
    )


def run_checks(case: Case, registry: Registry) -> list[CheckResult]:
    """Every check for ``case``, in order."""
    return [run_check(check, case, registry) for check in CHECKS]

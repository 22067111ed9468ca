"""The retry checks: waits as configured and as the server asked, one request ID on every attempt."""

from __future__ import annotations

import itertools
from typing import Any

from .._backend import Backend
from ._actions import Action
from ._run import CheckRun, conformance_id, expect, serving, with_retry_after
from ._waits import planned_waits

__all__ = ["check_backoff", "check_request_id"]


_SLACK = 0.3  # how much later than planned a retry may arrive (scheduling, a busy CI)


def _backoff_rounds(run: CheckRun, backend: Backend, script: tuple[Action, ...],
                    **settings: Any) -> tuple[list[float], list[float]]:
    """One call through ``script``: the waits the core planned, and the gaps the server saw."""
    rid = conformance_id()
    with serving(*script) as server, planned_waits(rid) as planned:
        eid = run.endpoint(backend, server, **settings)
        run.call(backend, eid, rid)
        times = [r.received_at for r in server.requests]
    expect(len(times) == len(script),
            f"expected {len(script)} attempts ({len(script) - 1} retries), "
            f"the server saw {len(times)}")
    expect(len(planned) == len(script) - 1,
            f"{len(script) - 1} retries, but the retry loop reported {len(planned)} planned "
            "waits through stamina's on_retry hooks")
    return list(planned), [b - a for a, b in itertools.pairwise(times)]


def _waited_as_planned(planned: list[float], gaps: list[float]) -> None:
    for n, (want, gap) in enumerate(zip(planned, gaps, strict=True), 1):
        expect(want - 0.01 <= gap <= want + _SLACK,
                f"wait {n} planned {want:.3f}s, but the next attempt came {gap:.3f}s later")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def check_backoff(run: CheckRun) -> str:
    """Waits grow from the initial delay, honour Retry-After, jitter within bounds, stop at the
    cap, and the call gives up after max_retries + 1 attempts."""
    case = run.case
    backend = run.backend()
    # 1. No jitter: exactly 0.1, 0.2, then Retry-After: 1 beats the backoff of 0.4.
    script = (case.overloaded, case.overloaded, with_retry_after(case.rate_limited, "1"), case.success)
    planned, gaps = _backoff_rounds(
        run, backend, script, max_retries=3, initial_retry_delay=0.1, backoff_factor=2.0,
        max_retry_delay=0.4, retry_jitter=0.0)
    for n, (got, want) in enumerate(zip(planned, (0.1, 0.2, 1.0), strict=True), 1):
        expect(abs(got - want) < 1e-6,
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
        expect(got <= cap + 1e-9,
                f"wait {n} was planned at {got:.3f}s, above max_retry_delay={cap}")
        expect(base - 1e-9 <= got <= 2 * base + 1e-9,
                f"wait {n} was planned at {got:.3f}s: with retry_jitter=1.0 it must lie "
                f"between {base:.3f}s and {2 * base:.3f}s")
    below_cap = [(got, base) for got, base in zip(jittered, bases, strict=True) if base < cap]
    expect(any(got > base + 1e-9 for got, base in below_cap),
            f"retry_jitter=1.0, yet the waits {_seconds(jittered)}s are exactly the "
            "base delays: no jitter was added")
    _waited_as_planned(jittered, gaps2)
    # 3. max_retries=2: three attempts, then the error says so.
    with serving(*[case.overloaded] * 4) as server:
        eid = run.endpoint(backend, server, max_retries=2, initial_retry_delay=0.01,
                           max_retry_delay=0.02, retry_jitter=0.0)
        err = run.fail_call(backend, eid)
        seen = len(server.requests)
    expect(seen == 3, f"max_retries=2 made {seen} attempts, expected 3")
    expect(err.attempts == 3, f"the error says attempts={err.attempts}, expected 3")
    retries = backend.get_stats().retries
    expect(retries == 10, f"stats count {retries} retries, expected 3 + 5 + 2")
    return (f"waits {_seconds(gaps)}s for configured 0.10, 0.20 and Retry-After 1.00; "
            f"jitter 1.0 under a 0.10 s cap planned {_seconds(jittered)}s; "
            "gave up after max_retries+1 = 3 attempts")


def check_request_id(run: CheckRun) -> str:
    """Our request ID reaches the server on every attempt and comes back on result and error."""
    case = run.case
    header = case.request_id_header
    backend = run.backend()
    rid = conformance_id()
    script = (case.overloaded, with_retry_after(case.rate_limited, "0"), case.success)
    with serving(*script) as server:
        eid = run.endpoint(backend, server, max_retries=2)
        result = run.call(backend, eid, rid)
        sent = [r.header(header) for r in server.requests]
    expect(len(sent) == 3, f"expected 3 attempts, the server saw {len(sent)}")
    expect(sent == [rid] * 3, f"{header!r} on the 3 attempts was {sent}, expected {rid!r}")
    got = getattr(result, "request_id", None)
    expect(got == rid, f"the result carries request_id={got!r}, expected {rid!r}")
    rid2 = conformance_id()
    with serving(case.overloaded, case.overloaded) as server:
        eid = run.endpoint(backend, server, max_retries=1)
        err = run.fail_call(backend, eid, rid2)
        sent = [r.header(header) for r in server.requests]
    expect(sent == [rid2] * 2, f"{header!r} on the failing attempts was {sent}")
    expect(err.request_id == rid2, f"the error carries request_id={err.request_id!r}")
    rid3 = conformance_id()
    with serving(case.bad_request) as server:
        eid = run.endpoint(backend, server)
        err = run.fail_call(backend, eid, rid3)
    expect(err.request_id == rid3, f"a 400 error carries request_id={err.request_id!r}")
    return f"{header!r} on all 3 attempts; on the result, the retried error and the 400 error"

"""The conformance checks: each runs one feature of one backend against a :class:`FaultServer`.

Every check builds a fresh backend from the case's registry, scripts the server, makes real
calls and compares what the server received and what the backend reports with what the
feature promises. A check returns a :class:`CheckResult`; it never raises.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx2

from .._backend import Backend
from .._errors import CallError, ErrorKind, QueueFullError
from .._registry import Registry
from .._types import Classification, Failure
from .._wire import decode_json
from ._case import Case, CheckResult
from ._server import Action, FaultServer, Hang, RecordedRequest, Reply

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
    tin, tout = case.tokens
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


def check_backoff(run: _Run) -> str:
    """503, 503, 429 Retry-After: 1, success: waits 0.1, 0.2, 1.0 s; gives up after 3 tries."""
    case = run.case
    backend = run.backend()
    settings: dict[str, Any] = {"max_retries": 3, "initial_retry_delay": 0.1, "backoff_factor": 2.0,
                "max_retry_delay": 0.4, "retry_jitter": 0.0}
    script = (case.overloaded, case.overloaded, _retry_after(case.rate_limited, "1"), case.success)
    with _server(*script) as server:
        eid = run.endpoint(backend, server, **settings)
        run.call(backend, eid)
        times = [r.received_at for r in server.requests]
    _expect(len(times) == 4, f"expected 4 attempts (3 retries), the server saw {len(times)}")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    planned = [0.1, 0.2, 1.0]  # the third backoff would be 0.4: Retry-After says 1
    for n, (gap, want) in enumerate(zip(gaps, planned, strict=True), 1):
        _expect(want - 0.01 <= gap <= want + _SLACK,
                f"wait {n} was {gap:.3f}s, configured {want:.3f}s"
                + (" (Retry-After: 1 not honoured)" if n == 3 else ""))
    with _server(*[case.overloaded] * 4) as server:
        eid = run.endpoint(backend, server, **{**settings, "max_retries": 2})
        err = run.fail_call(backend, eid)
        seen = len(server.requests)
    _expect(seen == 3, f"max_retries=2 made {seen} attempts, expected 3")
    _expect(err.attempts == 3, f"the error says attempts={err.attempts}, expected 3")
    retries = backend.get_stats().retries
    _expect(retries == 5, f"stats count {retries} retries, expected 3 + 2")
    waits = ", ".join(f"{g:.2f}" for g in gaps)
    return (f"waits {waits}s for configured 0.10, 0.20 and Retry-After 1.00; "
            "gave up after max_retries+1 = 3 attempts")


# -- queue --------------------------------------------------------------------------------


def _poll(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def check_queue(run: _Run) -> str:
    """2 slots, 2 queue places: the server never sees 3 at once; a 5th call is refused at once."""
    case = run.case
    backend = run.backend()
    slow = Hang(0.4, then=case.success)
    with _server(slow, slow, slow, slow) as server:
        eid = run.endpoint(backend, server, max_concurrent_requests=2, queue_size=2, max_retries=0)
        outcomes: list[str] = []
        lock = threading.Lock()

        def one() -> None:
            try:
                run.call(backend, eid)
                outcome = "ok"
            except Exception as exc:  # reported below, with its type
                outcome = f"{type(exc).__name__}: {run.scrub(str(exc))}"
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        ready = _poll(lambda: (s := backend.get_stats(eid)).in_flight == 2 and s.queued == 2, 3)
        _expect(ready, f"4 calls did not settle into 2 running + 2 queued: {backend.get_stats(eid)}")
        start = time.monotonic()
        try:
            run.call(backend, eid)
        except QueueFullError:
            refused = time.monotonic() - start
        else:
            raise _Fail("a 5th call with 2 running and 2 queued was not refused")
        _expect(refused < 0.1, f"the 5th call was refused only after {refused:.3f}s")
        seen_then = len(server.requests)
        for t in threads:
            t.join(10)
        peak = server.peak_concurrency
        seen = len(server.requests)
    _expect(seen_then <= 2, f"the server saw {seen_then} requests while only 2 could run")
    _expect(outcomes == ["ok"] * 4, f"queued calls did not all succeed: {outcomes}")
    _expect(seen == 4, f"the server saw {seen} requests for 4 admitted calls")
    _expect(peak == 2, f"the server saw {peak} requests at once with max_concurrent_requests=2")
    rejected = backend.get_stats(eid).rejected
    _expect(rejected == 1, f"stats count {rejected} rejected calls, expected 1")
    return (f"peak concurrency at the server 2 of 4 calls; 5th call refused in "
            f"{refused * 1000:.0f} ms with QueueFullError")


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

_BODIES: tuple[bytes, ...] = (
    b"", b"{", b"[", b"null", b"[]", b'"text"', b"123", b"1e999", b"true", b"{}",
    b'{"error": null}', b'{"error": 5}', b'{"error": []}', b'{"error": "plain"}',
    b'{"error": {"message": null, "code": {}, "type": [], "status": 1}}',
    b'{"error": {"message": "m", "code": "context_length_exceeded", "type": "invalid"}}',
    b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{}]}}',
    b'{"type": "error", "error": {"type": "overloaded_error"}}', b'{"message": []}',
    b'{"detail": [{"msg": "x", "loc": ["body"]}]}', b'{"error_type": {"a": 1}}',
    b"\xff\xfe\x00 not utf-8", b"<html><body>502 Bad Gateway</body></html>",
    b'{"error": {"message": "' + b"x" * 5000 + b'"}}', b"[" * 200 + b"]" * 200,
    b'{"error": {"message": "\\ud800"}}',
)
_HEADERS: tuple[dict[str, str], ...] = (
    {}, {"retry-after": "1"}, {"retry-after": "abc"}, {"retry-after": "-5"},
    {"retry-after": "1e309"}, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
    {"retry-after-ms": "nan", "x-should-retry": "maybe"}, {"content-type": "text/html"},
)
_STATUSES = (100, 200, 204, 301, 400, 401, 403, 404, 408, 409, 413, 422, 429, 499, 500,
             502, 503, 504, 529, 599)
_EXCEPTIONS: tuple[BaseException, ...] = (
    httpx2.ConnectError("refused"), httpx2.ReadTimeout("slow"), httpx2.RemoteProtocolError("cut"),
    httpx2.ReadError(""), ValueError("odd"), Exception(),
)


def _truncations(content: bytes) -> list[bytes]:
    cuts = sorted({1, 2, len(content) // 3, len(content) // 2, len(content) - 1})
    return [content[:c] for c in cuts if 0 < c < len(content)]


def _random_json(rng: random.Random, depth: int = 0) -> Any:  # noqa: PLR0911 - one per shape
    pick = rng.randrange(8 if depth < 3 else 5)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False, 0, -1, 2**70, 1.5, math.inf])
    if pick == 2:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12)))
    if pick == 3:
        return rng.choice(["error", "message", "code", "type", "status", "detail"])
    if pick == 4:
        return rng.randrange(100, 600)
    if pick == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["error", "message", "code", "type", "status", "detail", "details", "reason"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def _failures(case: Case, operations: list[str]) -> Iterator[Failure]:
    success = case.success
    bodies = list(_BODIES)
    if isinstance(success, Reply):
        raw = success.body or (httpx2.Response(200, json=success.json).content
                               if success.json is not None else b"")
        bodies += _truncations(raw)
    for reply in (case.bad_request, case.overloaded, case.rate_limited):
        raw = httpx2.Response(200, json=reply.json).content if reply.json is not None else b""
        bodies += [raw, *_truncations(raw)]
    for op in operations:
        for exc in _EXCEPTIONS:
            yield Failure(operation=op, exception=exc)
    op = operations[0]
    for body in bodies:
        data = decode_json(body)
        for status in _STATUSES:
            for headers in _HEADERS:
                yield Failure(operation=op, status=status, headers=headers, content=body, data=data)
        yield Failure(operation=op, status=200, content=body, data=data, in_stream=True)
    rng = random.Random(20261127)  # noqa: S311 - reproducible fuzzing, not crypto
    for _ in range(400):
        value = _random_json(rng)
        body = rng.choice([b"", bytes(rng.randrange(256) for _ in range(rng.randrange(40)))])
        with suppress(ValueError, TypeError):  # inf and friends are not JSON: keep the bytes
            body = httpx2.Response(200, json=value).content
        yield Failure(
            operation=rng.choice(operations), status=rng.randrange(100, 600),
            headers={"retry-after": str(rng.choice([0, -1, 1.5, "x", 10**20]))},
            content=body, data=decode_json(body), in_stream=rng.random() < 0.1,
        )


def _valid(c: Any) -> str | None:
    if c is None:
        return None
    if not isinstance(c, Classification):
        return f"returned {type(c).__name__}, not a Classification"
    kind: Any = c.kind  # typed, but a plugin may answer anything: check at runtime
    retryable: Any = c.retryable
    ra: Any = c.retry_after
    if not isinstance(kind, ErrorKind):
        return f"kind {kind!r} is not an ErrorKind"
    if not isinstance(retryable, bool):
        return "retryable is not a bool"
    if ra is not None and not (isinstance(ra, int | float) and 0 <= ra < math.inf):
        return f"retry_after {ra!r} is not a finite number of seconds >= 0"
    return None


def check_classify(run: _Run) -> str:
    """classify_error is total: odd statuses, headers, bodies (truncated JSON) never raise."""
    hooks = run.registry.hooks(run.case.backend)
    caller = hooks.pm.hook.classify_error
    if not caller.get_hookimpls():
        return "no classify_error hook: the core's default classification (total) applies"
    operations = sorted(hooks.info.operations) or ["chat"]
    count = 0
    for failure in _failures(run.case, operations):
        count += 1
        exc_name = type(failure.exception).__name__ if failure.exception else None
        where = (f"status={failure.status} exception={exc_name} "
                 f"in_stream={failure.in_stream} body={failure.content[:40]!r}")
        try:
            result = caller(failure=failure)
        except Exception as exc:
            raise _Fail(f"classify_error raised {type(exc).__name__}: {exc} for {where}") from None
        problem = _valid(result)
        _expect(problem is None, f"classify_error {problem} for {where}")
    return f"{count} odd failures (statuses, headers, truncated/non-JSON bodies, exceptions)"


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

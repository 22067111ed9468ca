"""The conformance suite: the echo backend passes it, and each check fails when its feature goes."""

from __future__ import annotations

import re
import types
from typing import Any

import _echo_plugin
import ipfs_accel._endpoint
import ipfs_accel._retry
import msgspec
import pytest
from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    ErrorKind,
    Exchange,
    Failure,
    Usage,
    default_classification,
    hookimpl,
)
from ipfs_accel._plugin import PluginHooks
from ipfs_accel._queue import Limiter
from ipfs_accel.testing import (
    CHECKS,
    BackendConformance,
    Case,
    CheckResult,
    Reply,
    registry_for,
    run_check,
)

OK = {
    "model": "echo-1",
    "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
ECHO_CASE = Case(
    backend="echo", plugin=_echo_plugin, success=Reply(200, json=OK), tokens=(3, 2),
    auth=("authorization", "Bearer {key}"),
)


class TestEchoConformance(BackendConformance):
    """The echo test backend, through the standard suite exactly as a plugin would run it."""

    case = ECHO_CASE


def _variant(**hooks: Any) -> types.SimpleNamespace:
    """The echo plugin with some hooks replaced (each a feature broken on purpose)."""
    names = ("backend_info", "send", "parse_usage", "classify_error")
    funcs = {n: getattr(_echo_plugin, n) for n in names}
    funcs.update(hooks)
    return types.SimpleNamespace(**funcs)


def _run(check: str, plugin: object, case: Case = ECHO_CASE) -> CheckResult:
    return run_check(check, case, registry_for(case.__class__(**{
        **{f: getattr(case, f) for f in case.__dataclass_fields__}, "plugin": plugin,
    })))


def test_checks_are_the_five_features_classify_and_the_operations() -> None:
    """The report's features, in order, each backed by one check."""
    assert [c.feature for c in CHECKS] == [
        "per-endpoint counters", "per-endpoint API key", "backoff", "queue", "request ID",
        "classify_error total", "stream", "common parameters", "operations sync+async",
        "finish_reason", "tool calls round trip", "OpenTelemetry spans", "provider batches",
    ]


def test_a_case_without_the_optional_parts_skips_the_operation_checks() -> None:
    """A case as written before streams and params were declarable: the old six pass, the
    four new checks are skipped (never passed), each saying what to declare."""
    results = {c: _run(c, _echo_plugin) for c in ("stream", "params", "operations",
                                                  "finish_reason")}
    assert all(r.skipped and not r.passed for r in results.values()), results
    assert "declares no stream reply" in results["stream"].reason
    assert "Case.params" in results["params"].reason
    assert "covers no operation" in results["operations"].reason
    assert "declares no finish" in results["finish_reason"].reason


def test_counters_fail_on_wrong_tokens() -> None:
    """Usage read wrong shows as exact token counts that do not match."""
    @hookimpl
    def parse_usage(operation: str, data: Any) -> Usage | None:
        return Usage(input_tokens=4, output_tokens=2)

    r = _run("counters", _variant(parse_usage=parse_usage))
    assert not r.passed and "input_tokens=12 (expected 9)" in r.reason


def test_keys_fail_on_wrong_header_and_leak() -> None:
    """A key in the wrong header fails; so does a key sent to another endpoint."""
    @hookimpl
    def send(call: Call, endpoint: EndpointConfig) -> Exchange:
        ex = _echo_plugin.send(call=call, endpoint=endpoint)
        assert endpoint.api_key is not None
        return msgspec.structs.replace(ex, headers={"x-api-key": endpoint.api_key.reveal()})

    r = _run("keys", _variant(send=send))
    assert not r.passed and "has no 'authorization' header" in r.reason

    seen: list[str] = []

    @hookimpl
    def send_leaky(call: Call, endpoint: EndpointConfig) -> Exchange:
        ex = _echo_plugin.send(call=call, endpoint=endpoint)
        assert endpoint.api_key is not None
        seen.append(endpoint.api_key.reveal())
        return msgspec.structs.replace(ex, headers={**ex.headers, "x-debug": ",".join(seen)})

    r = _run("keys", _variant(send=send_leaky))
    assert not r.passed and "carries the other key" in r.reason
    assert "sk-conformance-" not in r.reason


def test_backoff_fails_without_retries_or_retry_after() -> None:
    """No retries, or a Retry-After ignored, each fail the backoff check with the numbers."""
    @hookimpl
    def never_retry(failure: Failure) -> Classification:
        c = default_classification(failure)
        return msgspec.structs.replace(c, retryable=False)

    r = _run("backoff", _variant(classify_error=never_retry))
    assert not r.passed and "raised OverloadedError after 1 attempt(s)" in r.reason

    @hookimpl
    def no_retry_after(failure: Failure) -> Classification:
        return msgspec.structs.replace(default_classification(failure), retry_after=None)

    r = _run("backoff", _variant(classify_error=no_retry_after))
    assert not r.passed and "wait 3 was planned at 0.400s" in r.reason
    assert "Retry-After: 1 not honoured" in r.reason


def _patched_plan_wait(monkeypatch: pytest.MonkeyPatch, **fixed: float) -> None:
    """The core's retry loop with some of its backoff settings replaced (a feature removed)."""
    real = ipfs_accel._retry.plan_wait

    def plan_wait(attempt: int, **kw: Any) -> float | None:
        return real(attempt, **{**kw, **fixed})

    monkeypatch.setattr(ipfs_accel._retry, "plan_wait", plan_wait)


def test_backoff_fails_without_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry loop that ignores retry_jitter fails the backoff check, naming the waits."""
    _patched_plan_wait(monkeypatch, jitter=0.0)
    r = _run("backoff", _echo_plugin)
    assert not r.passed
    assert "retry_jitter=1.0, yet the waits 0.020, 0.040, 0.080, 0.100, 0.100s" in r.reason
    assert "no jitter was added" in r.reason


def test_backoff_fails_without_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry loop that ignores max_retry_delay fails the backoff check at the first wait over it."""
    _patched_plan_wait(monkeypatch, max_delay=1e9)
    r = _run("backoff", _echo_plugin)
    assert not r.passed
    # wait 3 (0.08 plus jitter) passes 0.1 only for a large draw; wait 4 (0.16...) always does
    assert re.fullmatch(r"wait [34] was planned at 0\.\d+s, above max_retry_delay=0\.1", r.reason)


def test_backoff_fails_with_unbounded_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jitter added on top of the cap (or beyond its fraction) fails the backoff check."""
    real = ipfs_accel._retry.plan_wait

    def plan_wait(attempt: int, **kw: Any) -> float | None:
        wait = real(attempt, **{**kw, "jitter": 0.0})
        return None if wait is None else wait * (1 + kw["jitter"] * 0.999)

    monkeypatch.setattr(ipfs_accel._retry, "plan_wait", plan_wait)
    r = _run("backoff", _echo_plugin)
    assert not r.passed and "wait 3 was planned at 0.160s, above max_retry_delay=0.1" in r.reason


def test_backoff_fails_when_planned_waits_are_not_reported() -> None:
    """The check reads the planned waits from stamina's hooks: none reported is a cross."""
    import stamina.instrumentation as si  # noqa: PLC0415 - only this test swaps the hooks

    before = si.get_on_retry_hooks()
    si.set_on_retry_hooks([])
    try:
        from ipfs_accel.testing import _waits  # noqa: PLC0415 - to stop its re-install

        r = run_check("backoff", ECHO_CASE, registry_for(ECHO_CASE))
        assert r.passed  # the check installs its recorder beside whatever hooks are set
        si.set_on_retry_hooks([])
        real = _waits.set_on_retry_hooks
        _waits.set_on_retry_hooks = lambda hooks: None  # type: ignore[assignment]
        try:
            r = run_check("backoff", ECHO_CASE, registry_for(ECHO_CASE))
        finally:
            _waits.set_on_retry_hooks = real
        assert not r.passed and "reported 0 planned waits" in r.reason
    finally:
        si.set_on_retry_hooks(before)


def test_queue_fails_without_the_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the endpoint's limit removed, the server sees too many at once."""
    real = Limiter

    def unlimited(limit: int, queue_size: int) -> Limiter:
        return real(64, 64)

    monkeypatch.setattr(ipfs_accel._endpoint, "Limiter", unlimited)
    r = _run("queue", _echo_plugin)
    assert not r.passed and "call 3 did not wait in the queue with 2 calls running" in r.reason


def test_queue_fails_when_not_fifo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limiter that hands a freed slot to the newest waiter fails: start order is FIFO."""
    real = Limiter

    class Lifo(real):  # type: ignore[misc, valid-type]
        def leave_locked(self) -> Any:  # the endpoint frees slots under its lock
            self._waiters.reverse()
            try:
                return super().leave_locked()
            finally:
                self._waiters.reverse()

    monkeypatch.setattr(ipfs_accel._endpoint, "Limiter", Lifo)
    r = _run("queue", _echo_plugin)
    assert not r.passed and "did not start in the order they arrived (FIFO)" in r.reason


def test_request_id_fails_on_the_wrong_header() -> None:
    """A backend that sends its request ID in another header than the case says fails."""
    @hookimpl
    def backend_info() -> BackendInfo:
        info = _echo_plugin.backend_info()
        return msgspec.structs.replace(info, request_id_header="X-Correlation-ID")

    r = _run("request_id", _variant(backend_info=backend_info))
    assert not r.passed and "'x-request-id' on the 3 attempts was [None, None, None]" in r.reason


def test_classify_fails_when_it_raises() -> None:
    """A classifier that chokes on an odd body fails the totality check, naming the input."""
    @hookimpl
    def classify_error(failure: Failure) -> Classification:
        message = failure.data["error"]["message"] if failure.data else "x"
        return msgspec.structs.replace(default_classification(failure), message=str(message))

    r = _run("classify_error", _variant(classify_error=classify_error))
    assert not r.passed and "classify_error raised" in r.reason and "body=" in r.reason


def test_classify_fails_without_a_hook() -> None:
    """A plugin with no classify_error hook gets a cross, not a tick for nothing checked."""
    plugin = types.SimpleNamespace(**{n: getattr(_echo_plugin, n)
                                      for n in ("backend_info", "send", "parse_usage")})
    r = _run("classify_error", plugin)
    assert not r.passed and "no classify_error hook" in r.reason


def test_classify_fails_when_it_answers_nothing() -> None:
    """A classifier that always returns None (the core's default decides) fails."""
    @hookimpl
    def classify_error(failure: Failure) -> Classification | None:
        return None

    r = _run("classify_error", _variant(classify_error=classify_error))
    assert not r.passed
    assert "answered None for the API's own bad request reply (400)" in r.reason


def test_classify_fails_on_wrong_kinds() -> None:
    """The API's own 429 taken for a bad request, or its Retry-After dropped, fails."""
    @hookimpl
    def all_bad(failure: Failure) -> Classification:
        return Classification(kind=ErrorKind.BAD_REQUEST, retryable=False)

    r = _run("classify_error", _variant(classify_error=all_bad))
    assert not r.passed and "kind=bad_request, retryable=False for the API's own overloaded" in r.reason

    @hookimpl
    def no_retry_after(failure: Failure) -> Classification:
        return msgspec.structs.replace(default_classification(failure), retry_after=None)

    r = _run("classify_error", _variant(classify_error=no_retry_after))
    assert not r.passed and "retry_after=None for the API's own rate limited reply" in r.reason


def test_counters_fail_for_a_case_without_usage() -> None:
    """A case that declares no tokens cannot show usage is read: the counters check fails."""
    case = Case(backend="echo", plugin=_echo_plugin, success=Reply(200, json=OK), tokens=(0, 0),
                auth=("authorization", "Bearer {key}"))
    r = run_check("counters", case, registry_for(case))
    assert not r.passed and "the case declares tokens=(0, 0)" in r.reason


def test_counters_fail_without_usage_parsing() -> None:
    """With parse_usage gone, the exact token counts are missing from the counters."""
    @hookimpl
    def parse_usage(operation: str, data: Any) -> Usage | None:
        return None

    r = _run("counters", _variant(parse_usage=parse_usage))
    assert not r.passed and "input_tokens=0 (expected 9)" in r.reason


def test_classify_fails_on_a_bad_answer() -> None:
    """A classifier answering something that is not a Classification fails."""
    @hookimpl
    def classify_error(failure: Failure) -> Any:
        return "rate_limited"

    r = _run("classify_error", _variant(classify_error=classify_error))
    assert not r.passed and "not a Classification" in r.reason


def test_unexpected_error_is_a_failure_not_a_crash() -> None:
    """A check that hits an unexpected exception reports it as the reason."""
    case = Case(backend="echo", plugin=_echo_plugin, success=Reply(200, json={"nope": 1}),
                tokens=(3, 2), auth=("authorization", "Bearer {key}"))
    r = run_check("counters", case, registry_for(case))
    assert not r.passed and "ResponseError" in r.reason


def test_conformance_case_hook_is_optional() -> None:
    """PluginHooks.conformance_case is None without the hook and the Case with it."""
    assert PluginHooks(_echo_plugin).conformance_case() is None

    @hookimpl
    def conformance_case() -> Case:
        return ECHO_CASE

    assert PluginHooks(_variant(conformance_case=conformance_case)).conformance_case() is ECHO_CASE

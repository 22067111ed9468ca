"""The conformance suite: the echo backend passes it, and each check fails when its feature goes."""

from __future__ import annotations

import types
from typing import Any

import _echo_plugin
import ipfs_accel._endpoint
import msgspec
import pytest
from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
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


def test_checks_are_the_five_features_and_classify() -> None:
    """The report's features, in order, each backed by one check."""
    assert [c.feature for c in CHECKS] == [
        "per-endpoint counters", "per-endpoint API key", "backoff", "queue", "request ID",
        "classify_error total",
    ]


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
    assert not r.passed and "wait 3 was 0.4" in r.reason and "Retry-After: 1 not honoured" in r.reason


def test_queue_fails_without_the_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the endpoint's limit removed, the server sees too many at once."""
    real = Limiter

    def unlimited(limit: int, queue_size: int) -> Limiter:
        return real(64, 64)

    monkeypatch.setattr(ipfs_accel._endpoint, "Limiter", unlimited)
    r = _run("queue", _echo_plugin)
    assert not r.passed and "did not settle into 2 running + 2 queued" in r.reason


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
        return Classification(kind=default_classification(failure).kind, retryable=False,
                               message=str(message))

    r = _run("classify_error", _variant(classify_error=classify_error))
    assert not r.passed and "classify_error raised" in r.reason and "body=" in r.reason


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
                auth=("authorization", "Bearer {key}"))
    r = run_check("counters", case, registry_for(case))
    assert not r.passed and "ResponseError" in r.reason


def test_conformance_case_hook_is_optional() -> None:
    """PluginHooks.conformance_case is None without the hook and the Case with it."""
    assert PluginHooks(_echo_plugin).conformance_case() is None

    @hookimpl
    def conformance_case() -> Case:
        return ECHO_CASE

    assert PluginHooks(_variant(conformance_case=conformance_case)).conformance_case() is ECHO_CASE

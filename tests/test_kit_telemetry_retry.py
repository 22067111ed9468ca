"""The kit's telemetry check covers a retried call and a failed one: every built-in plugin
passes it, and it turns into a cross, naming what is wrong, when the retry does not happen
(classify_error misreads the 429), when the observer loses the retry's wait event, the
failed attempt's error, the failed call's error status or its duration's error.type, and
when the key leaks into the spans of those calls only."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from _broken_plugins import plugin_module, run_with
from ipfs_accel import (
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    default_classification,
    hookimpl,
)
from ipfs_accel.testing import CheckResult, import_or_skip

import_or_skip("opentelemetry.sdk")  # the SDK the check reads spans back with

from ipfs_accel import _otel  # noqa: E402 - needs opentelemetry-api, present with the SDK

PLUGINS = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]
SOME = ["openai", "claude", "gemini", "hf_tgi"]


def _run(name: str, **hooks: Any) -> CheckResult:
    return run_with("telemetry", name, **hooks)


def _fails(result: CheckResult, *words: str) -> None:
    assert not result.passed and not result.skipped, result
    for word in words:
        assert word in result.reason, result.reason


@pytest.mark.parametrize("name", PLUGINS)
def test_each_plugin_passes_retried_and_failed(name: str) -> None:
    result = _run(name)
    assert result.passed, result.reason
    assert "retried: 2 attempts" in result.detail
    assert "wait 'retry-after'" in result.detail  # the server said Retry-After: 0
    assert "failed: BadRequestError" in result.detail


@pytest.mark.parametrize("name", PLUGINS)
def test_a_429_not_retried_is_named(name: str) -> None:
    classify = plugin_module(name).classify_error

    @hookimpl
    def never_retried(failure: Failure) -> Classification:
        found = classify(failure=failure) or default_classification(failure)
        return msgspec.structs.replace(found, retryable=False)

    _fails(_run(name, classify_error=never_retried), "the retried call", "must be retried")


@pytest.mark.parametrize("name", SOME)
def test_a_retry_without_its_wait_event_is_named(name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_otel._Call, "wait", lambda self, seconds, reason: None)
    _fails(_run(name), "the retried call", "ipfs_accel.wait")


@pytest.mark.parametrize("name", SOME)
def test_a_failed_attempt_not_an_error_is_named(name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    close = _otel._Call._close_attempt

    def errorless(self: Any, error: BaseException | None, status: int | None) -> None:
        close(self, None, status)

    monkeypatch.setattr(_otel._Call, "_close_attempt", errorless)
    _fails(_run(name), "the retried call", "attempt 1", "error.type")


@pytest.mark.parametrize("name", SOME)
def test_a_failed_call_not_an_error_is_named(name: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    end = _otel._Call.end

    def errorless(self: Any, result: Any, error: BaseException | None) -> None:
        end(self, result, None)

    monkeypatch.setattr(_otel._Call, "end", errorless)
    _fails(_run(name), "the failed call", "not ERROR")


class _NoErrorType:
    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram

    def record(self, amount: float, attributes: dict[str, Any]) -> None:
        self.histogram.record(amount, {k: v for k, v in attributes.items() if k != "error.type"})


@pytest.mark.parametrize("name", SOME)
def test_a_duration_without_error_type_is_named(name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    made = _otel._Instruments.__init__

    def init(self: Any, meter: Any) -> None:
        made(self, meter)
        self.duration = _NoErrorType(self.duration)

    monkeypatch.setattr(_otel._Instruments, "__init__", init)
    _fails(_run(name), "the failed call", "gen_ai.client.operation.duration", "error.type")


@pytest.mark.parametrize("name", ["openai", "claude"])
def test_a_key_in_the_retried_spans_only_is_named(name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    send = plugin_module(name).send
    keys: list[str] = []

    @hookimpl
    def seen(call: Call, endpoint: EndpointConfig) -> Exchange:
        if endpoint.api_key is not None:
            keys.append(endpoint.api_key.reveal())
        return send(call=call, endpoint=endpoint)

    # the error's type is only exported for the retried and the failed calls
    monkeypatch.setattr(_otel, "_error_type", lambda error: f"leaked {keys[-1]}")
    result = _run(name, send=seen)
    _fails(result, "API key", "the retried call")
    assert keys and all(key not in result.reason for key in keys)

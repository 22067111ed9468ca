"""Every built-in plugin: the kit's telemetry check passes for its own case, and turns into a
cross when the plugin declares no provider, drops the request's traceparent, or loses the
usage the span reports. The reasons name what is wrong."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from _broken_plugins import plugin_module, results_through, run_with, send_through
from ipfs_accel import BackendInfo, Call, EndpointConfig, Exchange, hookimpl
from ipfs_accel.testing import CheckResult, import_or_skip

import_or_skip("opentelemetry.sdk")  # the SDK the check reads spans back with

PLUGINS = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]


def _module(name: str) -> Any:
    return plugin_module(name)


def _run(name: str, **hooks: Any) -> CheckResult:
    return run_with("telemetry", name, **hooks)


@pytest.mark.parametrize("name", PLUGINS)
def test_each_plugin_passes(name: str) -> None:
    result = _run(name)
    assert result.passed, result.reason


@pytest.mark.parametrize("name", PLUGINS)
def test_a_plugin_without_a_provider_is_named(name: str) -> None:
    info = _module(name).backend_info

    @hookimpl
    def unnamed() -> BackendInfo:
        return msgspec.structs.replace(info(), provider="")

    result = _run(name, backend_info=unnamed)
    assert not result.passed and not result.skipped
    assert "BackendInfo.provider" in result.reason


@pytest.mark.parametrize("name", ["openai", "claude"])
def test_a_plugin_that_drops_traceparent_is_named(name: str) -> None:
    send = _module(name).send

    @hookimpl
    def untraced(call: Call, endpoint: EndpointConfig) -> Exchange:
        ex = send(call=call, endpoint=endpoint)
        return msgspec.structs.replace(ex, headers={**ex.headers, "traceparent": "none"})

    result = _run(name, send=untraced)
    assert not result.passed and "traceparent" in result.reason


@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_a_plugin_that_loses_usage_is_named(name: str) -> None:
    @hookimpl
    def no_usage(operation: str, data: Any) -> None:
        return None

    def usageless(result: Any) -> Any:
        return msgspec.structs.replace(result, usage=type(result.usage)())

    result = _run(name, parse_usage=no_usage,
                  send=send_through(name, results_through(usageless)))
    assert not result.passed and "gen_ai.usage" in result.reason

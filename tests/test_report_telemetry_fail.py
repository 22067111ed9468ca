"""Every built-in plugin: the kit's telemetry check passes for its own case, and turns into a
cross when the plugin declares no provider, drops the request's traceparent, or loses the
usage the span reports. The reasons name what is wrong."""

from __future__ import annotations

import dataclasses
import importlib
import types
from typing import Any

import msgspec
import pytest
from ipfs_accel import BackendInfo, Call, EndpointConfig, Exchange, Response, hookimpl
from ipfs_accel.testing import Case, CheckResult, import_or_skip, registry_for, run_check

import_or_skip("opentelemetry.sdk")  # the SDK the check reads spans back with

PLUGINS = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]
HOOKS = ("backend_info", "send", "parse_usage", "classify_error", "conformance_case")


def _module(name: str) -> Any:
    return importlib.import_module(f"ipfs_accel_{name}")


def _run(name: str, **hooks: Any) -> CheckResult:
    module = _module(name)
    funcs = {n: getattr(module, n) for n in HOOKS if hasattr(module, n)}
    funcs.update(hooks)
    case: Case = dataclasses.replace(module.conformance_case(),
                                     plugin=types.SimpleNamespace(**funcs))
    return run_check("telemetry", case, registry_for(case))


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
    module = _module(name)

    @hookimpl
    def no_usage(operation: str, data: Any) -> None:
        return None

    def unparsed(ex: Exchange) -> Exchange:
        parse = ex.parse
        if parse is None:
            return ex

        def parsed(resp: Response) -> Any:
            result = parse(resp)
            return msgspec.structs.replace(result, usage=type(result.usage)())
        return msgspec.structs.replace(ex, parse=parsed)

    @hookimpl
    def send(call: Call, endpoint: EndpointConfig) -> Exchange:
        return unparsed(module.send(call=call, endpoint=endpoint))

    result = _run(name, parse_usage=no_usage, send=send)
    assert not result.passed and "gen_ai.usage" in result.reason

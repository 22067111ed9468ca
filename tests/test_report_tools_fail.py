"""Every built-in plugin with tools: the kit's tools check passes for its own case and turns
into a cross when the tool call is lost, in a result or in a stream.

The plugin's own hooks and case, with one thing broken on purpose: the parsed chat result
without its tool calls, or a stream whose chunks lose theirs (fragments and whole calls).
The reasons name what went missing. Backends without tools skip the check as not applicable.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
from typing import Any

import msgspec
import pytest
from ipfs_accel import Call, ChatResult, EndpointConfig, Exchange, Response, StreamChunk, hookimpl
from ipfs_accel.testing import Case, CheckResult, registry_for, run_check

TOOLS = ["claude", "gemini", "groq", "hf_tgi", "ollama", "openai", "ovms"]
STREAMED_TOOLS = TOOLS
WITHOUT = ["hf_tei", "llvm"]
HOOKS = ("backend_info", "send", "parse_usage", "classify_error", "conformance_case")


def _module(name: str) -> Any:
    return importlib.import_module(f"ipfs_accel_{name}")


def _run(name: str, **hooks: Any) -> CheckResult:
    module = _module(name)
    funcs = {n: getattr(module, n) for n in HOOKS if hasattr(module, n)}
    funcs.update(hooks)
    case: Case = dataclasses.replace(module.conformance_case(),
                                     plugin=types.SimpleNamespace(**funcs))
    return run_check("tools", case, registry_for(case))


def _send(name: str, change: Any) -> Any:
    send = _module(name).send

    @hookimpl
    def changed(call: Call, endpoint: EndpointConfig) -> Exchange:
        return change(send(call=call, endpoint=endpoint))  # type: ignore[no-any-return]

    return changed


def _lose_result_calls(ex: Exchange) -> Exchange:
    parse = ex.parse
    if parse is None:
        return ex

    def parsed(resp: Response) -> Any:
        result = parse(resp)
        if isinstance(result, ChatResult):
            return msgspec.structs.replace(result, tool_calls=None, finish_reason="stop")
        return result

    return msgspec.structs.replace(ex, parse=parsed)


def _lose_stream_calls(ex: Exchange) -> Exchange:
    parse_event = ex.parse_event
    if parse_event is None:
        return ex

    def parse(event: Any) -> Any:
        chunk = parse_event(event)
        if isinstance(chunk, StreamChunk):
            return msgspec.structs.replace(chunk, tool_calls=None, tool_call_deltas=None)
        return chunk

    return msgspec.structs.replace(ex, parse_event=parse)


@pytest.mark.parametrize("name", TOOLS)
def test_each_plugin_with_tools_passes(name: str) -> None:
    """Unbroken: the tool call typed, sent back with its answer, and streamed."""
    r = _run(name)
    assert r.passed, r.reason
    assert "streamed" in r.detail


@pytest.mark.parametrize("name", WITHOUT)
def test_backends_without_tools_skip_as_not_applicable(name: str) -> None:
    """No tools declared: skipped, saying n/a, never passed."""
    r = _run(name)
    assert r.skipped and r.reason.startswith("n/a"), r.reason


@pytest.mark.parametrize("name", TOOLS)
def test_tools_cross_when_the_result_loses_its_calls(name: str) -> None:
    """A chat parser that loses the tool calls: the cross says none reached the result."""
    r = _run(name, send=_send(name, _lose_result_calls))
    assert not r.passed and not r.skipped
    assert r.reason.startswith("chat (sync): no tool_calls"), r.reason


@pytest.mark.parametrize("name", STREAMED_TOOLS)
def test_tools_cross_when_the_stream_loses_its_calls(name: str) -> None:
    """A stream parser that drops tool-call fragments and whole calls: the cross names the
    streamed call."""
    r = _run(name, send=_send(name, _lose_stream_calls))
    assert not r.passed and not r.skipped
    assert r.reason.startswith("stream_chat (sync): "), r.reason

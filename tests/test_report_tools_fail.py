"""Every built-in plugin with tools: the kit's tools check passes for its own case and turns
into a cross when the tool call is lost, in a result or in a stream.

The plugin's own hooks and case, with one thing broken on purpose: the parsed chat result
without its tool calls, or a stream whose chunks lose theirs (fragments and whole calls).
The reasons name what went missing. Backends without tools skip the check as not applicable.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from _broken_plugins import plugin_module, results_through, run_with, send_through
from ipfs_accel import ChatResult, Exchange, StreamChunk
from ipfs_accel.testing import CheckResult

TOOLS = ["claude", "gemini", "groq", "hf_tgi", "ollama", "openai", "ovms"]
STREAMED_TOOLS = TOOLS
WITHOUT = ["hf_tei", "llvm"]


def _module(name: str) -> Any:
    return plugin_module(name)


def _run(name: str, **hooks: Any) -> CheckResult:
    return run_with("tools", name, **hooks)


def _without_calls(result: Any) -> Any:
    if isinstance(result, ChatResult):
        return msgspec.structs.replace(result, tool_calls=None, finish_reason="stop")
    return result


_lose_result_calls = results_through(_without_calls)


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
    r = _run(name, send=send_through(name, _lose_result_calls))
    assert not r.passed and not r.skipped
    assert r.reason.startswith("chat (sync): no tool_calls"), r.reason


@pytest.mark.parametrize("name", STREAMED_TOOLS)
def test_tools_cross_when_the_stream_loses_its_calls(name: str) -> None:
    """A stream parser that drops tool-call fragments and whole calls: the cross names the
    streamed call."""
    r = _run(name, send=send_through(name, _lose_stream_calls))
    assert not r.passed and not r.skipped
    assert r.reason.startswith("stream_chat (sync): "), r.reason

"""Every built-in plugin: the operation checks (stream, params, operations, finish_reason)
pass for its own case and turn into a cross when the feature is taken away.

The plugin's own hooks and case, with one thing broken on purpose: a stream parser that
never marks the terminal event done, ``top_p`` dropped from the request, the chat text or
the vectors lost, the API's finish passed through unmapped. The reasons name what broke.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from _broken_plugins import plugin_module, run_with
from ipfs_accel import (
    Call,
    ChatResult,
    EmbedResult,
    EndpointConfig,
    Exchange,
    Response,
    StreamChunk,
    hookimpl,
)
from ipfs_accel.testing import CheckResult

BUILTIN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]
STREAMING = ["claude", "gemini", "groq", "hf_tgi", "ollama", "openai", "ovms"]
CHAT = [*STREAMING, "llvm"]
EMBEDDING = ["gemini", "groq", "hf_tei", "ollama", "openai", "ovms"]
NEW = ("stream", "params", "operations", "finish_reason")
NOT_APPLICABLE = {"hf_tei": {"stream", "params", "finish_reason"}, "llvm": {"stream"}}


def _module(name: str) -> Any:
    return plugin_module(name)


def _run(check: str, name: str, **hooks: Any) -> CheckResult:
    return run_with(check, name, **hooks)


def _send(name: str, change: Any) -> Any:
    """The plugin's send hook, its exchange passed through ``change`` (and what it returns)."""
    send = _module(name).send

    @hookimpl
    def changed(call: Call, endpoint: EndpointConfig) -> Exchange:
        return change(call, send(call=call, endpoint=endpoint))  # type: ignore[no-any-return]

    return changed


def _parsed(change: Any) -> Any:
    """An exchange change that passes each parsed result through ``change``."""
    def on(call: Call, ex: Exchange) -> Exchange:
        parse = ex.parse
        if parse is None:
            return ex

        def parsed(resp: Response) -> Any:
            result = parse(resp)
            return result if isinstance(result, Exchange) else change(result)

        return msgspec.structs.replace(ex, parse=parsed)

    return on


@pytest.mark.parametrize("name", BUILTIN)
def test_each_plugin_passes_the_operation_checks(name: str) -> None:
    """Unbroken, each plugin passes every operation check that applies to it; the rest are
    skipped as not applicable, never passed."""
    for check in NEW:
        r = _run(check, name)
        if check in NOT_APPLICABLE.get(name, set()):
            assert r.skipped and r.reason.startswith("n/a"), (check, r.reason)
        else:
            assert r.passed, (check, r.reason)


@pytest.mark.parametrize("name", STREAMING)
def test_stream_cross_when_parse_event_never_sets_done(name: str) -> None:
    """A stream parser that never sets done=True: the cross says the last event must."""
    def never_done(call: Call, ex: Exchange) -> Exchange:
        parse_event = ex.parse_event
        if parse_event is None:
            return ex

        def parse(event: Any) -> Any:
            chunk = parse_event(event)
            if isinstance(chunk, StreamChunk) and chunk.done:
                return msgspec.structs.replace(chunk, done=False)
            return chunk

        return msgspec.structs.replace(ex, parse_event=parse)

    r = _run("stream", name, send=_send(name, never_done))
    assert not r.passed and not r.skipped
    assert "the last event must set done=True" in r.reason


@pytest.mark.parametrize("name", CHAT)
def test_params_cross_when_top_p_is_dropped(name: str) -> None:
    """top_p never reaching the API: the cross names top_p and the declared form."""
    path = _module(name).conformance_case().params["top_p"]

    def drop_top_p(call: Call, ex: Exchange) -> Exchange:
        body = copy.deepcopy(ex.json)
        *parents, last = path.split(".")
        holder = body
        for part in parents:
            holder = holder.get(part, {})
        holder.pop(last, None)
        return msgspec.structs.replace(ex, json=body)

    r = _run("params", name, send=_send(name, drop_top_p))
    assert not r.passed and f"top_p=0.75 did not reach the request as {path!r}" in r.reason


@pytest.mark.parametrize("name", CHAT)
def test_operations_cross_when_the_chat_text_is_lost(name: str) -> None:
    """A chat parser that loses the text: operations names the chat call."""
    def lose_text(result: Any) -> Any:
        return msgspec.structs.replace(result, text="") if isinstance(result, ChatResult) \
            else result

    r = _run("operations", name, send=_send(name, _parsed(lose_text)))
    assert not r.passed and r.reason.startswith("chat (sync): text ''")


@pytest.mark.parametrize("name", EMBEDDING)
def test_operations_cross_when_the_vectors_are_empty(name: str) -> None:
    """An embed parser whose vector comes back empty: operations names the embed call."""
    def empty(result: Any) -> Any:
        return msgspec.structs.replace(result, vectors=[[] for _ in result.vectors]) \
            if isinstance(result, EmbedResult) else result

    r = _run("operations", name, send=_send(name, _parsed(empty)))
    assert not r.passed and r.reason.startswith("embed (sync): ")


@pytest.mark.parametrize("name", CHAT)
def test_finish_reason_cross_when_the_native_value_is_not_mapped(name: str) -> None:
    """The API's finish passed through unmapped: the core makes it 'other', the check says
    the plugin's table has no entry for it."""
    def unmapped(result: Any) -> Any:
        if isinstance(result, ChatResult):
            return msgspec.structs.replace(result, finish_reason="eos_token",
                                           native_finish_reason=None)
        return result

    r = _run("finish_reason", name, send=_send(name, _parsed(unmapped)))
    assert not r.passed
    assert "the API's finish 'eos_token' came through as 'other'" in r.reason

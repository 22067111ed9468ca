"""The operation checks (stream, params, operations, finish_reason) pass for the echo backend
with a full case, and each turns into a cross when its feature is broken."""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any

import _echo_plugin
import msgspec
import pytest
from ipfs_accel import (
    BackendInfo,
    Call,
    ChatResult,
    EmbedResult,
    EndpointConfig,
    Event,
    Exchange,
    Response,
    StreamChunk,
    StreamFailure,
    hookimpl,
)
from ipfs_accel.testing import (
    BackendConformance,
    Case,
    CheckResult,
    Reply,
    Stream,
    openai_chat_case,
    registry_for,
    run_check,
)
from ipfs_accel.testing._checks_params import find

OK = {
    "model": "echo-1",
    "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def _sse(*events: Any) -> list[str]:
    lines: list[str] = []
    for e in events:
        lines += [f"data: {e if isinstance(e, str) else json.dumps(e)}", ""]
    return lines


STREAM = Stream(_sse(
    {"choices": [{"delta": {"content": "h"}, "finish_reason": None}]},
    {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    "[DONE]",
))
EMBED = Reply(200, json={"data": [{"index": 1, "embedding": [0.5, 0.25]},
                                  {"index": 0, "embedding": [0.125, -1.0]}], "model": "echo-e"})
FULL_CASE = Case(
    backend="echo", plugin=_echo_plugin, success=Reply(200, json=OK), tokens=(3, 2),
    auth=("authorization", "Bearer {key}"), text="hi", finish="stop", stream=STREAM,
    embed=EMBED, inputs=("a", "b"),
    params={"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
            "stop": "stop"},
    # echo answers tools in OpenAI's form: the kit's own OpenAI tool answers serve
    tools=openai_chat_case(backend="echo", model="echo-1", stream=True, tools=True).tools,
)
NEW = ("stream", "params", "operations", "finish_reason")


class TestEchoFullConformance(BackendConformance):
    """The echo backend with every optional part declared: all eleven checks pass."""

    case = FULL_CASE


def _variant(**hooks: Any) -> types.SimpleNamespace:
    names = ("backend_info", "send", "parse_usage", "classify_error")
    funcs = {n: getattr(_echo_plugin, n) for n in names}
    funcs.update(hooks)
    return types.SimpleNamespace(**funcs)


def _run(check: str, plugin: object, case: Case = FULL_CASE) -> CheckResult:
    case = dataclasses.replace(case, plugin=plugin)
    return run_check(check, case, registry_for(case))


def _send_with(parse_event: Any = None, parse: Any = None, body: Any = None) -> Any:
    @hookimpl
    def send(call: Call, endpoint: EndpointConfig) -> Exchange:
        ex = _echo_plugin.send(call=call, endpoint=endpoint)
        if parse_event is not None and ex.parse_event is not None:
            ex = msgspec.structs.replace(ex, parse_event=parse_event)
        if parse is not None and ex.parse is not None:
            ex = msgspec.structs.replace(ex, parse=parse(ex.parse))
        if body is not None:
            ex = msgspec.structs.replace(ex, json=body(dict(ex.json)))
        return ex

    return send


def test_full_case_passes_the_new_checks() -> None:
    """Unbroken, the echo backend passes each new check (so each cross below is news)."""
    for check in NEW:
        r = _run(check, _variant())
        assert r.passed and not r.skipped, (check, r.reason)
    assert "chat, stream_chat, embed: each sync and async" in _run("operations", _variant()).detail


def test_stream_cross_when_parse_event_never_sets_done() -> None:
    """A parser that never marks the terminal event done: the reason says it must."""
    def no_done(event: Event) -> StreamChunk | StreamFailure | None:
        chunk = _echo_plugin._event(event)
        return None if isinstance(chunk, StreamChunk) and chunk.done else chunk

    r = _run("stream", _variant(send=_send_with(parse_event=no_done)))
    assert not r.passed and not r.skipped
    assert "the last event must set done=True" in r.reason


def test_stream_cross_when_deltas_are_lost() -> None:
    """A parser that drops the text: the deltas do not spell the declared text."""
    def no_text(event: Event) -> StreamChunk | StreamFailure | None:
        chunk = _echo_plugin._event(event)
        return msgspec.structs.replace(chunk, delta="") if isinstance(chunk, StreamChunk) else chunk

    r = _run("stream", _variant(send=_send_with(parse_event=no_text)))
    assert not r.passed and "the deltas spell '', expected 'hi'" in r.reason


def test_stream_cross_without_stream_usage() -> None:
    """A plugin that reads no usage from stream events: the last chunk's usage is wrong."""
    @hookimpl
    def parse_usage(operation: str, data: Any) -> Any:
        return None if operation == "stream_chat" else _echo_plugin.parse_usage(
            operation=operation, data=data)

    r = _run("stream", _variant(parse_usage=parse_usage))
    assert not r.passed and "usage 0+0, expected 3+2" in r.reason


def test_params_cross_names_the_dropped_parameter() -> None:
    """A plugin that drops top_p: the cross names top_p and where it should have gone."""
    def drop_top_p(body: dict[str, Any]) -> dict[str, Any]:
        body.pop("top_p", None)
        return body

    r = _run("params", _variant(send=_send_with(body=drop_top_p)))
    assert not r.passed and "top_p=0.75 did not reach the request as 'top_p'" in r.reason

    # Declared in the API's own form (Cohere's ``p``), the echo plugin's pass-through fails.
    case = dataclasses.replace(FULL_CASE, params={**FULL_CASE.params, "top_p": "p"})
    r = _run("params", _variant(), case)
    assert not r.passed and "top_p=0.75 did not reach the request as 'p'" in r.reason


def test_params_cross_on_a_wrong_value_or_an_undeclared_parameter() -> None:
    """A value changed on the way is a cross; so is a case that leaves a parameter out."""
    def halve(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "max_tokens": 8} if "max_tokens" in body else body

    r = _run("params", _variant(send=_send_with(body=halve)))
    assert not r.passed and "max_tokens=17 reached the request as 'max_tokens'=8" in r.reason
    case = dataclasses.replace(FULL_CASE, params={"max_tokens": "max_tokens"})
    r = _run("params", _variant(), case)
    assert not r.passed and "does not say where temperature, top_p, stop goes" in r.reason
    case = dataclasses.replace(FULL_CASE, params={**FULL_CASE.params, "stop": None})
    assert _run("params", _variant(), case).passed  # None: the API has no room for it


def test_operations_cross_when_embed_loses_a_vector() -> None:
    """An embed parser that keeps one vector of two: operations names embed."""
    def one_vector(parse: Any) -> Any:
        def parsed(resp: Response) -> Any:
            result = parse(resp)
            if isinstance(result, EmbedResult):
                return msgspec.structs.replace(result, vectors=result.vectors[:1])
            return result
        return parsed

    r = _run("operations", _variant(send=_send_with(parse=one_vector)))
    assert not r.passed and r.reason.startswith("embed (sync): ")
    assert "1 vectors for 2 inputs" in r.reason


def test_operations_cross_when_async_differs() -> None:
    """A plugin whose second (async) chat reads the reply wrong: the async call is named."""
    calls: list[str] = []

    @hookimpl
    def send(call: Call, endpoint: EndpointConfig) -> Exchange:
        calls.append(call.operation)
        ex = _echo_plugin.send(call=call, endpoint=endpoint)
        if call.operation == "chat" and calls.count("chat") == 2:
            return msgspec.structs.replace(ex, parse=lambda resp: ChatResult(text="bye"))
        return ex

    r = _run("operations", _variant(send=send))
    assert not r.passed and "chat (async): text 'bye', expected 'hi'" in r.reason


def test_operations_cross_when_the_case_covers_what_the_backend_lacks() -> None:
    """A case that declares an embed reply for a backend without embed is a cross."""
    @hookimpl
    def backend_info() -> BackendInfo:
        return msgspec.structs.replace(_echo_plugin.backend_info(),
                                       operations=frozenset({"chat", "stream_chat"}))

    r = _run("operations", _variant(backend_info=backend_info))
    assert not r.passed and "declares a reply for embed, which the backend" in r.reason


def test_finish_reason_cross_when_the_table_is_missing() -> None:
    """The API's own value passed through: the core makes it 'other', the check says why."""
    def native(parse: Any) -> Any:
        def parsed(resp: Response) -> Any:
            result = parse(resp)
            if isinstance(result, ChatResult):
                return msgspec.structs.replace(result, finish_reason="end_turn")
            return result
        return parsed

    r = _run("finish_reason", _variant(send=_send_with(parse=native)))
    assert not r.passed
    assert "the API's finish 'end_turn' came through as 'other'" in r.reason
    assert "normalize_finish_reason" in r.reason


def test_finish_reason_cross_on_a_stream_without_its_finish() -> None:
    """A stream whose chunks carry no finish_reason: the stream is named."""
    def no_finish(event: Event) -> StreamChunk | StreamFailure | None:
        chunk = _echo_plugin._event(event)
        if isinstance(chunk, StreamChunk):
            return msgspec.structs.replace(chunk, finish_reason=None)
        return chunk

    r = _run("finish_reason", _variant(send=_send_with(parse_event=no_finish)))
    assert not r.passed and "stream_chat (sync): finish_reason None" in r.reason


def test_finish_reason_cross_on_a_case_outside_the_vocabulary() -> None:
    """A case that declares the API's own value as finish is told the vocabulary."""
    r = _run("finish_reason", _variant(), dataclasses.replace(FULL_CASE, finish="end_turn"))
    assert not r.passed and "'end_turn' is not one of FINISH_REASONS" in r.reason


def test_stream_skipped_for_a_backend_that_does_not_stream() -> None:
    """No stream_chat and no stream declared: skipped as not applicable, not passed."""
    @hookimpl
    def backend_info() -> BackendInfo:
        return msgspec.structs.replace(_echo_plugin.backend_info(),
                                       operations=frozenset({"chat", "embed"}))

    case = dataclasses.replace(FULL_CASE, stream=None)
    r = _run("stream", _variant(backend_info=backend_info), case)
    assert r.skipped and not r.passed and r.reason.startswith("n/a")
    r = _run("stream", _variant(backend_info=backend_info))
    assert not r.passed and not r.skipped and "does not offer stream_chat" in r.reason


@pytest.mark.parametrize(("path", "want"), [
    ("a.b", 1), ("a.c.0", 2), ("a.c.5", None), ("x", None), ("a.b.c", None)])
def test_find_walks_dotted_paths(path: str, want: Any) -> None:
    """Dotted paths reach nested objects and list items; anything else is missing."""
    found = find({"a": {"b": 1, "c": [2]}}, path)
    assert found == want if want is not None else found is not want and not isinstance(found, int)

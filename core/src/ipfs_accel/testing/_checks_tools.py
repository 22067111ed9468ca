"""The tools check: a tool call comes back typed, and the turn goes back to the API.

The kit offers :data:`~ipfs_accel.testing.TOOL` (``get_weather``) to chat, answered with the
case's :class:`~ipfs_accel.testing.ToolCase` reply, and expects one :class:`ToolCall`
``get_weather({"city": "Paris"})`` with ``finish_reason="tool_calls"``. It then sends the
conversation on (``result.message`` and a ``tool`` message answering the call), answered with
the case's chat reply, and looks in that second request for the function's name, the tool's
answer and (where the API has IDs) the call's ID: a plugin that drops or garbles the turn is
named. With a streamed reply declared, the same through ``stream_chat``: the whole call on
the chunk that ends the turn, and on ``stream.result``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .._backend import Backend
from .._chatstream import AsyncChatStream, ChatStream
from .._toolcall import ToolCall
from .._types import ChatResult, StreamChunk
from ._case import TOOL, Case
from ._drive import MESSAGES, reply_for, run_async
from ._run import CheckFailed, CheckRun, conformance_id, expect, serving, skip

__all__ = ["ANSWER", "check_tools"]

ANSWER = "sunny, 21 C"
"""What the kit's tool answers, looked for in the request that sends it back."""

_ARGS = {"city": "Paris"}


def _one_call(case: Case, calls: list[ToolCall] | None, where: str) -> ToolCall:
    expect(bool(calls), f"{where}: no tool_calls: the API's tool call did not reach the result")
    assert calls is not None
    expect(len(calls) == 1, f"{where}: {len(calls)} tool calls, expected 1")
    call = calls[0]
    expect(isinstance(call, ToolCall), f"{where}: tool_calls[0] is {type(call).__name__}, "
                                       "not ToolCall")
    expect(call.name == "get_weather", f"{where}: the call names {call.name!r}, not "
                                       "'get_weather'")
    expect(call.arguments == _ARGS, f"{where}: arguments {call.arguments!r} "
                                    f"(JSON {call.arguments_json!r}), expected {_ARGS!r}")
    want = case.tools.id if case.tools is not None else None
    if want is not None:
        expect(call.id == want, f"{where}: the call's id is {call.id!r}, not the API's {want!r}")
    expect(bool(call.id), f"{where}: the call has no id (the core makes one where the API "
                          "gives none)")
    return call


def _second_turn(call: ToolCall, first: ChatResult) -> list[dict[str, Any]]:
    return [*MESSAGES, first.message,
            {"role": "tool", "tool_call_id": call.id, "content": ANSWER}]


def _sent_back(case: Case, before: Any, body: Any, call: ToolCall, where: str) -> None:
    text = json.dumps(body)
    # the first request names the function where it offers the tool; the one that sends
    # the turn back must name it once more, in the assistant's call
    offered = json.dumps(before).count("get_weather")
    expect(text.count("get_weather") > offered,
           f"{where}: the request that sends the turn back names get_weather only where it "
           "offers the tool: the assistant's tool call was dropped")
    expect(ANSWER in text, f"{where}: the tool's answer {ANSWER!r} is not in the request")
    if case.tools is not None and case.tools.id is not None:
        expect(call.id in text, f"{where}: the call's id {call.id!r} is not in the request "
                                "that answers it")


def _chat(backend: Backend, mode: str, messages: list[dict[str, Any]], eid: str) -> ChatResult:
    if mode == "sync":
        return backend.chat(messages, endpoint_id=eid, request_id=conformance_id(),
                            tools=[TOOL])
    return run_async(functools.partial(backend.achat, messages, endpoint_id=eid,
                                       request_id=conformance_id(), tools=[TOOL]))


async def _astream(backend: Backend, eid: str, rid: str) -> tuple[AsyncChatStream,
                                                                   list[StreamChunk]]:
    stream = backend.astream_chat(MESSAGES, endpoint_id=eid, request_id=rid, tools=[TOOL])
    return stream, [chunk async for chunk in stream]


def _tool_first(run: CheckRun, case: Case) -> str:
    tools = case.tools
    assert tools is not None
    backend = run.backend()
    done: list[str] = []
    calls: list[ToolCall] = []
    with serving(tools.reply, reply_for(case, "chat"), tools.reply,
                 reply_for(case, "chat")) as server:
        eid = run.endpoint(backend, server, max_retries=0)
        for mode in ("sync", "async"):
            where = f"chat ({mode})"
            first = _chat(backend, mode, MESSAGES, eid)
            call = _one_call(case, first.tool_calls, where)
            expect(first.finish_reason == "tool_calls",
                   f"{where}: finish_reason {first.finish_reason!r} (native "
                   f"{first.native_finish_reason!r}), expected 'tool_calls'")
            calls.append(call)
            turn = _second_turn(call, first)
            second = _chat(backend, mode, turn, eid)
            expect(second.text == case.text, f"{where}: the answer after the tool said "
                                             f"{second.text!r}, expected {case.text!r}")
            done.append(mode)
        requests = server.requests
    expect(len(requests) == 4, f"4 calls sent {len(requests)} requests")
    for i, mode, call in ((1, "sync", calls[0]), (3, "async", calls[1])):
        try:
            before, body = requests[i - 1].json(), requests[i].json()
        except ValueError:
            raise CheckFailed(f"chat ({mode}): the request body is not JSON") from None
        _sent_back(case, before, body, call, f"chat ({mode})")
    return f"get_weather({_ARGS}) typed, sent back with the answer; {' and '.join(done)}"


def _tool_stream(run: CheckRun, case: Case) -> str:
    tools = case.tools
    assert tools is not None and tools.stream is not None
    backend = run.backend()
    with serving(tools.stream, tools.stream) as server:
        eid = run.endpoint(backend, server, max_retries=0)
        for mode in ("sync", "async"):
            where = f"stream_chat ({mode})"
            rid = conformance_id()
            stream: ChatStream | AsyncChatStream
            if mode == "sync":
                stream = backend.stream_chat(MESSAGES, endpoint_id=eid, request_id=rid,
                                             tools=[TOOL])
                chunks = list(stream)
            else:
                stream, chunks = run_async(functools.partial(_astream, backend, eid, rid))
            ends = [c for c in chunks if c.finish_reason is not None]
            expect(bool(ends), f"{where}: no chunk has a finish_reason")
            expect(ends[-1].finish_reason == "tool_calls",
                   f"{where}: the stream ends with finish_reason {ends[-1].finish_reason!r}, "
                   "expected 'tool_calls'")
            whole = [c for c in chunks if c.tool_calls]
            _one_call(case, [t for c in whole for t in c.tool_calls or ()], where)
            result = stream.result
            _one_call(case, result.tool_calls, f"{where} result")
            expect(result.request_id == rid, f"{where}: result.request_id is not the call's")
    return "streamed: the whole call on the turn's last chunk and on stream.result"


def check_tools(run: CheckRun) -> str:
    """A tool call comes back as a typed ToolCall with finish ``tool_calls``; the turn
    (``result.message`` plus the tool's answer) goes back in the next request; streamed,
    the fragments are joined into the same call."""
    case = run.case
    info = run.registry.hooks(case.backend).info
    features = info.features
    has_tools = features is not None and any("tools" in f for f in features.values())
    if case.tools is None:
        if has_tools:
            skip("the backend declares tools but the case declares no ToolCase (Case.tools: "
                 "its API's answer calling get_weather)")
        skip("n/a: the backend declares no tools")
    expect("chat" in info.operations, "the case declares tools but the backend offers no chat")
    expect(case.text is not None, "the case declares tools but no text (the chat reply that "
                                  "answers after the tool)")
    detail = _tool_first(run, case)
    if case.tools.stream is not None:
        expect("stream_chat" in info.operations,
               "the case declares a streamed tool reply but the backend offers no stream_chat")
        detail += "; " + _tool_stream(run, case)
    return detail

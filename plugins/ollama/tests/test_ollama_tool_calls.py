"""Tool calls out of Ollama: typed ToolCalls from a chat answer and from a stream, whose
NDJSON carries the calls whole in a line with no text."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _ollama_fixtures import (
    CHAT_RESPONSE,
    FINAL_COUNTS,
    Recorder,
    backend,
    chat_line,
    endpoint,
    ndjson,
)
from ipfs_accel import ResponseError, ToolCall

HI = [{"role": "user", "content": "what is the weather in tokyo?"}]
TOKYO = {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}
OSAKA = {"function": {"name": "get_weather", "arguments": {"city": "Osaka"}}}


def _calls_line(*calls: dict[str, Any]) -> dict[str, Any]:
    """The line Ollama streams the calls in: empty content, the calls whole (api.md,
    "Chat request (Streaming with tools)")."""
    line = chat_line("")
    line["message"]["tool_calls"] = list(calls)
    return line


def _answer(*calls: dict[str, Any], content: str = "") -> dict[str, Any]:
    return {**CHAT_RESPONSE, "message": {"role": "assistant", "content": content,
                                         "tool_calls": list(calls)}}


def test_chat_tool_calls_are_typed_with_made_ids() -> None:
    """Two calls come back as ToolCalls: name, arguments object and JSON, the call as sent,
    and distinct stable IDs made by the core (Ollama sends none)."""
    b = backend(Recorder(httpx2.Response(200, json=_answer(TOKYO, OSAKA))))
    eid = endpoint(b)
    r = b.chat(HI, model="m", endpoint_id=eid, request_id="rid-1")
    assert r.tool_calls is not None
    assert all(isinstance(c, ToolCall) for c in r.tool_calls)
    assert [c.arguments for c in r.tool_calls] == [{"city": "Tokyo"}, {"city": "Osaka"}]
    assert [c.arguments_json for c in r.tool_calls] == ['{"city":"Tokyo"}', '{"city":"Osaka"}']
    assert [c.raw for c in r.tool_calls] == [TOKYO, OSAKA]
    ids = [c.id for c in r.tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    again = b.chat(HI, model="m", endpoint_id=eid, request_id="rid-1")
    assert [c.id for c in again.tool_calls or ()] == ids  # same request ID: same IDs
    assert (r.finish_reason, r.native_finish_reason) == ("tool_calls", "stop")
    assert r.message["tool_calls"][0] == {
        "id": ids[0], "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
    }
    assert r.message["content"] is None


def test_a_servers_own_call_id_is_kept() -> None:
    """The spec's calls carry no ID; where a newer server sends one, it is the call's ID."""
    call = {"id": "call_srv1", **TOKYO}
    b = backend(Recorder(httpx2.Response(200, json=_answer(call))))
    r = b.chat(HI, model="m", endpoint_id=endpoint(b))
    assert r.tool_calls is not None
    assert r.tool_calls[0].id == "call_srv1"


def test_chat_tool_call_with_text_arguments() -> None:
    """Arguments sent as JSON text (as a proxy may) are parsed into the object."""
    call = {"function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}}
    b = backend(Recorder(httpx2.Response(200, json=_answer(call))))
    r = b.chat(HI, model="m", endpoint_id=endpoint(b))
    assert r.tool_calls is not None
    assert r.tool_calls[0].arguments == {"city": "Tokyo"}


def test_chat_tool_call_without_arguments() -> None:
    """A call with no arguments has the empty object."""
    call = {"function": {"name": "now"}}
    b = backend(Recorder(httpx2.Response(200, json=_answer(call))))
    r = b.chat(HI, model="m", endpoint_id=endpoint(b))
    assert r.tool_calls is not None
    assert (r.tool_calls[0].name, r.tool_calls[0].arguments) == ("now", {})


@pytest.mark.parametrize(("call", "where"), [
    ({"function": {"arguments": {}}}, "$.message.tool_calls[0].function"),
    ({"name": "f"}, "$.message.tool_calls[0]"),
    ({"function": {"name": "f", "arguments": [1]}}, "$.message.tool_calls[0].function.arguments"),
])
def test_malformed_tool_call_is_a_response_error(call: dict[str, Any], where: str) -> None:
    """A call without a function name, or with arguments neither object nor text, is refused
    by name, never passed on as an unusable call."""
    b = backend(Recorder(httpx2.Response(200, json=_answer(call))))
    with pytest.raises(ResponseError) as info:
        b.chat(HI, model="m", endpoint_id=endpoint(b, max_retries=0))
    assert where in str(info.value)


def test_stream_tool_call_reaches_the_caller() -> None:
    """The defect: Ollama streams the calls in a line with no text, which was dropped, so the
    caller got finish "stop" and empty text, like an ordinary empty answer. The line now
    yields a chunk carrying the typed calls; the stream ends with "tool_calls"."""
    rec = Recorder(ndjson([_calls_line(TOKYO), chat_line("", done=True, **FINAL_COUNTS)]))
    b = backend(rec)
    stream = b.stream_chat(HI, model="m", endpoint_id=endpoint(b), request_id="rid-s")
    chunks = list(stream)
    calls = [c for chunk in chunks for c in chunk.tool_calls or ()]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Tokyo"})]
    assert calls[0].id.startswith("call_")
    assert calls[0].raw == TOKYO
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("tool_calls", "stop")
    result = stream.result
    assert result.tool_calls == calls
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    assert (result.usage.input_tokens, result.usage.output_tokens) == (26, 282)
    assert result.request_id == "rid-s"


def test_stream_text_then_tool_calls_in_two_lines() -> None:
    """Text, then two calls in separate lines: the text joined, both calls in order with
    distinct IDs, and the same IDs a unary answer of the same request would get."""
    rec = Recorder(ndjson([chat_line("Let me check."), _calls_line(TOKYO), _calls_line(OSAKA),
                           chat_line("", done=True, **FINAL_COUNTS)]))
    b = backend(rec)
    eid = endpoint(b)
    result = b.stream_chat(HI, model="m", endpoint_id=eid, request_id="rid-2").final()
    assert result.text == "Let me check."
    assert result.tool_calls is not None
    assert [c.arguments for c in result.tool_calls] == [{"city": "Tokyo"}, {"city": "Osaka"}]
    b2 = backend(Recorder(httpx2.Response(200, json=_answer(TOKYO, OSAKA))))
    unary = b2.chat(HI, model="m", endpoint_id=endpoint(b2), request_id="rid-2")
    assert [c.id for c in result.tool_calls] == [c.id for c in unary.tool_calls or ()]


@pytest.mark.asyncio
async def test_async_stream_tool_call_reaches_the_caller() -> None:
    """The same on the event loop, through AsyncChatStream.result."""
    rec = Recorder(ndjson([_calls_line(TOKYO), chat_line("", done=True, **FINAL_COUNTS)]))
    b = backend(rec)
    stream = b.astream_chat(HI, model="m", endpoint_id=endpoint(b))
    chunks = [chunk async for chunk in stream]
    await b.aclose()
    assert chunks[-1].finish_reason == "tool_calls"
    assert stream.result.tool_calls is not None
    assert stream.result.tool_calls[0].arguments == {"city": "Tokyo"}


def test_stream_length_with_tool_calls_stays_length() -> None:
    """A stream cut short by num_predict says "length", calls or not."""
    counts = {**FINAL_COUNTS, "done_reason": "length"}
    rec = Recorder(ndjson([_calls_line(TOKYO), chat_line("", done=True, **counts)]))
    b = backend(rec)
    result = b.stream_chat(HI, model="m", endpoint_id=endpoint(b)).final()
    assert (result.finish_reason, result.native_finish_reason) == ("length", "length")

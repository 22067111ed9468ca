"""The tool loop on Ollama: chat -> tool call -> ``result.message`` and the tool's answer ->
a second chat, sync, async and streamed; and the thinking and billed tokens of a turn."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from _ollama_fixtures import (
    CHAT_RESPONSE,
    FINAL_COUNTS,
    GENERATE_RESPONSE,
    Recorder,
    backend,
    chat_line,
    endpoint,
    ndjson,
)
from ipfs_accel import ChatResult
from ipfs_accel.testing import TOOL

HI = [{"role": "user", "content": "what is the weather in Toronto?"}]
CALL = {"function": {"name": "get_weather", "arguments": {"city": "Toronto"}}}
CALLING: dict[str, Any] = {**CHAT_RESPONSE, "message": {
    "role": "assistant", "content": "", "tool_calls": [CALL]}}
ANSWERED: dict[str, Any] = {**CHAT_RESPONSE, "message": {
    "role": "assistant", "content": "The current temperature in Toronto is 11°C."}}
# the second request, as api.md's "Chat request (With history, with tools)" shows it
SECOND = [
    *HI,
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather"},
]


def _next_turn(first: ChatResult) -> list[dict[str, Any]]:
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls is not None
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Toronto"})
    return [*HI, first.message,
            {"role": "tool", "tool_call_id": call.id, "content": "11 degrees celsius"}]


def _check_second(rec: Recorder, second: ChatResult) -> None:
    body = rec.body(1)
    assert body["messages"] == SECOND
    assert body["tools"] == [TOOL]
    assert second.text == "The current temperature in Toronto is 11°C."
    assert second.finish_reason == "stop"


def test_round_trip_sync() -> None:
    """The assistant turn appended as result.message and the tool's answer give the second
    request Ollama documents; the second chat answers."""
    rec = Recorder(httpx2.Response(200, json=CALLING), httpx2.Response(200, json=ANSWERED))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(HI, model="llama3.2", endpoint_id=eid, tools=[TOOL])
    second = b.chat(_next_turn(first), model="llama3.2", endpoint_id=eid, tools=[TOOL])
    _check_second(rec, second)


@pytest.mark.asyncio
async def test_round_trip_async() -> None:
    """The same loop through achat."""
    rec = Recorder(httpx2.Response(200, json=CALLING), httpx2.Response(200, json=ANSWERED))
    b = backend(rec)
    eid = endpoint(b)
    first = await b.achat(HI, model="llama3.2", endpoint_id=eid, tools=[TOOL])
    second = await b.achat(_next_turn(first), model="llama3.2", endpoint_id=eid, tools=[TOOL])
    await b.aclose()
    _check_second(rec, second)


def _calls_line() -> dict[str, Any]:
    line = chat_line("")
    line["message"]["tool_calls"] = [CALL]
    return line


def test_round_trip_streamed() -> None:
    """Streamed: stream.result is the turn to append, and the second turn streams the answer."""
    rec = Recorder(
        ndjson([_calls_line(), chat_line("", done=True, **FINAL_COUNTS)]),
        ndjson([chat_line("The current temperature in Toronto is 11°C."),
                chat_line("", done=True, **FINAL_COUNTS)]),
    )
    b = backend(rec)
    eid = endpoint(b)
    stream = b.stream_chat(HI, model="llama3.2", endpoint_id=eid, tools=[TOOL])
    for _ in stream:
        pass
    second = b.stream_chat(_next_turn(stream.result), model="llama3.2", endpoint_id=eid,
                           tools=[TOOL]).final()
    _check_second(rec, second)
    assert rec.body(1)["stream"] is True


@pytest.mark.asyncio
async def test_round_trip_streamed_async() -> None:
    """The same through astream_chat and AsyncChatStream.final()."""
    rec = Recorder(
        ndjson([_calls_line(), chat_line("", done=True, **FINAL_COUNTS)]),
        ndjson([chat_line("The current temperature in Toronto is 11°C."),
                chat_line("", done=True, **FINAL_COUNTS)]),
    )
    b = backend(rec)
    eid = endpoint(b)
    first = await b.astream_chat(HI, model="llama3.2", endpoint_id=eid, tools=[TOOL]).final()
    second = await b.astream_chat(_next_turn(first), model="llama3.2", endpoint_id=eid,
                                  tools=[TOOL]).final()
    await b.aclose()
    _check_second(rec, second)


# -- thinking and billed tokens -------------------------------------------------------------


THINKING = {**CHAT_RESPONSE, "message": {
    "role": "assistant", "content": "Blue.", "thinking": "Rayleigh scattering, so blue."},
    "prompt_eval_count": 12, "eval_count": 40}


def test_thinking_travels_with_the_turn_and_is_billed_as_output() -> None:
    """With think=True the thinking comes back in extra_content (not in text), goes back with
    result.message, and its tokens are in eval_count: all output, as billed. Ollama reports
    no split, so reasoning_tokens stays 0 and the total is input plus output."""
    rec = Recorder(httpx2.Response(200, json=THINKING), httpx2.Response(200, json=ANSWERED))
    b = backend(rec)
    eid = endpoint(b)
    first = b.chat(HI, model="qwen3", endpoint_id=eid, think=True)
    assert rec.body(0)["think"] is True
    assert first.text == "Blue."
    assert first.extra_content == {"ollama": {"thinking": "Rayleigh scattering, so blue."}}
    usage = first.usage
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens,
            usage.total_tokens) == (12, 40, 0, 52)
    b.chat([*HI, first.message, {"role": "user", "content": "Why?"}], model="qwen3",
           endpoint_id=eid, think=True)
    assert rec.body(1)["messages"][1] == {
        "role": "assistant", "content": "Blue.", "thinking": "Rayleigh scattering, so blue."}
    assert b.get_stats().output_tokens == 40 + CHAT_RESPONSE["eval_count"]


def test_generate_thinking_is_kept_apart_from_the_text() -> None:
    """/api/generate's thinking is kept in extra_content too, never mixed into text."""
    answer = {**GENERATE_RESPONSE, "thinking": "Hmm."}
    b = backend(Recorder(httpx2.Response(200, json=answer)))
    r = b.generate("Why?", model="qwen3", endpoint_id=endpoint(b), think="low")
    assert r.text == GENERATE_RESPONSE["response"]
    assert r.extra_content == {"ollama": {"thinking": "Hmm."}}


def test_no_thinking_no_extra_content() -> None:
    """An answer without thinking has no extra_content, so result.message stays OpenAI's."""
    b = backend(Recorder(httpx2.Response(200, json=CHAT_RESPONSE)))
    r = b.chat(HI, model="m", endpoint_id=endpoint(b))
    assert r.extra_content is None
    assert json.dumps(r.message) == json.dumps(
        {"role": "assistant", "content": "Hello! How are you today?"})

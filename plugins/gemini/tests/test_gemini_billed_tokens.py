"""Billed tokens: thinking counts as output, tool-use prompt as input, the total is the API's."""

from __future__ import annotations

import asyncio

from _gemini_fixtures import backend, endpoint, generate_response, json_response, sse
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hi"}]
# The thinking model's answer from the issue: 9 + 4 visible, 20 thoughts, 33 billed.
THINKING = {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 20,
            "totalTokenCount": 33}


def test_thinking_tokens_are_billed_output_and_the_total_is_the_apis() -> None:
    """thoughtsTokenCount is in output_tokens and reasoning_tokens; total_tokens is
    totalTokenCount (33), not prompt + candidates (13); the stats count the same."""
    b = backend(Recorder(json_response(200, generate_response("Hi!", usage=THINKING))))
    eid = endpoint(b)
    usage = b.chat(HI, endpoint_id=eid).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (9, 24, 33)
    assert usage.reasoning_tokens == 20
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (9, 24, 33)
    assert stats.reasoning_tokens == 20


def test_streamed_thinking_tokens_are_billed_once() -> None:
    """A stream repeats the usage so far on every event: the last one counts, thinking
    included, once in the stats and on ``stream.result``."""
    events = [
        generate_response("Hel", finish=None, usage={**THINKING, "candidatesTokenCount": 1,
                                                      "totalTokenCount": 30}),
        generate_response("lo!", finish="STOP", usage=THINKING),
    ]
    b = backend(Recorder(sse(events)))
    eid = endpoint(b)
    stream = b.stream_chat(HI, endpoint_id=eid)
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (9, 24, 33)
    assert usage.reasoning_tokens == 20
    assert stream.result.usage == usage
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (9, 24, 33)
    assert stats.reasoning_tokens == 20


def test_tool_use_prompt_tokens_are_billed_input() -> None:
    """toolUsePromptTokenCount (the prompt of the API's own tools, e.g. Google Search) is
    input as billed; it stays visible in details."""
    meta = {"promptTokenCount": 10, "toolUsePromptTokenCount": 50, "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7, "totalTokenCount": 72}
    b = backend(Recorder(json_response(200, generate_response(usage=meta))))
    usage = b.chat(HI, endpoint_id=endpoint(b), tools=[{"googleSearch": {}}]).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (60, 12, 72)
    assert usage.details["toolUsePromptTokenCount"] == 50


def test_async_chat_bills_the_same() -> None:
    """achat reads the same billed counts."""
    b = backend(Recorder(json_response(200, generate_response(usage=THINKING))))
    usage = asyncio.run(b.achat(HI, endpoint_id=endpoint(b))).usage
    assert (usage.output_tokens, usage.reasoning_tokens, usage.total_tokens) == (24, 20, 33)


def test_without_a_total_it_is_input_plus_output() -> None:
    """An answer without totalTokenCount totals what it billed: prompt + candidates +
    thoughts."""
    meta = {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 20}
    b = backend(Recorder(json_response(200, generate_response(usage=meta))))
    assert b.chat(HI, endpoint_id=endpoint(b)).usage.total_tokens == 33

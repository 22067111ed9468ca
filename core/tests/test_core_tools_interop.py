"""What proxies and odd servers send, read right: errors classified by their message where
codes are missing or are HTTP statuses, a rate-limit error event in a stream retried, billed
tokens exact; and the kit's tools check, shown to fail for a plugin that loses tool calls."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from ipfs_accel import (
    ContextLengthError,
    ErrorKind,
    Exchange,
    QuotaExceededError,
    RateLimitError,
    Registry,
    Response,
    ServerError,
    Usage,
    hookimpl,
    kind_from_message,
)
from ipfs_accel import openai_compat as oa
from ipfs_accel.testing import openai_chat_case, run_check
from test_openai_compat import CHAT, CHUNK, HI, _Compat, _compat, _sse_response


def _error(status: int, code: Any, message: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": {"message": message, "type": None,
                                                   "code": code}})


@pytest.mark.parametrize(("message", "kind"), [
    ("You exceeded your current quota, please check your plan", ErrorKind.QUOTA_EXCEEDED),
    ("This model's maximum context length is 8192 tokens", ErrorKind.CONTEXT_LENGTH),
    ("prompt is too long: 210000 tokens > 200000 maximum", ErrorKind.CONTEXT_LENGTH),
    ("Input exceeds the context window of this model", ErrorKind.CONTEXT_LENGTH),
    ("Rate limit reached for gpt-4o in organization org-x", ErrorKind.RATE_LIMITED),
    ("Internal error", None),
    ("", None),
])
def test_kind_from_message(message: str, kind: ErrorKind | None) -> None:
    """Unmistakable wording decides; anything else decides nothing."""
    assert kind_from_message(message) is kind


def test_context_length_behind_a_proxy_status_code() -> None:
    """A proxy's ``code: "400"`` with the API's context-length wording is a
    ContextLengthError, not retried."""
    backend, seen = _compat(_error(400, "400", "This model's maximum context length is 8192"))
    with pytest.raises(ContextLengthError):
        backend.chat(HI)
    assert len(seen) == 1


def test_context_length_relayed_as_500_is_not_retried() -> None:
    """The same wording relayed as a 500 (some proxies do): retrying cannot help."""
    backend, seen = _compat(_error(500, None, "litellm.ContextWindowExceededError: context "
                                              "window exceeded"))
    with pytest.raises(ContextLengthError):
        backend.chat(HI)
    assert len(seen) == 1


def test_quota_behind_a_proxy_is_not_retried() -> None:
    """``code: "429"`` saying the quota is spent is a QuotaExceededError at once, not a
    RateLimitError retried for half a minute."""
    backend, seen = _compat(_error(429, "429", "You exceeded your current quota, please "
                                               "check your plan and billing details."))
    with pytest.raises(QuotaExceededError) as info:
        backend.chat(HI)
    assert (len(seen), info.value.attempts) == (1, 1)


def test_plain_429_still_retried() -> None:
    """A rate limit that says nothing of quota stays a retried RateLimitError."""
    backend, seen = _compat(_error(429, "429", "Rate limit reached"),
                            httpx2.Response(200, json=CHAT))
    assert backend.chat(HI).text == "Hello"
    assert len(seen) == 2


def _error_event(code: str, message: str) -> bytes:
    return (b'data: {"error": {"code": "%s", "message": "%s"}}\n\n'
            % (code.encode(), message.encode()))


def test_rate_limit_error_event_before_any_chunk_is_retried() -> None:
    """An error event in a 200 stream whose code says rate limit, before anything reached
    the caller, is a retryable RateLimitError: the stream is opened again."""
    limited = httpx2.Response(200, content=_error_event("rate_limit_exceeded", "slow down"),
                              headers={"content-type": "text/event-stream"})
    backend, seen = _compat(limited, _sse_response(CHUNK, {**CHUNK, "choices": [
        {"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    assert backend.stream_chat(HI).final().text == "He"
    assert len(seen) == 2


def test_rate_limit_error_event_after_text_is_final() -> None:
    """After text reached the caller the same event ends the call: never start over."""
    body = (f"data: {oa.msgspec.json.encode(CHUNK).decode()}\n\n".encode()
            + _error_event("rate_limit_exceeded", "slow down"))
    backend, seen = _compat(httpx2.Response(200, content=body,
                                            headers={"content-type": "text/event-stream"}))
    stream = backend.stream_chat(HI)
    assert next(stream).delta == "He"
    with pytest.raises(RateLimitError) as info:
        next(stream)
    assert not info.value.retryable
    assert len(seen) == 1


def test_other_error_event_stays_a_server_error() -> None:
    """An error event that says nothing of rate limits is final, as before."""
    backend, seen = _compat(httpx2.Response(200, content=_error_event("boom", "it broke"),
                                            headers={"content-type": "text/event-stream"}))
    with pytest.raises(ServerError):
        list(backend.stream_chat(HI))
    assert len(seen) == 1


# --- Billed tokens --------------------------------------------------------------------------

def test_usage_keeps_the_apis_total_and_reasoning() -> None:
    """total_tokens is the API's own where given; reasoning tokens are part of the output
    and visible on their own, in the result and the stats."""
    body = {**CHAT, "usage": {"prompt_tokens": 5, "completion_tokens": 30, "total_tokens": 37,
                              "completion_tokens_details": {"reasoning_tokens": 20}}}
    backend, _ = _compat(httpx2.Response(200, json=body))
    usage = backend.chat(HI).usage
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens,
            usage.total_tokens) == (5, 30, 20, 37)
    stats = backend.get_stats()
    assert (stats.output_tokens, stats.reasoning_tokens, stats.total_tokens) == (30, 20, 37)


def test_usage_arithmetic() -> None:
    """No total given: input plus output; merged reports keep an API total beyond the
    parts; sums add every count."""
    assert Usage(input_tokens=3, output_tokens=4).total_tokens == 7
    assert Usage(input_tokens=3, output_tokens=4, total_tokens=9).total_tokens == 9
    start = Usage(input_tokens=10, output_tokens=1)
    later = Usage(output_tokens=50, reasoning_tokens=30)
    merged = start.merged(later)
    assert (merged.input_tokens, merged.output_tokens, merged.reasoning_tokens,
            merged.total_tokens) == (10, 50, 30, 60)
    assert start.merged(Usage(output_tokens=50, total_tokens=75)).total_tokens == 75
    both = Usage(input_tokens=1, output_tokens=2, total_tokens=5, reasoning_tokens=1).plus(
        Usage(input_tokens=1, output_tokens=1, reasoning_tokens=1))
    assert (both.total_tokens, both.reasoning_tokens) == (7, 2)


# --- The kit's tools check -------------------------------------------------------------------

class _Loses(_Compat):
    """A backend that reads chat answers without their tool calls (the defect the check
    exists for)."""

    @hookimpl
    def send(self, call: Any, endpoint: Any) -> Exchange:
        exchange = oa.exchange(call, endpoint)
        if exchange.parse is oa.parse_chat:
            def parse(resp: Response) -> Any:
                result = oa.parse_chat(resp)
                result.tool_calls = None
                result.finish_reason = "stop"
                return result
            exchange.parse = parse
        return exchange


class _Drops(_Compat):
    """A backend that sends the conversation on without the assistant's tool calls."""

    @hookimpl
    def send(self, call: Any, endpoint: Any) -> Exchange:
        if call.messages:
            call.messages = [{k: v for k, v in m.items() if k != "tool_calls"}
                             if m.get("role") == "assistant" else m for m in call.messages]
        return oa.exchange(call, endpoint)


def _case(plugin: object, **kwargs: Any) -> Any:
    return openai_chat_case(backend="compat", plugin=plugin, model="m", stream=True, **kwargs)


def _tools_check(plugin: object, **kwargs: Any) -> Any:
    return run_check("tools", _case(plugin, **kwargs),
                     Registry(plugins=[plugin], entry_points=False))


def test_tools_check_passes_for_the_openai_format() -> None:
    """The OpenAI format as the core reads it passes: unary, async and streamed."""
    result = _tools_check(_Compat(), tools=True)
    assert result.passed, result.reason
    assert "streamed" in result.detail


@pytest.mark.parametrize(("plugin", "words"), [
    (_Loses(), "no tool_calls"),
    (_Drops(), "the assistant's tool call was dropped"),
])
def test_tools_check_names_what_is_lost(plugin: object, words: str) -> None:
    """A plugin that loses the tool call, or drops it when the turn goes back, fails the
    check with a reason that says so."""
    result = _tools_check(plugin, tools=True)
    assert not result.passed and not result.skipped
    assert words in result.reason


def test_tools_check_skips_saying_why() -> None:
    """No ToolCase: skipped, shown as such (never a pass)."""
    result = _tools_check(_Compat())
    assert result.skipped and not result.passed
    assert "n/a" in result.reason

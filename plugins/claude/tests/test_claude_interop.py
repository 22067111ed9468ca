"""What proxies and gateways in front of Anthropic send: errors classified by their wording
where the type is missing or odd, and billed tokens counted exactly."""

from __future__ import annotations

from typing import Any

import ipfs_accel_claude
import pytest
from _claude_fixtures import (
    error_body,
    json_response,
    make_backend,
    message,
    sse_response,
    thinking,
    usage,
)
from ipfs_accel import (
    BadRequestError,
    ContextLengthError,
    ErrorKind,
    Failure,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hello"}]


def _litellm(message: str, code: str) -> dict[str, Any]:
    """A LiteLLM-style error body: OpenAI's fields, the HTTP status as the code."""
    return {"error": {"message": message, "type": None, "param": None, "code": code}}


@pytest.mark.parametrize(("status", "body", "raised"), [
    # a proxy relaying the upstream wording, with the status as the code
    (400, _litellm("litellm.BadRequestError: AnthropicException - prompt is too long: "
                   "201000 tokens > 200000 maximum", "400"), ContextLengthError),
    (400, _litellm("This model's maximum context length is 200000 tokens", "400"),
     ContextLengthError),
    # relayed as a server error by a proxy that does not map it
    (500, _litellm("AnthropicException - prompt is too long: 5 tokens > 4 maximum", "500"),
     ContextLengthError),
    (400, error_body("invalid_request_error", "input length and max_tokens exceed context "
                                              "limit: 197000 + 8192 > 200000"),
     ContextLengthError),
    # Anthropic says "credit balance is too low" as an invalid_request_error
    (400, error_body("invalid_request_error", "Your credit balance is too low to access the "
                                              "Anthropic API."), QuotaExceededError),
    # a quota relayed as a 429 is not a rate limit: waiting does not fix billing
    (429, _litellm("You exceeded your current quota, please check your plan", "429"),
     QuotaExceededError),
    (429, error_body("rate_limit_error", "You exceeded your current quota"),
     QuotaExceededError),
])
def test_classified_by_message_and_not_retried(status: int, body: Any, raised: type) -> None:
    """Context-length and quota wording decide where the type is missing or odd: one
    attempt, no backoff."""
    rec = Recorder(json_response(status, body))
    backend, eid = make_backend(rec)
    with pytest.raises(raised) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1
    assert len(rec.requests) == 1


def test_plain_bad_request_and_rate_limit_unchanged() -> None:
    """Wording that says neither stays what the type and status say."""
    rec = Recorder(json_response(400, _litellm("messages: field required", "400")))
    backend, eid = make_backend(rec)
    with pytest.raises(BadRequestError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert not isinstance(info.value, ContextLengthError)
    assert info.value.code == "400"
    rec = Recorder(json_response(429, error_body("rate_limit_error", "slow down")),
                   json_response(200, message()))
    backend, eid = make_backend(rec)
    assert backend.chat(HI, endpoint_id=eid).text
    assert len(rec.requests) == 2


def test_rate_limit_wording_is_no_context_error() -> None:
    """A 429 whose message mentions the context window stays a retried rate limit."""
    body = error_body("rate_limit_error", "This request would exceed your organization's "
                                          "rate limit of 40,000 input tokens per minute "
                                          "(context window: 200k)")
    rec = Recorder(json_response(429, body))
    backend, eid = make_backend(rec, max_retries=1)
    with pytest.raises(RateLimitError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 2


@pytest.mark.parametrize(("data", "kind", "retryable"), [
    ({"type": "error", "error": {"message": "Too many requests", "code": 429}},
     ErrorKind.RATE_LIMITED, True),
    ({"type": "error", "error": {"type": "", "message": "busy", "code": "529"}},
     ErrorKind.OVERLOADED, True),
    ({"error": {"message": "upstream rate limit reached"}}, ErrorKind.RATE_LIMITED, True),
    ({"error": {"message": "boom", "code": "500"}}, ErrorKind.SERVER, False),
])
def test_stream_error_events_without_a_type(data: Any, kind: ErrorKind, retryable: bool) -> None:
    """An error event in a 200 stream with no Anthropic type: an HTTP-status code or rate
    limit wording decides."""
    c = ipfs_accel_claude.classify_error(
        Failure(operation="stream_chat", status=200, data=data, in_stream=True))
    assert (c.kind, c.retryable) == (kind, retryable)


def test_unknown_stream_error_is_final() -> None:
    """An error event of no known type saying nothing retryable ends the stream with a
    ServerError, not sent again."""
    rec = Recorder(sse_response([{"type": "error", "error": {"message": "x", "code": "500"}}]))
    backend, eid = make_backend(rec)
    with pytest.raises(ServerError):
        list(backend.stream_chat(HI, endpoint_id=eid))
    assert len(rec.requests) == 1


def test_billed_tokens_with_thinking_and_cache() -> None:
    """Output is billed output (thinking included, as Anthropic counts it); input adds the
    cache tokens; the total is their sum and reaches the stats."""
    body = message(content=[thinking(), {"type": "text", "text": "4", "citations": None}],
                   use=usage(20, 350, cache_write=1000, cache_read=3000))
    rec = Recorder(json_response(200, body))
    backend, eid = make_backend(rec)
    u = backend.chat(HI, endpoint_id=eid, thinking={"type": "enabled", "budget_tokens": 1024},
                     max_tokens=2048).usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (4020, 350, 4370)
    assert (u.cache_write_tokens, u.cache_read_tokens, u.reasoning_tokens) == (1000, 3000, 0)
    stats = backend.get_stats()
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (4020, 350, 4370)

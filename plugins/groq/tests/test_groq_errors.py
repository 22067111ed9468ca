"""The groq plugin's errors: classes, retries, failed_generation, streams that fail."""

from __future__ import annotations

import json

import httpx2
import pytest
from _groq_fixtures import CHAT, KEY, Server, backend, chunk, error, sse, stream_response
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import (
    AuthenticationError,
    BadRequestError,
    Classification,
    ContextLengthError,
    ErrorKind,
    Failure,
    NotFoundError,
    OverloadedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total
from ipfs_accel_groq import classify_error

HI = [{"role": "user", "content": "Hi"}]
OK = httpx2.Response(200, json=CHAT)


def test_rate_limit_retried_after_retry_after() -> None:
    """A 429 is retried after its Retry-After, then succeeds."""
    limited = error(429, "Rate limit reached for model `llama-3.3-70b-versatile`", "tokens",
                    "rate_limit_exceeded", headers={"retry-after": "0.05"})
    server = Server(limited, OK)
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid, request_id="r-1").text
    assert [r.headers["x-request-id"] for r in server.requests] == ["r-1", "r-1"]
    stats = b.get_stats(eid)
    assert stats.retries == 1 and stats.retry_wait_seconds >= 0.05


def test_rate_limit_gives_up() -> None:
    """A 429 that persists is a RateLimitError after max_retries + 1 attempts."""
    server = Server(error(429, "Rate limit reached", "requests", "rate_limit_exceeded"))
    b, eid = backend(server, max_retries=1)
    with pytest.raises(RateLimitError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 2 and info.value.code == "rate_limit_exceeded"


def test_flex_capacity_498_retried() -> None:
    """498 capacity_exceeded (flex tier full) is an overload: retried, then succeeds."""
    server = Server(error(498, "Flex tier capacity exceeded", "capacity_exceeded",
                          "capacity_exceeded"), OK)
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid, service_tier="flex").text
    assert server.body(0)["service_tier"] == "flex"
    assert b.get_stats(eid).retries == 1


def test_flex_capacity_498_surfaces_as_overloaded() -> None:
    """A 498 that persists is an OverloadedError."""
    server = Server(error(498, "Flex tier capacity exceeded", "capacity_exceeded",
                          "capacity_exceeded"))
    b, eid = backend(server, max_retries=1)
    with pytest.raises(OverloadedError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 2 and info.value.status == 498


def test_failed_generation_in_message() -> None:
    """json_validate_failed: the model's failed_generation is in the message, not retried."""
    generation = '{"name": "Ada", "age": }'
    server = Server(error(400, "Failed to generate JSON. Please adjust your prompt.",
                          "invalid_request_error", "json_validate_failed",
                          headers={"x-request-id": "req_bad"}, failed_generation=generation))
    b, eid = backend(server)
    with pytest.raises(BadRequestError) as info:
        b.chat(HI, endpoint_id=eid, response_format={"type": "json_object"})
    err = info.value
    assert err.message.startswith("Failed to generate JSON.")
    assert generation in err.message and generation in str(err)
    assert err.code == "json_validate_failed"
    assert err.server_request_id == "req_bad"
    assert err.attempts == 1
    assert err.body["error"]["failed_generation"] == generation  # type: ignore[index]


def test_long_failed_generation_shortened_in_message() -> None:
    """A long failed_generation is cut in the message; the body keeps all of it."""
    generation = "x" * 5000
    server = Server(error(400, "Failed to call a function.", "invalid_request_error",
                          "tool_use_failed", failed_generation=generation))
    b, eid = backend(server)
    with pytest.raises(BadRequestError) as info:
        b.chat(HI, endpoint_id=eid)
    assert "x" * 1000 + "..." in info.value.message
    assert "x" * 1001 not in info.value.message
    assert info.value.body["error"]["failed_generation"] == generation  # type: ignore[index]


@pytest.mark.parametrize(
    ("response", "exc"),
    [
        (error(400, "Please reduce the length of the messages or completion.",
               "invalid_request_error", "context_length_exceeded"), ContextLengthError),
        (error(401, "Invalid API Key", "invalid_request_error", "invalid_api_key"),
         AuthenticationError),
        (error(404, "The model `nope` does not exist or you do not have access to it.",
               "invalid_request_error", "model_not_found"), NotFoundError),
        (error(413, "Request Entity Too Large", "invalid_request_error"), BadRequestError),
        (error(422, "Unprocessable Entity", "invalid_request_error"), BadRequestError),
    ],
    ids=["context", "auth", "not-found", "too-large", "unprocessable"],
)
def test_final_errors_raise_at_once(response: httpx2.Response, exc: type[Exception]) -> None:
    """Errors retrying cannot fix raise on the first attempt."""
    server = Server(response, OK)
    b, eid = backend(server)
    with pytest.raises(exc) as info:
        b.chat(HI, endpoint_id=eid)
    assert type(info.value) is exc
    assert info.value.attempts == 1  # type: ignore[attr-defined]
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_retried(status: int) -> None:
    """5xx answers are retried and the call succeeds when the server recovers."""
    server = Server(error(status, "Internal Server Error", "internal_server_error"), OK)
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid).text
    assert len(server.requests) == 2


def test_key_never_in_error() -> None:
    """A server echoing the key: neither message nor body of the error holds it."""
    server = Server(error(401, f"Invalid API Key {KEY}", "invalid_request_error",
                          "invalid_api_key"))
    b, eid = backend(server)
    with pytest.raises(AuthenticationError) as info:
        b.chat(HI, endpoint_id=eid)
    assert KEY not in str(info.value) and KEY not in json.dumps(info.value.body)


def test_x_groq_error_in_stream_raises() -> None:
    """A chunk whose x_groq.error says why the stream stopped raises with that reason."""
    stopped = chunk(None, None, x_groq={"id": "req_01", "error": "stream stopped: overloaded"})
    server = Server(stream_response(sse(chunk("Hel"), stopped)))
    b, eid = backend(server)
    seen: list[str] = []
    with pytest.raises(ServerError, match="stream stopped: overloaded"):
        for c in b.stream_chat(HI, endpoint_id=eid):
            seen.append(c.delta)
    assert seen == ["Hel"]
    assert len(server.requests) == 1


def test_error_object_in_stream_raises() -> None:
    """An error object inside a 200 stream raises; it never comes back as text."""
    failure = {"error": {"message": "Failed to call a function.", "type": "invalid_request_error",
                         "code": "tool_use_failed", "failed_generation": "<tool>oops"}}
    server = Server(stream_response(sse(chunk("a"), failure)))
    b, eid = backend(server)
    with pytest.raises(ServerError, match="failed_generation: <tool>oops"):
        list(b.stream_chat(HI, endpoint_id=eid))
    assert b.get_stats(eid).failed_requests == 1


def test_truncated_stream_is_interrupted() -> None:
    """A stream that ends without [DONE] after text raises StreamInterruptedError."""
    server = Server(stream_response(sse(chunk("Hel"), done=False)))
    b, eid = backend(server)
    with pytest.raises(StreamInterruptedError):
        list(b.stream_chat(HI, endpoint_id=eid))
    assert len(server.requests) == 1


# -- classify_error is total ---------------------------------------------------------------

_X_GROQ = st.dictionaries(st.sampled_from(["error", "id", "usage"]), strategies.json_values())


@settings(max_examples=300, deadline=None)
@given(failure=strategies.failures(
    statuses=strategies.statuses() | st.just(498),
    bodies=strategies.bodies(extra={"x_groq": _X_GROQ}),
))
def test_classify_error_is_total(failure: Failure) -> None:
    """Any status, headers and body (JSON or not, truncated) classify without raising."""
    result = assert_total(classify_error, failure)
    assert isinstance(result, Classification)
    assert isinstance(result.kind, ErrorKind)
    assert isinstance(result.retryable, bool)


# -- codes that are missing or HTTP statuses: the message decides --------------------------

def test_context_length_with_a_status_for_code() -> None:
    """A proxy's code "400" with Groq's context wording is a ContextLengthError, at once."""
    server = Server(error(400, "Please reduce the length of the messages or completion. "
                          "This model's maximum context length is 131072 tokens.",
                          "invalid_request_error", "400"), OK)
    b, eid = backend(server)
    with pytest.raises(ContextLengthError) as info:
        b.chat(HI, endpoint_id=eid)
    assert (info.value.attempts, info.value.code) == (1, "400")
    assert len(server.requests) == 1


@pytest.mark.parametrize("code", ["429", None])
def test_quota_with_a_status_or_no_code_is_not_retried(code: str | None) -> None:
    """A 429 whose code is "429" (or missing) but says "exceeded your current quota" is a
    QuotaExceededError on the first attempt, not a retried rate limit."""
    server = Server(error(429, "You exceeded your current quota, please check your plan and "
                          "billing details.", "rate_limit_error", code,
                          headers={"retry-after": "0"}), OK)
    b, eid = backend(server, max_retries=3)
    with pytest.raises(QuotaExceededError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1
    assert len(server.requests) == 1
    assert b.get_stats(eid).retries == 0


RATE_EVENT = {"error": {"message": "Rate limit reached for model `llama-3.3-70b-versatile` "
                                   "on tokens per minute (TPM): Limit 12000, Used 11990.",
                        "type": "tokens", "code": "rate_limit_exceeded"}}


def _stream_error(body: dict[str, object], named: bool) -> httpx2.Response:
    """A 200 stream whose first event is an error (``event: error`` when ``named``)."""
    line = f"{'event: error' + chr(10) if named else ''}data: {json.dumps(body)}\n\n"
    return stream_response(line.encode())


@pytest.mark.parametrize("named", [False, True], ids=["data", "event-error"])
def test_rate_limit_event_before_any_chunk_is_retried(named: bool) -> None:
    """An error event saying rate limit, in a 200 stream before any chunk, is retried."""
    final = chunk(None, "stop", x_groq={"id": "req_01", "usage": {
        "prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
    server = Server(_stream_error(RATE_EVENT, named), stream_response(sse(chunk("ok"), final)))
    b, eid = backend(server)
    assert "".join(c.delta for c in b.stream_chat(HI, endpoint_id=eid)) == "ok"
    assert len(server.requests) == 2
    stats = b.get_stats(eid)
    assert (stats.retries, stats.successful_requests, stats.total_tokens) == (1, 1, 12)


def test_rate_limit_event_gives_up_as_rate_limit_error() -> None:
    """Still limited after the retries: a RateLimitError, every attempt counted."""
    server = Server(_stream_error(RATE_EVENT, named=False))
    b, eid = backend(server, max_retries=2)
    with pytest.raises(RateLimitError) as info:
        list(b.stream_chat(HI, endpoint_id=eid))
    assert (info.value.attempts, info.value.code) == (3, "rate_limit_exceeded")
    assert len(server.requests) == 3


def test_x_groq_rate_limit_before_any_chunk_is_retried() -> None:
    """A stream stopped at once by an x_groq.error saying rate limit is retried too."""
    stopped = chunk(None, None, x_groq={"id": "req_01", "error": "rate limit exceeded"})
    server = Server(stream_response(sse(stopped)), stream_response(sse(chunk("ok", "stop"))))
    b, eid = backend(server)
    assert "".join(c.delta for c in b.stream_chat(HI, endpoint_id=eid)) == "ok"
    assert len(server.requests) == 2

"""The openai plugin's errors: classes, retries, Retry-After, streams that fail."""

from __future__ import annotations

import json

import httpx2
import pytest
from _openai_fixtures import (
    CHAT,
    KEY,
    STREAM_USAGE,
    Server,
    backend,
    chunk,
    error,
    sse,
    stream_response,
)
from hypothesis import given, settings
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
    TimeoutError,
)
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total
from ipfs_accel_openai import classify_error

HI = [{"role": "user", "content": "Hi"}]
OK = httpx2.Response(200, json=CHAT)


def test_rate_limit_retried_after_retry_after_ms() -> None:
    """A 429 is retried after the retry-after-ms the server asked for, then succeeds."""
    limited = error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded",
                    headers={"retry-after-ms": "40", "x-request-id": "req_429"})
    server = Server(limited, OK)
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid, request_id="r-1").text
    assert len(server.requests) == 2
    assert {r.headers["x-client-request-id"] for r in server.requests} == {"r-1"}
    stats = b.get_stats(eid)
    assert stats.retries == 1
    assert stats.retry_wait_seconds >= 0.04  # longer than max_retry_delay: the server's wait won


def test_rate_limit_gives_up_with_retry_after() -> None:
    """After max_retries the 429 surfaces as RateLimitError with its Retry-After."""
    server = Server(error(429, "slow down", "tokens", "rate_limit_exceeded",
                          headers={"retry-after": "0"}))
    b, eid = backend(server, max_retries=2)
    with pytest.raises(RateLimitError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 3
    assert info.value.retry_after == 0
    assert info.value.code == "rate_limit_exceeded"


def test_insufficient_quota_not_retried() -> None:
    """429 insufficient_quota is a QuotaExceededError at once: waiting does not fix billing."""
    server = Server(error(429, "You exceeded your current quota", "insufficient_quota",
                          "insufficient_quota", headers={"retry-after": "1"}), OK)
    b, eid = backend(server)
    with pytest.raises(QuotaExceededError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1
    assert info.value.status == 429
    assert info.value.code == "insufficient_quota"
    assert "exceeded your current quota" in info.value.message
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("response", "exc", "code"),
    [
        (error(400, "This model's maximum context length is 128000 tokens.",
               "invalid_request_error", "context_length_exceeded"),
         ContextLengthError, "context_length_exceeded"),
        (error(400, "Invalid value for 'n'", "invalid_request_error"),
         BadRequestError, "invalid_request_error"),
        (error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
         AuthenticationError, "invalid_api_key"),
        (error(403, "Project does not have access to model", "invalid_request_error",
               "model_not_found"), AuthenticationError, "model_not_found"),
        (error(404, "The model `gpt-9` does not exist", "invalid_request_error",
               "model_not_found"), NotFoundError, "model_not_found"),
        (error(500, "boom", "server_error", headers={"x-should-retry": "false"}),
         ServerError, "server_error"),
    ],
    ids=["context", "bad-request", "auth-401", "auth-403", "not-found", "should-retry-false"],
)
def test_final_errors_raise_at_once(
    response: httpx2.Response, exc: type[Exception], code: str
) -> None:
    """Errors retrying cannot fix raise on the first attempt, with code and server IDs."""
    response.headers["x-request-id"] = "req_err"
    server = Server(response, OK)
    b, eid = backend(server)
    with pytest.raises(exc) as info:
        b.chat(HI, endpoint_id=eid, request_id="e-1")
    err = info.value
    assert type(err) is exc
    assert err.attempts == 1  # type: ignore[attr-defined]
    assert err.code == code  # type: ignore[attr-defined]
    assert err.request_id == "e-1"  # type: ignore[attr-defined]
    assert err.server_request_id == "req_err"  # type: ignore[attr-defined]
    assert len(server.requests) == 1
    stats = b.get_stats(eid)
    assert (stats.failed_requests, stats.retries) == (1, 0)


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
def test_transient_statuses_retried_then_succeed(status: int) -> None:
    """408, 409 and 5xx are retried; the call succeeds when the server recovers."""
    server = Server(error(status, "try again", "server_error"), OK)
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid).text
    assert b.get_stats(eid).retries == 1


def test_should_retry_true_retries_a_400() -> None:
    """x-should-retry: true makes even a 400 retried."""
    server = Server(error(400, "flaky", "invalid_request_error",
                          headers={"x-should-retry": "true"}), OK)
    b, eid = backend(server)
    assert b.chat(HI, endpoint_id=eid).text
    assert len(server.requests) == 2


def test_overloaded_exhausts_retries() -> None:
    """A 503 that stays is an OverloadedError after max_retries + 1 attempts."""
    server = Server(error(503, "The engine is currently overloaded", "server_error"))
    b, eid = backend(server, max_retries=3)
    with pytest.raises(OverloadedError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 4
    assert len(server.requests) == 4


def test_transport_timeout_retried() -> None:
    """A read timeout is retried, and surfaces as TimeoutError when it persists."""
    def timeout(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("read timed out", request=request)

    server = Server(timeout)
    b, eid = backend(server, max_retries=1)
    with pytest.raises(TimeoutError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 2


def test_key_never_in_error() -> None:
    """A server that echoes the key back: the error's message and body never hold it."""
    server = Server(error(401, f"Incorrect API key provided: {KEY}", "invalid_request_error",
                          "invalid_api_key"))
    b, eid = backend(server)
    with pytest.raises(AuthenticationError) as info:
        b.chat(HI, endpoint_id=eid)
    err = info.value
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.message
    assert KEY not in json.dumps(err.body)


def test_mid_stream_error_raises_not_text() -> None:
    """An error object inside a 200 stream raises a ServerError; it never becomes text."""
    failure = {"error": {"message": "The server had an error", "type": "server_error",
                         "param": None, "code": None}}
    server = Server(stream_response(sse(chunk("Hel"), failure)))
    b, eid = backend(server)
    seen: list[str] = []
    with pytest.raises(ServerError, match="The server had an error") as info:
        for c in b.stream_chat(HI, endpoint_id=eid):
            seen.append(c.delta)
    assert seen == ["Hel"]
    assert info.value.server_request_id == "req_stream"
    assert len(server.requests) == 1  # text was already yielded: not retried
    assert b.get_stats(eid).failed_requests == 1


def test_truncated_stream_is_interrupted() -> None:
    """A stream that ends without [DONE] after text raises StreamInterruptedError."""
    server = Server(stream_response(sse(chunk("Hel"), chunk("lo"), done=False)))
    b, eid = backend(server)
    with pytest.raises(StreamInterruptedError):
        list(b.stream_chat(HI, endpoint_id=eid))
    assert len(server.requests) == 1


def test_stream_truncated_before_text_is_retried() -> None:
    """A stream cut before any text is retried; the second attempt's usage is counted."""
    server = Server(stream_response(sse(done=False)),
                    stream_response(sse(chunk("ok", "stop"), chunk(usage=STREAM_USAGE))))
    b, eid = backend(server)
    assert "".join(c.delta for c in b.stream_chat(HI, endpoint_id=eid)) == "ok"
    stats = b.get_stats(eid)
    assert (stats.retries, stats.total_tokens) == (1, 12)


def test_stream_status_error_before_events() -> None:
    """An error status on the stream request is classified like a unary one."""
    server = Server(error(429, "You exceeded your current quota", "insufficient_quota",
                          "insufficient_quota"))
    b, eid = backend(server)
    with pytest.raises(QuotaExceededError):
        list(b.stream_chat(HI, endpoint_id=eid))
    assert len(server.requests) == 1


# -- classify_error is total ---------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(failure=strategies.failures())
def test_classify_error_is_total(failure: Failure) -> None:
    """Any status, headers and body (JSON or not, truncated) classify without raising."""
    result = assert_total(classify_error, failure)
    assert isinstance(result, Classification)
    assert isinstance(result.kind, ErrorKind)
    assert isinstance(result.retryable, bool)


# -- codes that are missing or HTTP statuses: the message decides --------------------------

def test_context_length_with_a_status_for_code() -> None:
    """A proxy's code "400" with OpenAI's context wording is a ContextLengthError."""
    server = Server(error(400, "This model's maximum context length is 128000 tokens. However,"
                          " your messages resulted in 130001 tokens.", "invalid_request_error",
                          "400"), OK)
    b, eid = backend(server)
    with pytest.raises(ContextLengthError) as info:
        b.chat(HI, endpoint_id=eid)
    assert (info.value.attempts, info.value.code) == (1, "400")
    assert len(server.requests) == 1


@pytest.mark.parametrize("code", ["429", None])
def test_quota_with_a_status_or_no_code_is_not_retried(code: str | None) -> None:
    """A 429 whose code is "429" (or missing) but says "exceeded your current quota" is a
    QuotaExceededError on the first attempt, not a rate limit retried for half a minute."""
    server = Server(error(429, "You exceeded your current quota, please check your plan and "
                          "billing details.", "rate_limit_error", code,
                          headers={"retry-after": "0"}), OK)
    b, eid = backend(server, max_retries=3)
    with pytest.raises(QuotaExceededError) as info:
        b.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1
    assert len(server.requests) == 1
    assert b.get_stats(eid).retries == 0


def _stream_error(body: dict[str, object], named: bool) -> httpx2.Response:
    """A 200 stream whose first event is an error (``event: error`` when ``named``)."""
    line = f"{'event: error' + chr(10) if named else ''}data: {json.dumps(body)}\n\n"
    return stream_response(line.encode())


RATE_EVENT = {"error": {"message": "Rate limit reached for gpt-4o-mini on tokens per min "
                                   "(TPM): Limit 200000, Used 199990.", "type": "tokens",
                        "param": None, "code": "rate_limit_exceeded"}}


@pytest.mark.parametrize("named", [False, True], ids=["data", "event-error"])
def test_rate_limit_event_before_any_chunk_is_retried(named: bool) -> None:
    """An error event saying rate limit, in a 200 stream before any chunk, is retried; the
    second attempt's text and usage are the call's."""
    server = Server(_stream_error(RATE_EVENT, named),
                    stream_response(sse(chunk("ok", "stop"), chunk(usage=STREAM_USAGE))))
    b, eid = backend(server)
    assert "".join(c.delta for c in b.stream_chat(HI, endpoint_id=eid)) == "ok"
    assert len(server.requests) == 2
    stats = b.get_stats(eid)
    assert (stats.retries, stats.successful_requests, stats.total_tokens) == (1, 1, 12)


def test_rate_limit_event_gives_up_as_rate_limit_error() -> None:
    """Still limited after the retries: a RateLimitError (not a ServerError), every
    attempt counted."""
    server = Server(_stream_error(RATE_EVENT, named=False))
    b, eid = backend(server, max_retries=2)
    with pytest.raises(RateLimitError) as info:
        list(b.stream_chat(HI, endpoint_id=eid))
    assert (info.value.attempts, info.value.code) == (3, "rate_limit_exceeded")
    assert len(server.requests) == 3


def test_rate_limit_event_by_message_only() -> None:
    """An error event without a code whose message says rate limit is retried too."""
    event = {"error": {"message": "Rate limit exceeded, retry shortly", "type": None}}
    server = Server(_stream_error(event, named=True), stream_response(sse(chunk("ok", "stop"))))
    b, eid = backend(server)
    assert "".join(c.delta for c in b.stream_chat(HI, endpoint_id=eid)) == "ok"
    assert len(server.requests) == 2

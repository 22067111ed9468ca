"""The claude plugin's error classification: Anthropic's error types, retries, keys."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_claude
import pytest
from _claude_fixtures import KEY, error_body, json_response, make_backend, message
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
    TransportError,
)
from ipfs_accel.testing import Recorder, strategies
from ipfs_accel.testing.strategies import assert_total

HI = [{"role": "user", "content": "Hello"}]


def test_rate_limit_retried_after_retry_after() -> None:
    """429 rate_limit_error with retry-after is retried, then the call succeeds."""
    rec = Recorder(
        json_response(429, error_body("rate_limit_error", "Number of requests has exceeded"),
                      **{"retry-after": "0.01"}),
        json_response(200, message("after wait")),
    )
    backend, eid = make_backend(rec)
    result = backend.chat(HI, endpoint_id=eid, request_id="rid-r")
    assert result.text == "after wait"
    assert len(rec.requests) == 2
    assert [r.headers["x-request-id"] for r in rec.requests] == ["rid-r", "rid-r"]
    stats = backend.get_stats()
    assert stats.successful_requests == 1
    assert stats.retries == 1


def test_rate_limit_exhausted() -> None:
    """A 429 that keeps coming ends as RateLimitError with retry_after and the attempts."""
    rec = Recorder(json_response(429, error_body("rate_limit_error", "Rate limited"),
                                 **{"retry-after": "0"}))
    backend, eid = make_backend(rec, max_retries=2)
    with pytest.raises(RateLimitError) as info:
        backend.chat(HI, endpoint_id=eid)
    exc = info.value
    assert exc.attempts == 3
    assert exc.status == 429
    assert exc.code == "rate_limit_error"
    assert exc.retry_after == 0.0
    assert exc.server_request_id == "req_server_1"


def test_overloaded_529_retried_then_raised() -> None:
    """529 overloaded_error is retried and ends as OverloadedError."""
    rec = Recorder(json_response(529, error_body("overloaded_error", "Overloaded")))
    backend, eid = make_backend(rec, max_retries=2)
    with pytest.raises(OverloadedError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 3
    assert info.value.status == 529
    assert "Overloaded" in str(info.value)


def test_overloaded_then_success() -> None:
    """One 529 then a 200: the call succeeds."""
    rec = Recorder(json_response(529, error_body("overloaded_error", "Overloaded")),
                   json_response(200, message()))
    backend, eid = make_backend(rec)
    assert backend.chat(HI, endpoint_id=eid).text == "Hi! My name is Claude."


def test_api_error_500_retried() -> None:
    """500 api_error is retried, then succeeds."""
    rec = Recorder(json_response(500, error_body("api_error", "Internal server error")),
                   json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat(HI, endpoint_id=eid)
    assert len(rec.requests) == 2


def test_timeout_error_504_retried() -> None:
    """504 timeout_error is retried as a server error, then succeeds."""
    rec = Recorder(json_response(504, error_body("timeout_error", "Request timeout")),
                   json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat(HI, endpoint_id=eid)
    assert len(rec.requests) == 2


def test_api_error_500_exhausted() -> None:
    """A 500 that keeps coming ends as ServerError after max_retries + 1 attempts."""
    rec = Recorder(json_response(500, error_body("api_error", "Internal server error")))
    backend, eid = make_backend(rec, max_retries=1)
    with pytest.raises(ServerError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 2


@pytest.mark.parametrize(
    ("status", "kind", "text", "exc_type"),
    [
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (403, "permission_error", "Your API key does not have permission", AuthenticationError),
        (404, "not_found_error", "model: claude-nope", NotFoundError),
        (400, "invalid_request_error", "messages: roles must alternate", BadRequestError),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes",
         BadRequestError),
        (402, "billing_error", "Your credit balance is too low", QuotaExceededError),
    ],
)
def test_non_retryable_errors_raise_at_once(
    status: int, kind: str, text: str, exc_type: type[Exception]
) -> None:
    """Client errors raise the matching class after one attempt, with the server's message."""
    rec = Recorder(json_response(status, error_body(kind, text)))
    backend, eid = make_backend(rec)
    with pytest.raises(exc_type) as info:
        backend.chat(HI, endpoint_id=eid, request_id="rid-e")
    exc: Any = info.value
    assert exc.attempts == 1
    assert exc.status == status
    assert exc.code == kind
    assert exc.message == text
    assert exc.request_id == "rid-e"
    assert exc.server_request_id == "req_server_1"
    assert len(rec.requests) == 1
    assert backend.get_stats().failed_requests == 1


def test_prompt_too_long_is_context_length() -> None:
    """400 invalid_request_error 'prompt is too long' raises ContextLengthError at once."""
    text = "prompt is too long: 208310 tokens > 200000 maximum"
    rec = Recorder(json_response(400, error_body("invalid_request_error", text)))
    backend, eid = make_backend(rec)
    with pytest.raises(ContextLengthError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1
    assert isinstance(info.value, BadRequestError)


def test_413_without_json_body() -> None:
    """A 413 from a proxy with an HTML body is still a BadRequestError, not retried."""
    rec = Recorder(httpx2.Response(413, content=b"<html>Request Entity Too Large</html>"))
    backend, eid = make_backend(rec)
    with pytest.raises(BadRequestError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1


def test_should_retry_header_wins() -> None:
    """x-should-retry: false stops retrying even an overloaded_error."""
    rec = Recorder(json_response(529, error_body("overloaded_error", "Overloaded"),
                                 **{"x-should-retry": "false"}))
    backend, eid = make_backend(rec)
    with pytest.raises(OverloadedError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 1


def test_transport_error_retried() -> None:
    """A dropped connection is retried; when it persists, TransportError."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    backend, eid = make_backend(handler, max_retries=1)
    with pytest.raises(TransportError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert info.value.attempts == 2


def test_key_never_in_auth_error() -> None:
    """The API key appears in neither str() nor repr() of an auth error, even if echoed."""
    rec = Recorder(json_response(401, error_body("authentication_error",
                                                 f"invalid x-api-key {KEY}")))
    backend, eid = make_backend(rec)
    with pytest.raises(AuthenticationError) as info:
        backend.chat(HI, endpoint_id=eid)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert KEY not in repr(backend.get_endpoint(eid))
    assert info.value.body is None or KEY not in repr(info.value.body)


@pytest.mark.parametrize(
    ("kind", "expected", "retryable"),
    [
        ("rate_limit_error", ErrorKind.RATE_LIMITED, True),
        ("overloaded_error", ErrorKind.OVERLOADED, True),
        ("api_error", ErrorKind.SERVER, True),
        ("timeout_error", ErrorKind.SERVER, True),
        ("invalid_request_error", ErrorKind.BAD_REQUEST, False),
        ("authentication_error", ErrorKind.AUTH, False),
    ],
)
def test_stream_error_event_kinds(kind: str, expected: ErrorKind, retryable: bool) -> None:
    """An error event inside a 200 stream is classified by its error type."""
    data = {"type": "error", "error": {"type": kind, "message": "m"}}
    c = ipfs_accel_claude.classify_error(
        Failure(operation="stream_chat", status=200, data=data, in_stream=True)
    )
    assert (c.kind, c.retryable, c.code) == (expected, retryable, kind)


def test_unknown_error_type_falls_back_to_status() -> None:
    """An error type the plugin does not know keeps the status's classification."""
    data = error_body("brand_new_error", "new")
    c = ipfs_accel_claude.classify_error(Failure(operation="chat", status=503, data=data))
    assert (c.kind, c.retryable, c.code, c.message) == (
        ErrorKind.OVERLOADED, True, "brand_new_error", "new"
    )


_json = strategies.json_values()
_error_shaped = st.builds(  # Anthropic's own shape: {"type": "error", "error": {"type", "message"}}
    lambda t, m, extra: {"type": "error", "error": {"type": t, "message": m, **extra}},
    st.sampled_from(["rate_limit_error", "overloaded_error", "invalid_request_error",
                     "api_error", "x"]) | _json,
    st.sampled_from(["prompt is too long: 5 > 4", ""]) | _json,
    st.dictionaries(st.text(), _json, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(failure=strategies.failures(bodies=strategies.bodies(documents=_error_shaped)))
def test_classify_error_is_total(failure: Failure) -> None:
    """classify_error returns a Classification for any status, headers and body; never raises."""
    c = assert_total(ipfs_accel_claude.classify_error, failure)
    assert isinstance(c, Classification)
    assert isinstance(c.kind, ErrorKind)
    assert isinstance(c.message, str)

"""Gemini error bodies: classification, retries, RetryInfo delays, and no key in any message."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import ipfs_accel_gemini
import pytest
from _gemini_fixtures import (
    KEY,
    Recorder,
    backend,
    endpoint,
    error_body,
    generate_response,
    json_response,
    retry_info,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import (
    AuthenticationError,
    BadRequestError,
    CallError,
    Classification,
    ContextLengthError,
    ErrorKind,
    Failure,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    ServerError,
)
from ipfs_accel._wire import decode_json
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total

HI = [{"role": "user", "content": "Hi"}]


def _classify(status: int, body: Any, headers: dict[str, str] | None = None) -> Classification:
    content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return ipfs_accel_gemini.classify_error(Failure(
        operation="chat", status=status, headers=headers or {}, content=content,
        data=decode_json(content),
    ))


def test_429_waits_for_retry_delay_then_succeeds() -> None:
    """RESOURCE_EXHAUSTED with a RetryInfo delay is retried, and the call then succeeds."""
    limited = error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted",
                         [retry_info("0.01s")])
    rec = Recorder(json_response(429, limited), json_response(200, generate_response("ok")))
    b = backend(rec)
    result = b.chat(HI, endpoint_id=endpoint(b))
    assert result.text == "ok"
    assert len(rec.requests) == 2
    assert b.get_stats().retries == 1


@pytest.mark.parametrize(("delay", "seconds"), [("37s", 37.0), ("1.5s", 1.5), ("0s", 0.0)])
def test_retry_delay_is_returned_as_retry_after(delay: str, seconds: float) -> None:
    """The RetryInfo retryDelay Duration becomes Classification.retry_after in seconds."""
    body = error_body(429, "RESOURCE_EXHAUSTED", "quota", [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        retry_info(delay),
    ])
    c = _classify(429, body)
    assert c.kind is ErrorKind.RATE_LIMITED
    assert c.retryable
    assert c.retry_after == seconds
    assert c.code == "RESOURCE_EXHAUSTED"


def test_retry_delay_wins_over_retry_after_header_and_header_is_a_fallback() -> None:
    """The body's RetryInfo is used; without one, the Retry-After header is."""
    body = error_body(429, "RESOURCE_EXHAUSTED", "quota", [retry_info("2s")])
    assert _classify(429, body, {"retry-after": "9"}).retry_after == 2.0
    no_info = error_body(429, "RESOURCE_EXHAUSTED", "quota")
    assert _classify(429, no_info, {"retry-after": "9"}).retry_after == 9.0


def test_429_retry_after_on_the_raised_error() -> None:
    """When retries run out, the RateLimitError carries the server's delay."""
    limited = error_body(429, "RESOURCE_EXHAUSTED", "slow down", [retry_info("0.002s")])
    rec = Recorder(json_response(429, limited))
    b = backend(rec)
    with pytest.raises(RateLimitError) as info:
        b.chat(HI, endpoint_id=endpoint(b, max_retries=1))
    assert info.value.retry_after == 0.002
    assert info.value.attempts == 2
    assert info.value.status == 429


@pytest.mark.parametrize(
    ("status", "name", "details", "error"),
    [
        (400, "INVALID_ARGUMENT", None, BadRequestError),
        (400, "FAILED_PRECONDITION", None, BadRequestError),
        (400, "INVALID_ARGUMENT",
         [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
           "domain": "googleapis.com"}], AuthenticationError),
        (401, "UNAUTHENTICATED", None, AuthenticationError),
        (403, "PERMISSION_DENIED", None, AuthenticationError),
        (404, "NOT_FOUND", None, NotFoundError),
    ],
)
def test_non_retryable_errors_raise_at_once(
    status: int, name: str, details: list[Any] | None, error: type[CallError]
) -> None:
    """Client errors are raised after one attempt, with the server's message and status name."""
    rec = Recorder(json_response(status, error_body(status, name, f"{name} happened", details)))
    b = backend(rec)
    with pytest.raises(error) as info:
        b.chat(HI, endpoint_id=endpoint(b), request_id="req-x")
    exc = info.value
    assert type(exc) is error
    assert exc.attempts == 1
    assert len(rec.requests) == 1
    assert exc.status == status
    assert exc.code == name
    assert exc.message == f"{name} happened"
    assert exc.request_id == "req-x"


def test_context_too_long_is_a_context_length_error() -> None:
    """The 'input token count exceeds the maximum' INVALID_ARGUMENT is a ContextLengthError."""
    msg = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
    rec = Recorder(json_response(400, error_body(400, "INVALID_ARGUMENT", msg)))
    b = backend(rec)
    with pytest.raises(ContextLengthError) as info:
        b.chat(HI, endpoint_id=endpoint(b))
    assert info.value.attempts == 1


@pytest.mark.parametrize(
    ("status", "name", "error"),
    [
        (500, "INTERNAL", ServerError),
        (503, "UNAVAILABLE", OverloadedError),
        (504, "DEADLINE_EXCEEDED", ServerError),
    ],
)
def test_server_errors_are_retried(status: int, name: str, error: type[CallError]) -> None:
    """5xx answers are retried: success after one, and the right error when retries run out."""
    failing = json_response(status, error_body(status, name, "try again"))
    rec = Recorder(failing, json_response(200, generate_response("recovered")))
    b = backend(rec)
    assert b.chat(HI, endpoint_id=endpoint(b)).text == "recovered"
    assert len(rec.requests) == 2

    rec = Recorder(failing)
    b = backend(rec)
    with pytest.raises(error) as info:
        b.chat(HI, endpoint_id=endpoint(b, max_retries=2))
    assert info.value.attempts == 3
    assert info.value.code == name


def test_non_json_error_body_is_classified_by_status() -> None:
    """An HTML 502 from a proxy is a retryable server error with the body's text."""
    c = _classify(502, b"<html>Bad Gateway</html>")
    assert (c.kind, c.retryable) == (ErrorKind.SERVER, True)
    assert "Bad Gateway" in c.message


def test_list_wrapped_error_body_is_read() -> None:
    """The ``[{"error": ...}]`` form (non-SSE streams) is read like the plain one."""
    c = _classify(404, [error_body(404, "NOT_FOUND", "models/x is not found")])
    assert (c.kind, c.code) == (ErrorKind.NOT_FOUND, "NOT_FOUND")
    assert c.message == "models/x is not found"


def test_key_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Even when the server echoes the key, no exception text, repr or log line shows it."""
    caplog.set_level(logging.DEBUG)
    body = error_body(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
    ])
    rec = Recorder(json_response(500, error_body(500, "INTERNAL", "x")), json_response(400, body))
    b = backend(rec)
    with pytest.raises(AuthenticationError) as info:
        b.chat(HI, endpoint_id=endpoint(b))
    exc = info.value
    for text in (str(exc), repr(exc), exc.message, json.dumps(exc.body), caplog.text):
        assert KEY not in text
    assert all(KEY not in str(r.url) for r in rec.requests)


_json = strategies.json_values()
_detail = st.one_of(
    _json,
    st.fixed_dictionaries({
        "@type": st.sampled_from([
            "type.googleapis.com/google.rpc.RetryInfo", "type.googleapis.com/google.rpc.ErrorInfo",
            "type.googleapis.com/google.rpc.QuotaFailure",
        ]) | st.text(max_size=10),
    }, optional={
        "retryDelay": _json | st.from_regex(r"-?[0-9.e+]{0,12}s?", fullmatch=True)
        | st.fixed_dictionaries({}, optional={"seconds": _json, "nanos": _json}),
        "reason": _json,
    }),
)
_error = st.fixed_dictionaries({}, optional={  # Google's error object, details and all
    "code": _json, "message": _json,
    "status": st.sampled_from(["RESOURCE_EXHAUSTED", "INVALID_ARGUMENT", "UNAVAILABLE"]) | _json,
    "details": st.lists(_detail, max_size=4) | _json,
})


@settings(max_examples=400, deadline=None)
@given(failure=strategies.failures(bodies=strategies.bodies(errors=_error)))
def test_classify_error_is_total(failure: Failure) -> None:
    """Any status, headers and body (odd JSON, broken JSON, bytes) gives a Classification."""
    c = assert_total(ipfs_accel_gemini.classify_error, failure)
    assert isinstance(c, Classification)
    assert isinstance(c.kind, ErrorKind)
    assert c.retry_after is None or 0 <= c.retry_after < math.inf

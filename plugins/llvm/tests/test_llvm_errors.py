"""The llvm backend's errors, retries and keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
import ipfs_accel_llvm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import (
    AuthenticationError,
    Backend,
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
    TimeoutError,
    TransportError,
)
from ipfs_accel._wire import decode_json
from ipfs_accel.testing import FAST_RETRIES, mock_backend, strategies
from ipfs_accel.testing import Recorder as Script
from ipfs_accel.testing.strategies import assert_total

OK = {"result": "fine", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


def make_backend(
    handler: Callable[[httpx2.Request], httpx2.Response], **settings: Any
) -> tuple[Backend, str]:
    backend = mock_backend(ipfs_accel_llvm, handler)
    eid = backend.create_endpoint(**{**FAST_RETRIES, "base_url": "http://llvm.test", **settings})
    return backend, eid


def error(
    status: int, message: Any = "boom", headers: Mapping[str, str] | None = None
) -> httpx2.Response:
    return httpx2.Response(status, json={"error": message}, headers=headers)


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (429, RateLimitError),
        (503, OverloadedError),
        (500, ServerError),
        (502, ServerError),
        (504, ServerError),
    ],
)
def test_retryable_statuses_are_retried_then_succeed(status: int, exc_type: type) -> None:
    """429, 503 and other 5xx are retried; the call then succeeds with the later answer."""
    script = Script(error(status), error(status), httpx2.Response(200, json=OK))
    backend, eid = make_backend(script)
    out = backend.generate("hi", endpoint_id=eid, request_id="req-retry")
    assert out.text == "fine"
    assert len(script.requests) == 3
    assert {r.headers["X-Request-ID"] for r in script.requests} == {"req-retry"}
    stats = backend.get_stats(eid)
    assert stats.successful_requests == 1
    assert stats.failed_requests == 0


@pytest.mark.parametrize(
    ("status", "exc_type", "kind"),
    [
        (429, RateLimitError, ErrorKind.RATE_LIMITED),
        (503, OverloadedError, ErrorKind.OVERLOADED),
        (500, ServerError, ErrorKind.SERVER),
    ],
)
def test_retryable_statuses_give_up_after_max_retries(
    status: int, exc_type: type[CallError], kind: ErrorKind
) -> None:
    """A retryable error that persists raises its class after max_retries + 1 attempts."""
    script = Script(error(status, "still failing"))
    backend, eid = make_backend(script, max_retries=2)
    with pytest.raises(exc_type) as info:
        backend.generate("hi", endpoint_id=eid, request_id="req-x")
    exc = info.value
    assert exc.kind is kind
    assert exc.attempts == 3
    assert exc.status == status
    assert exc.message == "still failing"
    assert exc.request_id == "req-x"
    assert exc.backend == "llvm"
    assert exc.endpoint_id == eid
    assert len(script.requests) == 3


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status: int) -> None:
    """Retry-After on 429/503 is read into retry_after and waited for before the retry."""
    script = Script(error(status, headers={"Retry-After": "0.05"}), httpx2.Response(200, json=OK))
    backend, eid = make_backend(script)
    assert backend.generate("hi", endpoint_id=eid).text == "fine"
    assert len(script.requests) == 2
    assert backend.get_stats(eid).retries >= 1

    script = Script(error(status, headers={"Retry-After": "0.02"}))
    backend, eid = make_backend(script, max_retries=0)
    with pytest.raises(CallError) as info:
        backend.generate("hi", endpoint_id=eid)
    assert info.value.retry_after == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("status", "exc_type", "message"),
    [
        (400, BadRequestError, "input is required"),
        (401, AuthenticationError, "invalid API key"),
        (403, AuthenticationError, "forbidden"),
        (404, NotFoundError, "model not found: default"),
        (409, BadRequestError, "conflict"),
        (413, BadRequestError, "payload too large"),
        (422, BadRequestError, "bad parameters"),
        (400, ContextLengthError, "input exceeds the context length of 2048 tokens"),
    ],
)
def test_client_errors_raise_at_once(status: int, exc_type: type[CallError], message: str) -> None:
    """4xx other than 429 (and 408) are not retried: one attempt, the server's message kept."""
    script = Script(error(status, message), httpx2.Response(200, json=OK))
    backend, eid = make_backend(script)
    with pytest.raises(exc_type) as info:
        backend.generate("hi", endpoint_id=eid)
    assert type(info.value) is exc_type
    assert info.value.attempts == 1
    assert info.value.status == status
    assert info.value.message == message
    assert len(script.requests) == 1
    assert backend.get_stats(eid).failed_requests == 1


def test_408_is_a_retried_timeout() -> None:
    """408 Request Timeout is transient: retried like a timeout."""
    script = Script(error(408), httpx2.Response(200, json=OK))
    backend, eid = make_backend(script)
    assert backend.generate("hi", endpoint_id=eid).text == "fine"
    assert len(script.requests) == 2


def test_transport_errors_are_retried() -> None:
    """Connection errors and timeouts are retried, and raise their class when they persist."""
    script = Script(httpx2.ConnectError("refused"), httpx2.Response(200, json=OK))
    backend, eid = make_backend(script)
    assert backend.generate("hi", endpoint_id=eid).text == "fine"
    assert len(script.requests) == 2

    backend, eid = make_backend(Script(httpx2.ReadTimeout("slow")), max_retries=1)
    with pytest.raises(TimeoutError) as info:
        backend.invoke("status", endpoint_id=eid)
    assert info.value.attempts == 2

    backend, eid = make_backend(Script(httpx2.ConnectError("refused")), max_retries=0)
    with pytest.raises(TransportError) as err:
        backend.invoke("list_models", endpoint_id=eid)
    assert err.value.attempts == 1


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"error": "plain"}, "plain", None),
        ({"error": {"message": "nested", "code": "model_busy"}}, "nested", "model_busy"),
        ({"error": "with code", "code": 1234}, "with code", "1234"),
        ({"error": ["a", "b"]}, '["a","b"]', None),
        ({"error": {"detail": "odd"}}, '{"detail":"odd"}', None),
    ],
)
def test_error_bodies_are_read(body: Any, message: str, code: str | None) -> None:
    """The message and code come from {"error": ...} bodies of the shapes servers send."""
    backend, eid = make_backend(Script(httpx2.Response(400, json=body)))
    with pytest.raises(BadRequestError) as info:
        backend.invoke("reload", endpoint_id=eid)
    assert info.value.message == message
    assert info.value.code == code
    assert info.value.body == body


def test_non_json_error_body() -> None:
    """A non-JSON error body gives its text as the message."""
    backend, eid = make_backend(Script(httpx2.Response(404, text="no such route")))
    with pytest.raises(NotFoundError, match="no such route"):
        backend.invoke("model_info", model="nope", endpoint_id=eid)


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints, two keys: each request carries its endpoint's Bearer key; none without."""
    script = Script(httpx2.Response(200, json=OK))
    backend, first = make_backend(script, api_key="key-one")
    second = backend.create_endpoint(
        base_url="http://other.test", api_key="key-two", initial_retry_delay=0.001
    )
    keyless = backend.create_endpoint(base_url="http://free.test", initial_retry_delay=0.001)
    backend.generate("a", endpoint_id=first)
    backend.invoke("status", endpoint_id=second)
    backend.invoke("list_models", endpoint_id=keyless)
    one, two, three = script.requests
    assert (one.url.host, one.headers["authorization"]) == ("llvm.test", "Bearer key-one")
    assert (two.url.host, two.headers["authorization"]) == ("other.test", "Bearer key-two")
    assert three.url.host == "free.test"
    assert "authorization" not in three.headers


def test_key_never_in_error_str_or_repr() -> None:
    """A server that echoes the key back: the error's str, repr and body never show it."""
    key = "sk-llvm-secret-123"
    script = Script(error(401, f"bad key {key}"))
    backend, eid = make_backend(script, api_key=key)
    with pytest.raises(AuthenticationError) as info:
        backend.generate("hi", endpoint_id=eid)
    exc = info.value
    assert script.requests[0].headers["authorization"] == f"Bearer {key}"
    for text in (str(exc), repr(exc), exc.message, str(exc.body), repr(backend.get_endpoint(eid))):
        assert key not in text
    assert exc.attempts == 1

    script = Script(httpx2.ConnectError(f"proxy said {key}"))
    backend, eid = make_backend(script, api_key=key, max_retries=0)
    with pytest.raises(TransportError) as err:
        backend.invoke("status", endpoint_id=eid)
    assert key not in str(err.value)
    assert key not in repr(err.value)


# -- classify_error is total ---------------------------------------------------------

def _lowered(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@settings(max_examples=300, deadline=None)
@given(failure=strategies.failures(
    operations=sorted(ipfs_accel_llvm.backend_info().operations),
    headers=strategies.headers().map(_lowered),
    bodies=strategies.bodies(documents=st.just({"error": "context length exceeded"})),
    in_stream=False,  # the status rules below are for error responses, not stream events
))
def test_classify_error_is_total(failure: Failure) -> None:
    """classify_error returns a Classification for any status, headers and body; never raises."""
    c = assert_total(ipfs_accel_llvm.classify_error, failure)
    assert isinstance(c, Classification)
    assert isinstance(c.kind, ErrorKind)
    assert isinstance(c.message, str)
    status, should_retry = failure.status, failure.headers.get("x-should-retry")
    if status is None:  # a transport exception, no response
        return
    if 400 <= status < 500 and status not in (408, 429) and should_retry != "true":
        assert c.retryable is False
    if status in (429, 503) and should_retry != "false":
        assert c.retryable is True


@settings(max_examples=50, deadline=None)
@given(exc=strategies.transport_exceptions())
def test_classify_error_is_total_for_transport_failures(exc: BaseException) -> None:
    """Transport exceptions classify as retryable transport or timeout errors."""
    c = assert_total(ipfs_accel_llvm.classify_error, Failure(operation="generate", exception=exc))
    assert isinstance(c, Classification)
    assert c.retryable is True
    assert c.kind in (ErrorKind.TRANSPORT, ErrorKind.TIMEOUT)


def test_truncated_json_error_body() -> None:
    """A truncated JSON error body still gives a readable message."""
    content = b'{"error": "overloa'
    c = ipfs_accel_llvm.classify_error(
        Failure(operation="infer", status=503, content=content, data=decode_json(content))
    )
    assert c.kind is ErrorKind.OVERLOADED
    assert c.retryable is True
    assert json.dumps(c.message)  # a plain str
    assert "overloa" in c.message

"""hf_tgi: error classes, retries and the totality of classify_error."""

from __future__ import annotations

import httpx2
import pytest
from _hf_tgi_fixtures import CHAT, GENERATE, STREAM, Server, backend, error, sse
from hypothesis import given, settings
from ipfs_accel import (
    BadRequestError,
    Classification,
    ContextLengthError,
    ErrorKind,
    Failure,
    NotFoundError,
    OverloadedError,
    ResponseError,
    ServerError,
    TransportError,
)
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total
from ipfs_accel_hf_tgi import classify_error


def test_429_overloaded_retried_then_success() -> None:
    """TGI's 429 'Model is overloaded' is retried with backoff (no Retry-After) and succeeds."""
    server = Server(error(429, "Model is overloaded", "overloaded"),
                    error(429, "Model is overloaded", "overloaded"),
                    httpx2.Response(200, json=GENERATE))
    b, eid = backend(server)
    result = b.generate("p", endpoint_id=eid, request_id="req-r")
    assert result.text == " Paris."
    assert len(server.requests) == 3
    assert {r.headers["x-request-id"] for r in server.requests} == {"req-r"}
    stats = b.get_stats(eid)
    assert stats.successful_requests == 1 and stats.failed_requests == 0


def test_503_retried_then_success() -> None:
    """A 503 (server not ready) is retried and then succeeds."""
    server = Server(httpx2.Response(503, json={"error": "unhealthy", "error_type": "healthcheck"}),
                    httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    assert b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid).text == "Hello!"
    assert len(server.requests) == 2


def test_overloaded_exhausts_retries() -> None:
    """Overload that never ends raises OverloadedError after max_retries + 1 attempts."""
    server = Server(error(429, "Model is overloaded", "overloaded"))
    b, eid = backend(server, max_retries=2)
    with pytest.raises(OverloadedError) as info:
        b.generate("p", endpoint_id=eid)
    assert info.value.attempts == 3 and info.value.status == 429
    assert info.value.code == "overloaded"
    assert info.value.retry_after is None


def test_stream_overloaded_retried() -> None:
    """A 429 before a stream starts is retried like a unary call."""
    server = Server(error(429, "Model is overloaded", "overloaded"), sse(STREAM))
    b, eid = backend(server)
    assert "".join(c.delta for c in b.stream_generate("p", endpoint_id=eid)) == " Paris."
    assert len(server.requests) == 2


def test_422_validation_not_retried() -> None:
    """422 validation raises BadRequestError at once, with the server's message and type."""
    server = Server(error(422, "Input validation error: `temperature` must be strictly positive",
                          "validation"))
    b, eid = backend(server)
    with pytest.raises(BadRequestError) as info:
        b.generate("p", endpoint_id=eid, temperature=0)
    err = info.value
    assert not isinstance(err, ContextLengthError)
    assert err.attempts == 1 and len(server.requests) == 1
    assert err.status == 422 and err.code == "validation"
    assert "temperature" in err.message
    assert err.backend == "hf_tgi" and err.endpoint_id == eid


def test_422_input_too_long_is_context_length() -> None:
    """A validation error about the input's token count is a ContextLengthError."""
    server = Server(error(422, "Input validation error: `inputs` tokens + `max_new_tokens` "
                               "must be <= 2048. Given: 2000 `inputs` tokens and 100 "
                               "`max_new_tokens`", "validation"))
    b, eid = backend(server)
    with pytest.raises(ContextLengthError) as info:
        b.generate("p", endpoint_id=eid, max_tokens=100)
    assert info.value.attempts == 1


def test_424_generation_not_retried() -> None:
    """424 generation errors raise ServerError at once."""
    server = Server(error(424, "Request failed during generation", "generation"))
    b, eid = backend(server)
    with pytest.raises(ServerError) as info:
        b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid)
    assert info.value.attempts == 1 and len(server.requests) == 1
    assert info.value.code == "generation"


def test_500_incomplete_generation_retried() -> None:
    """500 'Incomplete generation' is a server error and retried."""
    server = Server(error(500, "Incomplete generation", "incomplete_generation"),
                    httpx2.Response(200, json=GENERATE))
    b, eid = backend(server)
    assert b.generate("p", endpoint_id=eid).text == " Paris."
    assert len(server.requests) == 2


def test_404_not_retried() -> None:
    """A 404 (route missing, e.g. an old TGI without the Messages API) is not retried."""
    server = Server(httpx2.Response(404, text="Not Found"))
    b, eid = backend(server)
    with pytest.raises(NotFoundError) as info:
        b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid)
    assert info.value.attempts == 1


def test_transport_error_retried() -> None:
    """A refused connection is retried, then succeeds."""
    calls = {"n": 0}

    def flaky(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx2.ConnectError("connection refused", request=request)
        return httpx2.Response(200, json=GENERATE)

    b, eid = backend(Server(flaky))
    assert b.generate("p", endpoint_id=eid).text == " Paris."
    assert calls["n"] == 2


def test_transport_error_exhausted() -> None:
    """A server that never answers raises TransportError after every attempt."""
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    b, eid = backend(Server(down), max_retries=1)
    with pytest.raises(TransportError) as info:
        b.generate("p", endpoint_id=eid)
    assert info.value.attempts == 2


def test_unreadable_body_is_response_error() -> None:
    """A 200 without generated_text is a ResponseError, not a crash."""
    b, eid = backend(Server(httpx2.Response(200, json={"unexpected": 1})))
    with pytest.raises(ResponseError):
        b.generate("p", endpoint_id=eid)


def test_classify_in_stream_overloaded() -> None:
    """An overloaded error event mid-stream is classified as overload."""
    c = classify_error(Failure(operation="stream_generate", status=200, in_stream=True,
                               data={"error": "Model is overloaded", "error_type": "overloaded"}))
    assert c.kind is ErrorKind.OVERLOADED


@settings(deadline=None)
@given(failure=strategies.failures(operations=["chat", "generate", "stream_chat", "stream_generate", "info"]))
def test_classify_error_is_total(failure: Failure) -> None:
    """classify_error returns a Classification for any status, headers and body."""
    c = assert_total(classify_error, failure)
    assert isinstance(c, Classification)
    assert isinstance(c.kind, ErrorKind)
    assert isinstance(c.retryable, bool)


@settings(deadline=None)
@given(exc=strategies.transport_exceptions())
def test_classify_error_exceptions(exc: Exception) -> None:
    """Transport exceptions are classified (retryable) without raising."""
    c = classify_error(Failure(operation="generate", exception=exc))
    assert c.retryable

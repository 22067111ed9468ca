"""hf_tei: error classes, retries and the totality of classify_error."""

from __future__ import annotations

import httpx2
import pytest
from _hf_tei_fixtures import Server, backend, embed_server, error
from hypothesis import given, settings
from ipfs_accel import (
    BadRequestError,
    Classification,
    ContextLengthError,
    ErrorKind,
    Failure,
    OverloadedError,
    ServerError,
)
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total
from ipfs_accel_hf_tei import classify_error


def test_429_overloaded_retried_then_success() -> None:
    """429 Overloaded is retried with backoff, then succeeds; same request ID each time."""
    server = Server(error(429, "Model is overloaded", "overloaded"), embed_server())
    b, eid = backend(server)
    result = b.embed("t1", endpoint_id=eid, request_id="req-1")
    assert result.vectors == [[1.0, 1.5, -1.0]]
    assert len(server.requests) == 2
    assert {r.headers["x-request-id"] for r in server.requests} == {"req-1"}


def test_overloaded_capitalised_type() -> None:
    """The spec's enum spelling 'Overloaded' is read the same way."""
    c = classify_error(Failure(operation="embed", status=429,
                               data={"error": "Model is overloaded", "error_type": "Overloaded"}))
    assert c.kind is ErrorKind.OVERLOADED and c.retryable and c.code == "Overloaded"


def test_503_retried_then_exhausted() -> None:
    """503 (unhealthy) is retried; when it never ends OverloadedError after every attempt."""
    server = Server(httpx2.Response(503, json={"error": "unhealthy", "error_type": "unhealthy"}))
    b, eid = backend(server, max_retries=2)
    with pytest.raises(OverloadedError) as got:
        b.invoke("health", endpoint_id=eid)
    assert got.value.attempts == 3 and len(server.requests) == 3


def test_413_not_retried() -> None:
    """413 batch too large raises BadRequestError at once."""
    server = Server(error(413, "batch size 64 > maximum allowed batch size 32", "validation"))
    b, eid = backend(server, max_client_batch_size=64)
    with pytest.raises(BadRequestError) as got:
        b.embed([f"t{i}" for i in range(64)], endpoint_id=eid)
    err = got.value
    assert not isinstance(err, ContextLengthError)
    assert err.attempts == 1 and len(server.requests) == 1
    assert err.status == 413 and err.code == "validation"
    assert "maximum allowed batch size" in err.message


def test_413_input_too_long_is_context_length() -> None:
    """An input with too many tokens is a ContextLengthError, not retried."""
    server = Server(error(413, "Input validation error: `inputs` must have less than 512 "
                               "tokens. Given: 600", "validation"))
    b, eid = backend(server)
    with pytest.raises(ContextLengthError) as got:
        b.embed("t1", endpoint_id=eid)
    assert got.value.attempts == 1


def test_422_tokenizer_and_400_empty_not_retried() -> None:
    """422 tokenizer and 400 empty-batch errors raise BadRequestError at once."""
    for status, etype in ((422, "tokenizer"), (400, "empty")):
        server = Server(error(status, "nope", etype))
        b, eid = backend(server)
        with pytest.raises(BadRequestError) as got:
            b.embed("t1", endpoint_id=eid)
        assert got.value.attempts == 1 and got.value.code == etype


def test_424_backend_not_retried() -> None:
    """424 (the model cannot do this, e.g. rerank on an embedding model) is not retried."""
    server = Server(error(424, "Inference failed", "backend"))
    b, eid = backend(server)
    with pytest.raises(ServerError) as got:
        b.invoke("rerank", endpoint_id=eid, query="q", texts=["a"])
    assert got.value.attempts == 1


def test_openai_route_error_shape() -> None:
    """The /v1/embeddings error shape {message, code, error_type} is read too."""
    body = {"message": "Model is overloaded", "code": 429, "error_type": "Overloaded"}
    server = Server(httpx2.Response(429, json=body),
                    httpx2.Response(413, json={"message": "Batch size error", "code": 413,
                                               "error_type": "Validation"}))
    b, eid = backend(server, openai_api=True)
    with pytest.raises(BadRequestError) as got:
        b.embed("t1", endpoint_id=eid)
    assert len(server.requests) == 2
    assert got.value.message == "Batch size error" and got.value.code == "Validation"


@settings(deadline=None)
@given(failure=strategies.failures(operations=["embed", "rerank", "openai_embed", "health", "info"]))
def test_classify_error_is_total(failure: Failure) -> None:
    """classify_error returns a Classification for any status, headers and body."""
    c = assert_total(classify_error, failure)
    assert isinstance(c, Classification)
    assert isinstance(c.kind, ErrorKind)
    assert isinstance(c.retryable, bool)


def test_transport_error_is_retryable() -> None:
    """A connection error is classified retryable."""
    c = classify_error(Failure(operation="embed", exception=httpx2.ConnectError("refused")))
    assert c.retryable and c.kind is ErrorKind.TRANSPORT


def test_503_retried_then_success() -> None:
    """A 503 while the server warms up is retried, then the embed succeeds."""
    server = Server(httpx2.Response(503, json={"error": "unhealthy", "error_type": "unhealthy"}),
                    embed_server())
    b, eid = backend(server)
    assert b.embed("t3", endpoint_id=eid).vectors == [[3.0, 3.5, -3.0]]
    assert len(server.requests) == 2

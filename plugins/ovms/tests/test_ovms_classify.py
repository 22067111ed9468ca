"""classify_error of the ovms plugin: mapping of OVMS statuses, and totality."""

from __future__ import annotations

import ipfs_accel_ovms
from hypothesis import given, settings
from ipfs_accel import Classification, ErrorKind, Failure
from ipfs_accel._wire import decode_json
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total


def _failure(status: int, body: bytes, *, in_stream: bool = False) -> Failure:
    return Failure(operation="chat", status=status, headers={}, content=body,
                   data=decode_json(body), in_stream=in_stream)


@settings(max_examples=300, deadline=None)
@given(failure=strategies.failures(operations=["chat", "stream_chat", "embed", "infer", "rerank"]))
def test_classify_error_is_total(failure: Failure) -> None:
    """Any status, headers and body give a Classification; classify_error never raises."""
    c = assert_total(ipfs_accel_ovms.classify_error, failure)
    assert isinstance(c, Classification)
    assert isinstance(c.kind, ErrorKind)


def test_classification_table() -> None:
    """OVMS statuses map to the expected kinds and retry decisions."""
    expect = {
        400: (ErrorKind.BAD_REQUEST, False),
        401: (ErrorKind.AUTH, False),
        404: (ErrorKind.NOT_FOUND, False),
        429: (ErrorKind.RATE_LIMITED, True),
        500: (ErrorKind.SERVER, True),
        502: (ErrorKind.SERVER, True),
        503: (ErrorKind.OVERLOADED, True),
    }
    for status, (kind, retryable) in expect.items():
        c = ipfs_accel_ovms.classify_error(_failure(status, b'{"error": "boom"}'))
        assert (c.kind, c.retryable, c.message) == (kind, retryable, "boom"), status


def test_mid_stream_error_is_server_error() -> None:
    """An error line inside a 200 stream is a server error with the server's message."""
    c = ipfs_accel_ovms.classify_error(
        _failure(200, b'{"error": "Mediapipe execution failed"}',
                 in_stream=True)
    )
    assert c.kind is ErrorKind.SERVER
    assert c.message == "Mediapipe execution failed"

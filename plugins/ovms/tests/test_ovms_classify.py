"""classify_error of the ovms plugin: mapping of OVMS statuses, and totality."""

from __future__ import annotations

import json

import ipfs_accel_ovms
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import Classification, ErrorKind, Failure
from ipfs_accel._wire import decode_json

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_error_bodies = st.builds(
    lambda v: {"error": v}, st.one_of(st.text(), st.integers(), st.none(), _json)
)
_bodies = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    _error_bodies.map(lambda v: json.dumps(v).encode()),
    st.tuples(_error_bodies.map(json.dumps), st.integers(0, 50)).map(
        lambda t: t[0][: t[1]].encode()  # truncated JSON
    ),
)
_headers = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "x-should-retry", "content-type"])
    | st.text(min_size=1, max_size=10),
    st.text(max_size=40),
    max_size=4,
)


def _failure(status: int, body: bytes, *, in_stream: bool = False) -> Failure:
    return Failure(operation="chat", status=status, headers={}, content=body,
                   data=decode_json(body), in_stream=in_stream)


@settings(max_examples=300, deadline=None)
@given(status=st.integers(100, 599), headers=_headers, body=_bodies, in_stream=st.booleans(),
       operation=st.sampled_from(["chat", "stream_chat", "embed", "infer", "rerank"]))
def test_classify_error_is_total(
    status: int, headers: dict[str, str], body: bytes, in_stream: bool, operation: str
) -> None:
    """Any status, headers and body give a Classification; classify_error never raises."""
    failure = Failure(operation=operation, status=status, headers=headers, content=body,
                      data=decode_json(body), in_stream=in_stream)
    c = ipfs_accel_ovms.classify_error(failure)
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

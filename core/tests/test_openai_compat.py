"""The shared OpenAI wire-format helper against the shapes the OpenAI spec gives."""

from __future__ import annotations

import base64
import re
import struct

import pytest
from ipfs_accel import Event, Response, StreamChunk, StreamFailure, Usage
from ipfs_accel import openai_compat as oa
from ipfs_accel._wire import decode_json


def _response(data: object) -> Response:
    return Response(status=200, headers={}, content=b"", data=data)


def test_usage_reads_cached_and_cache_write_tokens() -> None:
    """prompt_tokens_details.cached_tokens and .cache_write_tokens (CompletionUsage) are kept."""
    usage = oa.parse_usage(
        {
            "usage": {
                "prompt_tokens": 1117,
                "completion_tokens": 46,
                "total_tokens": 1163,
                "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 64},
            }
        }
    )
    assert usage == Usage(
        input_tokens=1117, output_tokens=46, cache_read_tokens=1024, cache_write_tokens=64
    )


def test_usage_null_in_stream_chunks_is_none() -> None:
    """Chunks before the last carry "usage": null under include_usage: no usage there."""
    assert oa.parse_usage({"choices": [], "usage": None}) is None


def test_embeddings_base64_decoded_as_float32() -> None:
    """encoding_format=base64 answers little-endian float32s in base64; they become floats."""
    values = [0.5, -1.25, 3.0]
    b64 = base64.b64encode(struct.pack("<3f", *values)).decode()
    body = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.1, 0.2]},
            {"object": "embedding", "index": 0, "embedding": b64},
        ],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    result = oa.parse_embeddings(_response(body))
    assert result.vectors == [values, [0.1, 0.2]]


def test_embeddings_bad_base64_raises() -> None:
    """A string that is not base64 is an unreadable body, not a vector of characters."""
    body = {"object": "list", "model": "m", "data": [{"index": 0, "embedding": "not b64!"}]}
    with pytest.raises(ValueError):  # the core reports it as a ResponseError
        oa.parse_embeddings(_response(body))


def _sse(data: str, event: str = "") -> Event:
    return Event(event=event, data=data, json=decode_json(data))


def test_chat_event_error_null_is_not_a_failure() -> None:
    """A chunk with "error": null is a chunk (the SDKs test the error's truth, not presence)."""
    chunk = oa.parse_chat_event(
        _sse('{"error": null, "choices": [{"index": 0, "delta": {"content": "Hi"},'
             ' "finish_reason": null}]}')
    )
    assert isinstance(chunk, StreamChunk) and chunk.delta == "Hi"


def test_chat_event_error_object_is_a_failure() -> None:
    """A chunk carrying an error object ends the stream as a failure."""
    out = oa.parse_chat_event(_sse('{"error": {"message": "boom", "type": "server_error"}}'))
    assert isinstance(out, StreamFailure)


def _rows(*indexes: object) -> dict[str, object]:
    return {"object": "list", "model": "m",
            "data": [{"index": i, "embedding": [float(n)]} for n, i in enumerate(indexes)]}


def test_embeddings_rows_are_placed_by_index() -> None:
    """Rows that arrive shuffled are put back where their index says."""
    result = oa.parse_embeddings(_response(_rows(2, 0, 1)), count=3)
    assert result.vectors == [[1.0], [2.0], [0.0]]


def test_embeddings_without_index_keep_their_position() -> None:
    """A row without an index stays where it came."""
    body = {"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}
    assert oa.parse_embeddings(_response(body)).vectors == [[1.0], [2.0]]


@pytest.mark.parametrize(
    ("body", "count", "words"),
    [
        (_rows(0, 1), 3, "2 embeddings in 'data' for 3 inputs"),
        (_rows(), 2, "0 embeddings in 'data' for 2 inputs"),
        (_rows(0, 0, 1), 3, "data[1].index 0 repeats"),
        (_rows(0, 3, 1), 3, "data[1].index 3 is out of range"),
        (_rows(0, -1), 2, "data[1].index -1 is out of range"),
        (_rows(0, "1"), 2, "data[1].index of type str"),
        (_rows(0, True), 2, "data[1].index of type bool"),
        ({"data": [{"index": 0, "embedding": [1.0]}, None]}, 2, "data[1] of type NoneType"),
        ({"data": [{"index": 0, "embedding": None}]}, 1, "data[0].embedding of type NoneType"),
        ({"data": [{"index": 0, "embedding": {"a": 1}}]}, 1, "data[0].embedding of type dict"),
    ],
)
def test_embeddings_that_cannot_be_placed_raise(body: object, count: int, words: str) -> None:
    """A short list, a repeated, out-of-range or non-int index, or a row that is not one, raises."""
    with pytest.raises(ValueError, match=re.escape(words)):
        oa.parse_embeddings(_response(body), count=count)


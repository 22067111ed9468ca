"""Answers the openai plugin must refuse: short or misplaced embeddings, wrong-typed fields."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _openai_fixtures import CHAT, EMBEDDINGS, Server, backend, chunk, sse, stream_response
from ipfs_accel import ResponseError

HI = [{"role": "user", "content": "Hi"}]


def _embeddings(*indexes: int) -> dict[str, Any]:
    return {**EMBEDDINGS,
            "data": [{"object": "embedding", "embedding": [float(i), 0.5], "index": i}
                     for i in indexes]}


def test_shuffled_embeddings_are_put_back_in_input_order() -> None:
    """Rows arriving as index 2, 0, 1 give the vectors of inputs 0, 1, 2 in that order."""
    b, eid = backend(Server(httpx2.Response(200, json=_embeddings(2, 0, 1))))
    result = b.embed(["alpha", "beta", "gamma"], endpoint_id=eid)
    assert result.vectors == [[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]]


@pytest.mark.parametrize("indexes", [(0, 1), (), (0, 0, 1), (0, 1, 3)])
def test_embeddings_that_do_not_match_the_inputs_raise(indexes: tuple[int, ...]) -> None:
    """Fewer rows than inputs, none, or a repeated or out-of-range index is a ResponseError,
    tried once: never a result where 'alpha' gets another input's vector."""
    server = Server(httpx2.Response(200, json=_embeddings(*indexes)))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match="data") as info:
        b.embed(["alpha", "beta", "gamma"], endpoint_id=eid)
    assert info.value.backend == "openai"
    assert len(server.requests) == 1
    assert b.get_stats(eid).failed_requests == 1


def test_null_inside_a_vector_is_named() -> None:
    """A null inside an embedding is a ResponseError naming its position."""
    body = copy.deepcopy(EMBEDDINGS)
    body["data"][0]["embedding"] = [0.5, None]
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"openai returned vectors\[1\]\[1\] of type null"):
        b.embed(["a", "b"], endpoint_id=eid)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("finish_reason", 1, "openai returned finish_reason of type int, expected a string"),
        ("finish_reason", {"type": "stop"}, "openai returned finish_reason of type dict"),
        ("model", 4, "openai returned model of type int"),
        ("tool_calls", {"id": "x"}, "openai returned tool_calls of type dict"),
    ],
)
def test_wrong_typed_chat_fields_raise_naming_the_field(field: str, value: Any, words: str) -> None:
    """finish_reason, model or tool_calls of the wrong type is a ResponseError naming it."""
    body = copy.deepcopy(CHAT)
    if field == "model":
        body["model"] = value
    elif field == "tool_calls":
        body["choices"][0]["message"]["tool_calls"] = value
    else:
        body["choices"][0][field] = value
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=words):
        b.chat(HI, endpoint_id=eid)


def test_negative_token_count_raises_and_stats_stay_at_zero() -> None:
    """A negative prompt_tokens is a ResponseError; nothing is added to the stats."""
    body = copy.deepcopy(CHAT)
    body["usage"]["prompt_tokens"] = -19
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"usage\.input_tokens of -19"):
        b.chat(HI, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (0, 0, 0)


def test_wrong_typed_finish_reason_in_a_stream_raises() -> None:
    """A streamed chunk whose finish_reason is a number ends the stream with a ResponseError."""
    body = sse(chunk("Hel"), {**chunk("lo"), "choices": [
        {"index": 0, "delta": {"content": "lo"}, "finish_reason": 0}]})
    b, eid = backend(Server(stream_response(body)))
    with pytest.raises(ResponseError, match="openai returned finish_reason of type int"):
        list(b.stream_chat(HI, endpoint_id=eid))

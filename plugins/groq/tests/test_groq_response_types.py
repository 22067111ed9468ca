"""Answers the groq plugin must refuse (short or misplaced embeddings, wrong-typed fields)
and what it skips (unknown fields), with raw carrying the body."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _groq_fixtures import CHAT, EMBEDDINGS, Server, backend, chunk, sse, stream_response
from ipfs_accel import ResponseError

HI = [{"role": "user", "content": "Hi"}]


def _embeddings(*indexes: int) -> dict[str, Any]:
    return {**EMBEDDINGS,
            "data": [{"object": "embedding", "embedding": [float(i)], "index": i} for i in indexes]}


def test_shuffled_embeddings_are_put_back_in_input_order() -> None:
    """Rows arriving as index 1, 2, 0 give the vectors in input order."""
    b, eid = backend(Server(httpx2.Response(200, json=_embeddings(1, 2, 0))))
    assert b.embed(["a", "b", "c"], endpoint_id=eid).vectors == [[0.0], [1.0], [2.0]]


@pytest.mark.parametrize("indexes", [(0, 1), (), (1, 1, 0)])
def test_embeddings_that_do_not_match_the_inputs_raise(indexes: tuple[int, ...]) -> None:
    """Two rows, none, or a repeated index for three inputs is a ResponseError, tried once."""
    server = Server(httpx2.Response(200, json=_embeddings(*indexes)))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match="data") as info:
        b.embed(["a", "b", "c"], endpoint_id=eid)
    assert info.value.backend == "groq" and len(server.requests) == 1


def test_string_inside_a_vector_is_named() -> None:
    """A string inside an embedding is a ResponseError naming its position."""
    body = copy.deepcopy(EMBEDDINGS)
    body["data"][1]["embedding"] = ["0.1", 0.2]  # index 0
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"groq sent a embed response .*got `str` - at "
                                            r"`\$\.data\[1\]\.embedding\[0\]`"):
        b.embed(["a", "b"], endpoint_id=eid)


@pytest.mark.parametrize("value", [7, {"reason": "stop"}])
def test_wrong_typed_finish_reason_raises_naming_it(value: Any) -> None:
    """finish_reason as an int or an object is a ResponseError naming the field and backend."""
    body = copy.deepcopy(CHAT)
    body["choices"][0]["finish_reason"] = value
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"groq sent a chat response .*Expected `str \| null`"
                                            r", got `\w+` - at `\$\.choices\[0\]\.finish_reason`"):
        b.chat(HI, endpoint_id=eid)


def test_chat_skips_unknown_fields_and_raw_carries_the_body() -> None:
    """Fields Groq adds (x_groq, system_fingerprint, anything new) are skipped; raw is the body."""
    body = {**copy.deepcopy(CHAT), "usage_breakdown": {"models": None}, "service_tier": "on_demand"}
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    result = b.chat(HI, endpoint_id=eid)
    assert result.text == "Fast language models matter."
    assert result.raw == body


def test_embeddings_raw_is_the_body_without_the_vectors() -> None:
    """EmbedResult.raw keeps object, model and usage, not the vectors."""
    b, eid = backend(Server(httpx2.Response(200, json=EMBEDDINGS)))
    result = b.embed(["a", "b"], endpoint_id=eid)
    assert result.raw == {"object": "list", "model": "nomic-embed-text-v1_5",
                          "usage": {"prompt_tokens": 6, "total_tokens": 6}}


@pytest.mark.parametrize(
    ("x_groq", "field"),
    [
        ({"id": "req_01", "usage": {"prompt_tokens": "9"}}, "$.x_groq.usage.prompt_tokens"),
        ({"id": "req_01", "usage": {"queue_time": "soon"}}, "$.x_groq.usage.queue_time"),
        ("req_01", "$.x_groq"),
    ],
)
def test_wrong_typed_x_groq_in_a_stream_is_named(x_groq: Any, field: str) -> None:
    """A final chunk whose x_groq (or its usage) has the wrong type ends the stream with a
    ResponseError naming the path."""
    final = chunk(None, "stop", x_groq=x_groq)
    b, eid = backend(Server(stream_response(sse(chunk("Hi"), final))))
    with pytest.raises(ResponseError, match="groq sent a stream event") as info:
        list(b.stream_chat(HI, endpoint_id=eid))
    assert f"at `{field}`" in str(info.value)


def test_stream_chunks_skip_unknown_fields_and_raw_carries_each_chunk() -> None:
    """A chunk's unknown fields are skipped; its raw is the whole chunk, x_groq included."""
    first = chunk("Hi", x_groq={"id": "req_01", "seed": 1}, usage_breakdown=None)
    b, eid = backend(Server(stream_response(sse(first, chunk(None, "stop")))))
    chunks = list(b.stream_chat(HI, endpoint_id=eid))
    assert chunks[0].delta == "Hi" and chunks[0].raw == first

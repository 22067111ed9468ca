"""Answers the groq plugin must refuse: short or misplaced embeddings, wrong-typed fields."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _groq_fixtures import CHAT, EMBEDDINGS, Server, backend
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
    with pytest.raises(ResponseError, match=r"groq returned vectors\[0\]\[0\] of type str"):
        b.embed(["a", "b"], endpoint_id=eid)


@pytest.mark.parametrize("value", [7, {"reason": "stop"}])
def test_wrong_typed_finish_reason_raises_naming_it(value: Any) -> None:
    """finish_reason as an int or an object is a ResponseError naming the field and backend."""
    body = copy.deepcopy(CHAT)
    body["choices"][0]["finish_reason"] = value
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match="groq returned finish_reason of type"):
        b.chat(HI, endpoint_id=eid)

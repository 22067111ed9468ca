"""Answers the ovms plugin must refuse: short or misplaced embeddings, wrong-typed fields."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _ovms_fixtures import CHAT_RESPONSE, EMBED_RESPONSE, backend, endpoint
from ipfs_accel import ResponseError
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hi"}]


def _embeddings(*indexes: int) -> dict[str, Any]:
    return {**EMBED_RESPONSE,
            "data": [{"object": "embedding", "embedding": [float(i)], "index": i} for i in indexes]}


def test_shuffled_embeddings_are_put_back_in_input_order() -> None:
    """Rows arriving as index 2, 1, 0 give the vectors in input order."""
    b = backend(Recorder(httpx2.Response(200, json=_embeddings(2, 1, 0))))
    assert b.embed(["a", "b", "c"], model="m", endpoint_id=endpoint(b)).vectors == [
        [0.0], [1.0], [2.0]]


@pytest.mark.parametrize("indexes", [(0, 1), (), (0, 1, 5)])
def test_embeddings_that_do_not_match_the_inputs_raise(indexes: tuple[int, ...]) -> None:
    """Two rows, none, or an out-of-range index for three inputs is a ResponseError, tried once."""
    rec = Recorder(httpx2.Response(200, json=_embeddings(*indexes)))
    b = backend(rec)
    with pytest.raises(ResponseError, match="data") as info:
        b.embed(["a", "b", "c"], model="m", endpoint_id=endpoint(b))
    assert info.value.backend == "ovms" and len(rec.requests) == 1


def test_null_inside_a_vector_is_named() -> None:
    """A null inside an embedding is a ResponseError naming its position."""
    body = copy.deepcopy(EMBED_RESPONSE)
    body["data"][0]["embedding"] = [None, 0.6]  # index 1
    b = backend(Recorder(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"ovms returned vectors\[1\]\[0\] of type null"):
        b.embed(["a", "b"], model="m", endpoint_id=endpoint(b))


@pytest.mark.parametrize(("field", "value"), [("finish_reason", 3), ("model", {"n": 1})])
def test_wrong_typed_chat_field_raises_naming_it(field: str, value: Any) -> None:
    """finish_reason or model of the wrong type is a ResponseError naming the field."""
    body = copy.deepcopy(CHAT_RESPONSE)
    if field == "model":
        body["model"] = value
    else:
        body["choices"][0][field] = value
    b = backend(Recorder(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=f"ovms returned {field} of type"):
        b.chat(HI, model="m", endpoint_id=endpoint(b))

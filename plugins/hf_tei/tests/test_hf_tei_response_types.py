"""Answers the hf_tei plugin must refuse: short or misplaced embeddings, values not numbers."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from _hf_tei_fixtures import Server, backend
from ipfs_accel import ResponseError


def _openai(*indexes: int) -> httpx2.Response:
    rows = [{"object": "embedding", "embedding": [float(i)], "index": i} for i in indexes]
    return httpx2.Response(200, json={"object": "list", "data": rows, "model": "bge",
                                      "usage": {"prompt_tokens": 3, "total_tokens": 3}})


def test_openai_route_puts_shuffled_rows_back_in_order() -> None:
    """On /v1/embeddings, rows arriving as index 2, 0, 1 come back in input order."""
    b, eid = backend(Server(_openai(2, 0, 1)), openai_api=True, max_client_batch_size=8)
    assert b.embed(["a", "b", "c"], endpoint_id=eid).vectors == [[0.0], [1.0], [2.0]]


@pytest.mark.parametrize("indexes", [(0, 1), (), (0, 2, 2)])
def test_openai_route_refuses_rows_that_do_not_match(indexes: tuple[int, ...]) -> None:
    """Two rows, none, or a repeated index for three inputs is a ResponseError, tried once."""
    server = Server(_openai(*indexes))
    b, eid = backend(server, openai_api=True, max_client_batch_size=8)
    with pytest.raises(ResponseError, match="data") as info:
        b.embed(["a", "b", "c"], endpoint_id=eid)
    assert info.value.backend == "hf_tei" and len(server.requests) == 1


@pytest.mark.parametrize(("value", "kind"), [(None, "null"), ("1", "str"), (True, "bool")])
def test_embed_route_names_a_value_that_is_not_a_number(value: Any, kind: str) -> None:
    """On /embed, null, a string or a bool inside a vector is named by its position."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        inputs = json.loads(request.content)["inputs"]
        return httpx2.Response(200, json=[[0.5, value] for _ in inputs])

    b, eid = backend(Server(handle), max_client_batch_size=8)
    with pytest.raises(ResponseError, match=rf"hf_tei sent .* got `{kind}` - at `\$\[0\]\[1\]`"):
        b.embed(["a", "b"], endpoint_id=eid)

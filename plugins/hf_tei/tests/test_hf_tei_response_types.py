"""Answers the hf_tei plugin must refuse (short or misplaced embeddings, values not numbers,
wrong-typed fields) and what it must let through (unknown fields; the body in raw)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from _hf_tei_fixtures import Server, backend, info
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


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([[0.5], [0.5, "x"]], r"\$\[1\]\[1\]"),
        ([[0.5], "0.5"], r"\$\[1\]"),
        ({"embeddings": [[0.5], [0.5]]}, "Expected `array`, got `object`"),
    ],
)
def test_embed_answer_of_the_wrong_shape_is_named(body: Any, path: str) -> None:
    """An /embed answer that is not a list of number lists names the place, tried once."""
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server, max_client_batch_size=8)
    with pytest.raises(ResponseError, match=rf"hf_tei sent a embed response.*{path}") as got:
        b.embed(["a", "b"], endpoint_id=eid)
    assert got.value.backend == "hf_tei" and got.value.retryable is False
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("rank", "path"),
    [
        ({"index": "1", "score": 0.5}, r"\$\[0\]\.index"),
        ({"index": 1, "score": None}, r"\$\[0\]\.score"),
        ({"score": 0.5}, "index"),
    ],
)
def test_wrong_typed_rerank_field_is_named(rank: dict[str, Any], path: str) -> None:
    """A /rerank row with a wrong-typed or missing index or score is a ResponseError naming
    the backend and the field (it was returned as it came)."""
    server = Server(httpx2.Response(200, json=[rank]))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match=rf"hf_tei sent a rerank response.*{path}"):
        b.invoke("rerank", endpoint_id=eid, query="q", texts=["a"])
    assert len(server.requests) == 1


def test_rerank_keeps_unknown_fields_as_sent() -> None:
    """The typed decode skips fields it does not read; the result carries them as sent."""
    ranks = [{"index": 0, "score": 0.5, "text": "a", "vendor": {"x": [1]}}]
    b, eid = backend(Server(httpx2.Response(200, json=ranks)))
    assert b.invoke("rerank", endpoint_id=eid, query="q", texts=["a"]).data == ranks


@pytest.mark.parametrize("size", ["32", 2.5, [32]])
def test_wrong_typed_info_batch_size_is_named(size: Any) -> None:
    """A probe answered with a wrong-typed max_client_batch_size is a ResponseError naming
    it (it was taken as 'no limit'); no /embed is sent on a size that cannot be read."""
    body = {**info(), "max_client_batch_size": size}
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match=r"hf_tei sent a embed response.*max_client_batch_size"):
        b.embed(["a", "b"], endpoint_id=eid)
    assert [r.url.path for r in server.requests] == ["/info"]


def test_probe_ignores_unknown_and_missing_fields() -> None:
    """The probe reads only max_client_batch_size: other fields may be anything or absent,
    and an /info without it means no limit."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/info":
            return httpx2.Response(200, json={"model_id": 5, "model_type": "odd"})
        return httpx2.Response(200, json=[[1.0]] * len(json.loads(request.content)["inputs"]))

    server = Server(handle)
    b, eid = backend(server)
    assert b.embed(["a", "b", "c"], endpoint_id=eid).vectors == [[1.0]] * 3
    assert [r.url.path for r in server.requests] == ["/info", "/embed"]


def test_openai_route_keeps_the_body_in_raw() -> None:
    """On /v1/embeddings, a batch sent whole keeps the body's model and usage in raw."""
    b, eid = backend(Server(_openai(0, 1)), openai_api=True, max_client_batch_size=8)
    result = b.embed(["a", "b"], endpoint_id=eid)
    assert result.raw is not None
    assert (result.raw["model"], result.raw["usage"]) == ("bge", {"prompt_tokens": 3,
                                                                 "total_tokens": 3})

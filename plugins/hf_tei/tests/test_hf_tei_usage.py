"""hf_tei: usage totals on every route, one request or a split batch, and in the stats;
embed refuses tools and response formats before sending."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import ipfs_accel_hf_tei
import pytest
from _hf_tei_fixtures import Server, backend, embed_server, info, vector
from ipfs_accel import ConfigurationError

TEN = [f"t{i}" for i in range(10)]


def test_features_say_embed_takes_none() -> None:
    """TEI has no text operation; embed is declared to take no tools, formats or images."""
    info_ = ipfs_accel_hf_tei.backend_info()
    assert info_.features == {"embed": frozenset()}
    assert not info_.operations & {"chat", "stream_chat", "generate", "stream_generate"}


@pytest.mark.parametrize("params", [
    {"tools": [{"type": "function", "function": {"name": "f"}}]},
    {"response_format": {"type": "json_object"}},
])
def test_embed_refuses_tools_and_formats_unsent(params: dict[str, Any]) -> None:
    """TEI would drop them silently: the core refuses them before anything is sent."""
    server = Server()
    b, eid = backend(server)
    with pytest.raises(ConfigurationError, match="'embed'"):
        b.embed(["a"], endpoint_id=eid, **params)
    assert server.requests == []


def test_embed_split_batch_totals_and_stats() -> None:
    """/embed slices: input tokens from x-compute-tokens summed; total is input, in stats too."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/info":
            return httpx2.Response(200, json=info(4))
        return embed_server(tokens_per_input=2)(request)

    b, eid = backend(Server(handle))
    usage = b.embed(TEN, endpoint_id=eid).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (20, 0, 20)
    assert usage.reasoning_tokens == 0
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (20, 0, 20)


def test_openai_route_keeps_the_api_totals_summed() -> None:
    """/v1/embeddings slices: each body's usage (its own total_tokens) summed once."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/info":
            return httpx2.Response(200, json=info(4))
        part = json.loads(request.content)["input"]
        rows = [{"object": "embedding", "embedding": vector(t), "index": i}
                for i, t in enumerate(part)]
        return httpx2.Response(200, json={
            "object": "list", "data": rows, "model": "bge",
            "usage": {"prompt_tokens": 3 * len(part), "total_tokens": 3 * len(part)},
        })

    b, eid = backend(Server(handle), openai_api=True)
    usage = b.embed(TEN, endpoint_id=eid).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (30, 0, 30)
    assert b.get_stats(eid).total_tokens == 30


def test_rerank_and_openai_embed_totals() -> None:
    """rerank (x-compute-tokens) and openai_embed (the body's usage) report a total."""
    rerank = httpx2.Response(200, json=[{"index": 0, "score": 0.9}],
                             headers={"x-compute-tokens": "14"})
    openai = httpx2.Response(200, json={
        "object": "list", "model": "bge",
        "data": [{"object": "embedding", "embedding": [0.5], "index": 0}],
        "usage": {"prompt_tokens": 9, "total_tokens": 9}})
    b, eid = backend(Server(rerank, openai))
    ranked = b.invoke("rerank", endpoint_id=eid, query="q", texts=["a"])
    assert (ranked.usage.input_tokens, ranked.usage.total_tokens) == (14, 14)
    embedded = b.invoke("openai_embed", endpoint_id=eid, input=["a"])
    assert (embedded.usage.input_tokens, embedded.usage.total_tokens) == (9, 9)
    assert b.get_stats(eid).total_tokens == 23

"""hf_tei: each operation's request and result, keys and the plugin's surface."""

from __future__ import annotations

import json
import logging
import pathlib
import tomllib

import httpx2
import ipfs_accel_hf_tei
import pytest
from _hf_tei_fixtures import Server, backend, embed_server, error, info
from ipfs_accel import (
    ConfigurationError,
    EmbedResult,
    InvokeResult,
    Registry,
    UnsupportedOperationError,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

OPENAI_BODY = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.5, 0.25], "index": 1},
        {"object": "embedding", "embedding": [0.0, 1.0], "index": 0},
    ],
    "model": "BAAI/bge-small-en-v1.5",
    "usage": {"prompt_tokens": 9, "total_tokens": 9},
}
"""An ``OpenAICompatResponse`` (rows out of order on purpose)."""


def test_entry_point_is_declared() -> None:
    """pyproject.toml declares the hf_tei entry point and the distribution name."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["name"] == "ipfs-accel-plugin-hf_tei"
    assert data["project"]["entry-points"]["ipfs_accel.backends"] == {"hf_tei": "ipfs_accel_hf_tei"}


def test_public_surface() -> None:
    """The package exports its hooks and its options type, nothing else."""
    assert ipfs_accel_hf_tei.__all__ == [
        "TEIOptions", "backend_info", "classify_error", "parse_usage", "send",
    ]


def test_backend_info() -> None:
    """Defaults: localhost:8080, TEI_BASE_URL, HF_TOKEN/HF_API_TOKEN, the options type."""
    got = ipfs_accel_hf_tei.backend_info()
    assert got.name == "hf_tei"
    assert got.default_base_url == "http://localhost:8080"
    assert got.base_url_env == ("TEI_BASE_URL",)
    assert got.api_key_env == ("HF_TOKEN", "HF_API_TOKEN")
    assert got.options is ipfs_accel_hf_tei.TEIOptions
    assert got.operations == {"embed", "rerank", "openai_embed", "health", "info"}


def test_base_url_from_env() -> None:
    """TEI_BASE_URL is used when no base_url is given."""
    reg = Registry(plugins=[ipfs_accel_hf_tei], entry_points=False,
                   environ={"TEI_BASE_URL": "http://tei-env:3000"})
    b = reg.get("hf_tei")
    assert b.get_endpoint(b.create_endpoint()).base_url == "http://tei-env:3000"


def test_options_are_validated() -> None:
    """Unknown or invalid options are refused when the endpoint is created."""
    b, _ = backend(Server(httpx2.Response(200)))
    with pytest.raises(ConfigurationError):
        b.create_endpoint(max_client_batch_size=0)
    with pytest.raises(ConfigurationError):
        b.create_endpoint(flavour="x")


def test_embed_request_and_result() -> None:
    """embed posts /embed with inputs and passed-through params; usage from x-compute-tokens."""
    server = Server(embed_server(tokens_per_input=3))
    b, eid = backend(server, max_client_batch_size=8)
    result = b.embed(["t1", "t2"], endpoint_id=eid, request_id="req-e", normalize=False,
                     truncate=True, dimensions=2)
    assert [r.url.path for r in server.requests] == ["/embed"]
    req = server.requests[0]
    assert req.method == "POST"
    assert req.headers["x-request-id"] == "req-e"
    assert "authorization" not in req.headers
    assert server.body() == {"inputs": ["t1", "t2"], "normalize": False, "truncate": True,
                             "dimensions": 2}
    assert isinstance(result, EmbedResult)
    assert result.vectors == [[1.0, 1.5, -1.0], [2.0, 2.5, -2.0]]
    assert result.request_id == "req-e"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (6, 0)
    assert result.usage.details["x-total-time"] == 5.0


def test_embed_single_input_needs_no_probe() -> None:
    """A single input is sent at once, without asking /info."""
    server = Server(embed_server())
    b, eid = backend(server)
    result = b.embed("t7", endpoint_id=eid)
    assert [r.url.path for r in server.requests] == ["/embed"]
    assert server.body() == {"inputs": ["t7"]}
    assert result.vectors == [[7.0, 7.5, -7.0]]
    assert result.raw is None  # /embed answers only the vectors: they are not kept twice
    assert b.get_stats(eid).input_tokens == 2


def test_embed_openai_api_option() -> None:
    """With openai_api=True, embed posts /v1/embeddings and reads data/usage in order."""
    server = Server(httpx2.Response(200, json=OPENAI_BODY))
    b, eid = backend(server, openai_api=True, max_client_batch_size=8)
    result = b.embed(["a", "b"], endpoint_id=eid, request_id="req-o", dimensions=2)
    req = server.requests[0]
    assert req.url == "http://tei.test/v1/embeddings"
    assert req.headers["x-request-id"] == "req-o"
    assert server.body() == {"input": ["a", "b"], "dimensions": 2}
    assert result.vectors == [[0.0, 1.0], [0.5, 0.25]]
    assert result.model == "BAAI/bge-small-en-v1.5"
    assert result.usage.input_tokens == 9
    assert b.get_stats(eid).input_tokens == 9


def test_embed_openai_api_sends_model_when_given() -> None:
    """A model named on the call goes into the OpenAI body."""
    server = Server(httpx2.Response(200, json=OPENAI_BODY))
    b, eid = backend(server, openai_api=True, max_client_batch_size=8)
    b.embed(["a", "b"], endpoint_id=eid, model="bge")
    assert server.body()["model"] == "bge"


def test_invoke_rerank() -> None:
    """rerank posts /rerank with query and texts; data is the ranks, usage from the header."""
    ranks = [{"index": 1, "score": 0.98}, {"index": 0, "score": 0.02}]
    server = Server(httpx2.Response(200, json=ranks, headers={"x-compute-tokens": "14"}))
    b, eid = backend(server)
    result = b.invoke("rerank", endpoint_id=eid, request_id="req-r", query="What is TEI?",
                      texts=["a cat", "an inference server"], raw_scores=False)
    req = server.requests[0]
    assert req.method == "POST" and req.url == "http://tei.test/rerank"
    assert req.headers["x-request-id"] == "req-r"
    assert server.body() == {"query": "What is TEI?", "texts": ["a cat", "an inference server"],
                             "raw_scores": False}
    assert isinstance(result, InvokeResult)
    assert result.data == ranks
    assert result.usage.input_tokens == 14


def test_invoke_openai_embed() -> None:
    """openai_embed posts /v1/embeddings; data is the body, usage from it."""
    server = Server(httpx2.Response(200, json=OPENAI_BODY))
    b, eid = backend(server)
    result = b.invoke("openai_embed", endpoint_id=eid, input=["a", "b"])
    assert server.requests[0].url == "http://tei.test/v1/embeddings"
    assert server.body() == {"input": ["a", "b"]}
    assert result.data == OPENAI_BODY
    assert result.usage.input_tokens == 9


def test_invoke_health_and_info() -> None:
    """health is GET /health (empty 200); info is GET /info."""
    server = Server(httpx2.Response(200), httpx2.Response(200, json=info(4)))
    b, eid = backend(server)
    health = b.invoke("health", endpoint_id=eid, request_id="req-h")
    assert health.data == {"healthy": True, "status": 200}
    assert server.requests[0].method == "GET"
    assert server.requests[0].url == "http://tei.test/health"
    assert server.requests[0].headers["x-request-id"] == "req-h"
    got = b.invoke("info", endpoint_id=eid)
    assert server.requests[1].method == "GET" and server.requests[1].url.path == "/info"
    assert got.data["max_client_batch_size"] == 4


def test_unknown_operation() -> None:
    """chat is not a TEI operation: refused before anything is sent."""
    server = Server(httpx2.Response(200))
    b, eid = backend(server)
    with pytest.raises(UnsupportedOperationError):
        b.chat([{"role": "user", "content": "x"}], endpoint_id=eid)
    assert server.requests == []


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints with two keys: each request carries its own Bearer, a keyless one none."""
    server = Server(embed_server())
    b, a = backend(server, api_key="hf_key_A", endpoint_id="a")
    c = b.create_endpoint("c", base_url="http://tei2.test", api_key="hf_key_B")
    n = b.create_endpoint("n", base_url="http://tei3.test")
    b.embed("t1", endpoint_id=a)
    b.embed("t1", endpoint_id=c)
    b.embed("t1", endpoint_id=n)
    assert server.requests[0].headers["authorization"] == "Bearer hf_key_A"
    assert server.requests[1].headers["authorization"] == "Bearer hf_key_B"
    assert server.requests[1].url.host == "tei2.test"
    assert "authorization" not in server.requests[2].headers


def test_key_is_sent_on_every_request_of_a_chain() -> None:
    """The /info probe and every slice carry the endpoint's key."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/info":
            return httpx2.Response(200, json=info(1))
        return embed_server()(request)

    server = Server(handle)
    b, eid = backend(server, api_key="hf_chain")
    b.embed(["t1", "t2"], endpoint_id=eid)
    assert len(server.requests) == 3
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer hf_chain"}


def test_key_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """The key is in no repr, log line or error text, even when the server echoes it."""
    caplog.set_level(logging.DEBUG)
    secret = "hf_tei_secret_value"
    server = Server(error(422, f"cannot tokenize {secret}", "tokenizer"))
    b, eid = backend(server, api_key=secret)
    with pytest.raises(Exception) as got:
        b.embed("t1", endpoint_id=eid)
    err = got.value
    assert secret not in str(err) and secret not in repr(err)
    assert secret not in json.dumps(getattr(err, "body", None))
    assert secret not in repr(b.get_endpoint(eid)) and secret not in repr(b)
    assert secret not in caplog.text

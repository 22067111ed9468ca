"""Conformance of the ollama plugin against Ollama's OpenAPI spec (Steady mock server).

Every operation goes through the real ``Registry(plugins=[ipfs_accel_ollama])`` backend and
real HTTP to a mock that validates each request against ``ollama/openapi.yaml``: a request
the spec rejects fails the test, and the mock's answers (the spec's examples) must parse.
A recording transport keeps every response so the mock's verdict headers can be checked.

Streams: the mock sends NDJSON (the plugin asks with ``Accept: application/x-ndjson``),
but its lines hold only ``{"_stream": ...}`` (the event schema has no required fields, so
no ``done``): the stream tests check that the request is accepted and that the plugin
reports the missing terminal line as ``StreamInterruptedError``, never as text.

Embeddings: the mock always answers ``/api/embed`` with the spec's example, one
10-dimensional vector (the answer to the example's one-input request). So the embed test
sends one input, as that request did, and a two-input test checks that the request is
accepted and that the plugin refuses the one-vector answer as a ``ResponseError``.
Skipped when the specs folder, the spec or the mock binary is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from ipfs_accel.testing import import_or_skip

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _conformance import (  # noqa: E402
    FAST_STREAM,
    assert_all_accepted,
    drain_interrupted,
    make_backend,
)
from mockserver import (  # noqa: E402
    MockPool,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_ollama = import_or_skip("ipfs_accel_ollama")

from ipfs_accel import Backend, ResponseError  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "ollama/openapi.yaml"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "why is the sky blue?"},
    {"role": "assistant", "content": "Rayleigh scattering."},
    {"role": "user", "content": "More detail, please."},
]


def _backend(pool: MockPool, seen: list[httpx2.Response], **settings: Any) -> tuple[Backend, str]:
    settings.setdefault("headers", FAST_STREAM)
    return make_backend(ipfs_accel_ollama, "ollama", pool.get(SPEC).base_url, seen, **settings)


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """chat with history, every common param and pass-through fields is accepted and parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, keep_alive="5m")
    result = backend.chat(
        MESSAGES, model="gemma4", endpoint_id=eid, max_tokens=64, temperature=0.2, top_p=0.9,
        stop=["\n\n"], format="json", think=False, options={"seed": 42, "num_ctx": 4096},
    )
    assert_all_accepted(seen, "/api/chat")
    assert isinstance(result.text, str)
    assert result.raw == seen[0].json()  # the typed decode skips fields; raw keeps them


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """generate with a system prompt and common params is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.generate("Why is the sky blue?", model="gemma4", endpoint_id=eid,
                              system="Be brief.", max_tokens=32, stop="\n", temperature=0.0)
    assert_all_accepted(seen, "/api/generate")
    assert isinstance(result.text, str)


def test_embed_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """embed of one input with dimensions and truncate is accepted; the example's vector parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.embed(["Generate embeddings for this text"], model="embeddinggemma",
                           endpoint_id=eid, dimensions=10, truncate=True)
    assert_all_accepted(seen, "/api/embed")
    assert result.vectors == seen[0].json()["embeddings"]
    assert len(result.vectors[0]) == 10
    assert result.raw == {k: v for k, v in seen[0].json().items() if k != "embeddings"}


def test_embed_batch_answered_by_the_one_vector_example_is_refused(
    mock_pool: MockPool,  # noqa: F811
) -> None:
    """A two-input embed is accepted; the example's single vector cannot answer it, so the
    plugin refuses it rather than return a short or misaligned result."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    with pytest.raises(ResponseError, match="1 vectors for 2 inputs"):
        backend.embed(["Why is the sky blue?", "Why is the grass green?"], model="all-minilm",
                      endpoint_id=eid, dimensions=8, truncate=True)
    assert_all_accepted(seen, "/api/embed")


def test_list_models_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """list_models GETs /api/tags; the spec's example lists gemma4."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.invoke("list_models", endpoint_id=eid)
    assert_all_accepted(seen, "/api/tags")
    assert [m["name"] for m in result.data] == ["gemma4"]


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_streams_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """Stream requests are accepted; the mock's done-less lines end as an interrupted stream."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    if operation == "stream_chat":
        stream = backend.stream_chat(MESSAGES, model="gemma4", endpoint_id=eid, max_tokens=16)
    else:
        stream = backend.stream_generate("Hi", model="gemma4", endpoint_id=eid, max_tokens=16)
    chunks = drain_interrupted(stream)
    assert all(chunk.delta == "" for chunk in chunks)  # the mock's lines carry no text
    assert_all_accepted(seen)
    for response in seen:
        assert response.headers["content-type"].startswith("application/x-ndjson")


@pytest.mark.asyncio
async def test_async_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """The async path sends the same accepted request."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = await backend.achat(MESSAGES, model="gemma4", endpoint_id=eid)
    await backend.aclose()
    assert_all_accepted(seen, "/api/chat")
    assert isinstance(result.text, str)

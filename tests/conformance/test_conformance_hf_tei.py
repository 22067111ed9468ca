"""Conformance of the hf_tei plugin against TEI's OpenAPI spec (Steady mock server).

Every operation goes through the real ``Registry(plugins=[ipfs_accel_hf_tei])`` backend and
real HTTP to a mock that validates each request against ``hf_tei/openapi.json``: a request
the spec rejects fails the test, and the mock's answers must parse. A recording transport
keeps every response so the mock's verdict headers can be checked.

The mock answers every ``/embed`` with ONE vector (the spec's example), whatever the
batch: batch splitting is driven with ``max_client_batch_size=1`` so each slice holds one
input, and the ``/info`` probe test checks that both of its requests are accepted and that
the plugin reports the mock's short answer as a ``ResponseError`` instead of misaligning
vectors. ``/v1/embeddings`` is generated from the schema, whose one row has an ``index``
drawn from 0..100; its test narrows the spec (``embeddings_in_order``) to the answer a
server gives one input: one row with index 0. Skipped when the specs folder, the spec or
the mock binary is missing.
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
    assert_all_accepted,
    embeddings_in_order,
    make_backend,
    matched_paths,
)
from mockserver import (  # noqa: E402
    MockPool,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_hf_tei = import_or_skip("ipfs_accel_hf_tei")
import_or_skip("ipfs_accel_hf_tei._batch")

from ipfs_accel import Backend, ResponseError  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "hf_tei/openapi.json"
TEXTS = ["Deep Learning is ...", "A cat sat on the mat.", "TEI serves embeddings."]


def _backend(pool: MockPool, seen: list[httpx2.Response], **settings: Any) -> tuple[Backend, str]:
    return make_backend(ipfs_accel_hf_tei, "hf_tei", pool.get(SPEC).base_url, seen, **settings)


def _all_accepted(seen: list[httpx2.Response], *paths: str) -> None:
    """The recorded requests matched exactly ``paths``, in order, and were all accepted."""
    assert matched_paths(seen) == list(paths)
    assert_all_accepted(seen)


def test_embed_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """embed of one input with TEI's params is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.embed(TEXTS[0], endpoint_id=eid, normalize=True, truncate=False,
                           dimensions=3, prompt_name="query")
    _all_accepted(seen, "/embed")
    assert result.vectors == [[0, 1, 2]]


def test_embed_split_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """A batch split by max_client_batch_size sends one accepted request per slice."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, max_client_batch_size=1)
    result = backend.embed(TEXTS, endpoint_id=eid, normalize=False)
    _all_accepted(seen, "/embed", "/embed", "/embed")
    assert result.vectors == [[0, 1, 2]] * 3


def test_embed_probe_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """The GET /info probe and the /embed after it are accepted."""
    ipfs_accel_hf_tei._batch.SIZES.clear()
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    # the mock's size is large, so the batch goes in one request; its one-vector example
    # answer cannot match two inputs, which the plugin must refuse rather than misalign
    with pytest.raises(ResponseError, match="2 inputs sent, 1 vectors received"):
        backend.embed(TEXTS[:2], endpoint_id=eid)
    _all_accepted(seen, "/info", "/embed")


def test_embed_openai_api_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """embed with openai_api=True posts an accepted /v1/embeddings; its one row parses."""
    seen: list[httpx2.Response] = []
    mock = mock_pool.get(SPEC, transform=embeddings_in_order("/v1/embeddings", 1))
    backend, eid = make_backend(ipfs_accel_hf_tei, "hf_tei", mock.base_url, seen,
                                openai_api=True)
    result = backend.embed(TEXTS[0], endpoint_id=eid, model="thenlper/gte-base", dimensions=1)
    _all_accepted(seen, "/v1/embeddings")
    assert result.vectors == [seen[0].json()["data"][0]["embedding"]]
    assert result.usage.input_tokens >= 0


def test_rerank_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """rerank with its options is accepted; the ranks parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.invoke("rerank", endpoint_id=eid, query="What is Deep Learning?",
                            texts=TEXTS, raw_scores=False, return_text=True, truncate=True)
    _all_accepted(seen, "/rerank")
    assert all("index" in r and "score" in r for r in result.data)


def test_openai_embed_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """invoke('openai_embed') is accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.invoke("openai_embed", endpoint_id=eid, input=TEXTS)
    _all_accepted(seen, "/v1/embeddings")
    assert result.data["object"] == "list"


@pytest.mark.parametrize("operation", ["health", "info"])
def test_invoke_conforms(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """health and info GET their routes; the answers parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.invoke(operation, endpoint_id=eid)
    _all_accepted(seen, f"/{operation}")
    if operation == "info":
        assert isinstance(result.data["max_client_batch_size"], int)
    else:
        assert result.data["healthy"] is True


@pytest.mark.asyncio
async def test_async_embed_split_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """The async path splits and sends the same accepted requests."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, max_client_batch_size=1)
    result = await backend.aembed(TEXTS[:2], endpoint_id=eid)
    await backend.aclose()
    _all_accepted(seen, "/embed", "/embed")
    assert len(result.vectors) == 2

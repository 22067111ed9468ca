"""Conformance of the openai plugin against the OpenAI spec (Steady mock server).

Every operation goes through the real ``Registry(plugins=[ipfs_accel_openai])`` backend and
real HTTP to a mock of ``openai/openapi.transformed.yml`` that validates each request: a
request the spec rejects (or accepts with a diagnostic) fails the test, and the mock's
answers, generated from the spec's schemas, must parse.

The schema alone gives an embeddings answer of one row whose ``index`` is drawn from
0..100: the embed test narrows the spec to what a server sends for its two inputs (two rows,
indexed 0 and 1, as long as the ``dimensions`` asked for), and a second test checks that the
schema-only answer is refused, naming the index, after an accepted request.

The mock serves SSE only when asked with ``Accept: text/event-stream`` (the real API streams
whatever the header says), so the stream tests send it. Its streams end with
``event: done`` instead of ``data: [DONE]``, so they check that the request is accepted,
that the generated chunks parse, and that the missing terminal event is reported as
``StreamInterruptedError``. Skipped when the spec or the mock binary is missing.
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
    embeddings_in_order,
    make_backend,
)
from mockserver import (  # noqa: E402
    MockPool,
    SpecTransform,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_openai = import_or_skip("ipfs_accel_openai")

from ipfs_accel import Backend, ResponseError  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "openai/openapi.transformed.yml"
MESSAGES = [
    {"role": "developer", "content": "You are terse."},
    {"role": "user", "content": "Hello!"},
]


def _backend(pool: MockPool, seen: list[httpx2.Response], *,
             transform: SpecTransform | None = None, **settings: Any) -> tuple[Backend, str]:
    mock = pool.get(SPEC, transform=transform)
    return make_backend(ipfs_accel_openai, "openai", mock.base_url, seen,
                        api_key="sk-conformance", organization="org-123", project="proj_123",
                        **settings)


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/chat/completions with the common params (max_completion_tokens) is accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.chat(MESSAGES, endpoint_id=eid, max_tokens=64, temperature=0.2, top_p=0.9,
                          stop=["\n"], seed=7)
    assert_all_accepted(seen, "/chat/completions")
    assert isinstance(result.text, str)
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/completions with the completions model and max_tokens is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.generate("Say this is a test", endpoint_id=eid, max_tokens=7,
                              temperature=0)
    assert_all_accepted(seen, "/completions")
    assert isinstance(result.text, str)


@pytest.mark.parametrize("params", [{}, {"dimensions": 256, "encoding_format": "float"}])
def test_embed_conforms(mock_pool: MockPool, params: dict[str, Any]) -> None:  # noqa: F811
    """/embeddings with the embedding model is accepted; one row per input parses in order."""
    seen: list[httpx2.Response] = []
    size = params.get("dimensions", 1)  # vectors as long as the dimensions asked for
    backend, eid = _backend(mock_pool, seen, transform=embeddings_in_order("/embeddings", 2),
                            headers={"X-Steady-Array-Size": str(size)})
    result = backend.embed(["The quick brown fox", "jumped"], endpoint_id=eid, **params)
    assert_all_accepted(seen, "/embeddings")
    assert result.vectors == [row["embedding"] for row in seen[0].json()["data"]]
    assert [len(v) for v in result.vectors] == [size, size]


def test_embed_of_schema_only_rows_is_refused(mock_pool: MockPool) -> None:  # noqa: F811
    """The schema-only answer (index drawn from 0..100) is refused, naming the index."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    with pytest.raises(ResponseError, match=r"data\[0\]\.index \d+ is out of range"):
        backend.embed(["The quick brown fox"], endpoint_id=eid)
    assert_all_accepted(seen, "/embeddings")


def test_stream_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """A chat stream with include_usage is accepted; the mock's chunks parse until its end."""
    seen: list[httpx2.Response] = []
    headers = {**FAST_STREAM, "accept": "text/event-stream"}  # replaces the core's default
    backend, eid = _backend(mock_pool, seen, headers=headers)
    chunks = drain_interrupted(backend.stream_chat(MESSAGES, endpoint_id=eid, max_tokens=8))
    assert_all_accepted(seen, "/chat/completions")
    assert seen[0].headers["content-type"].startswith("text/event-stream")
    assert all(isinstance(c.delta, str) for c in chunks)


def test_stream_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """A completions stream with include_usage is accepted (the spec has no SSE for it)."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, headers=FAST_STREAM)
    drain_interrupted(backend.stream_generate("Say this is a test", endpoint_id=eid, max_tokens=7))
    assert_all_accepted(seen, "/completions")

"""Conformance of the claude plugin against Anthropic's OpenAPI spec (Steady mock server).

Every operation of the plugin goes through the real ``Registry(plugins=[ipfs_accel_claude])``
backend and real HTTP to a mock that validates each request against
``anthropic/openapi.yaml``: a request the spec rejects fails the test, and the mock's
answers (the spec's ``Message`` example) must parse. A recording transport keeps every
response so the mock's verdict headers can be checked.

The spec documents no ``text/event-stream`` for ``/v1/messages``, so the mock answers a
stream request with the JSON ``Message``: the stream tests check that the request is
accepted and that the plugin reports the missing events as ``StreamInterruptedError``
(never as text). Skipped when the specs folder, the spec or the mock binary is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from ipfs_accel.testing import import_or_skip

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _conformance import (  # noqa: E402
    adrain_interrupted,
    assert_all_accepted,
    drain_interrupted,
    make_backend,
)
from mockserver import (  # noqa: E402
    MockPool,
    assert_rejected,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_claude = import_or_skip("ipfs_accel_claude")

from ipfs_accel import (  # noqa: E402
    Backend,
    BadRequestError,
    UnsupportedOperationError,
)

pytestmark = pytest.mark.conformance

SPEC = "anthropic/openapi.yaml"
EXAMPLE_TEXT = "Hi! My name is Claude."  # the spec's Message example
MATCHED = "/v1/messages"  # the spec path every request must match

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": "Answer in English."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "user", "content": [
        {"type": "text", "text": "And a picture:"},
        {"type": "image_url", "image_url": {"url": "https://example.com/paris.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]},
    {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "toolu_01", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny, 21C"},
    {"role": "user", "content": "Thanks, summarise."},
]
TOOLS = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]


_OPEN: list[Backend] = []


@pytest.fixture(autouse=True)
def _close_backends() -> Iterator[None]:
    """Close the sync HTTP clients of the backends a test made."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _backend(mock_pool: MockPool, seen: list[httpx2.Response],  # noqa: F811
             **settings: Any) -> tuple[Backend, str]:
    backend, eid = make_backend(ipfs_accel_claude, "claude", mock_pool.get(SPEC).base_url, seen,
                                api_key="sk-ant-conformance", **settings)
    _OPEN.append(backend)
    return backend, eid


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """chat with system, merged turns, images, tool use/result and every common param."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.chat(CONVERSATION, endpoint_id=eid, max_tokens=300, temperature=0.3,
                          top_p=0.9, stop=["###"], top_k=20, tools=TOOLS,
                          metadata={"user_id": "u-1"})
    assert_all_accepted(seen, MATCHED)
    assert result.text == EXAMPLE_TEXT
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "end_turn")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (2095, 503)
    assert backend.get_stats().total_tokens == 2598


def test_chat_bearer_version_and_beta_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """Bearer auth, a custom anthropic-version and anthropic-beta are accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, auth="bearer", anthropic_version="2023-06-01",
                            anthropic_beta=["token-efficient-tools-2025-02-19"])
    assert backend.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid,
                        system="Be nice.", stop="\n").text == EXAMPLE_TEXT
    assert_all_accepted(seen, MATCHED)


@pytest.mark.asyncio
async def test_achat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """achat sends a valid request over the async client and parses the answer."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = await backend.achat(CONVERSATION, endpoint_id=eid)
    await backend.aclose()
    assert_all_accepted(seen, MATCHED)
    assert result.text == EXAMPLE_TEXT


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """generate (one user turn, default max_tokens) is accepted and parsed."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.generate("Say hi.", endpoint_id=eid, model="claude-opus-4-6")
    assert_all_accepted(seen, MATCHED)
    assert result.text == EXAMPLE_TEXT
    assert result.model == "claude-opus-4-6"


@pytest.mark.asyncio
async def test_agenerate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """agenerate is accepted and parsed."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = await backend.agenerate("Say hi.", endpoint_id=eid, temperature=0.0)
    await backend.aclose()
    assert_all_accepted(seen, MATCHED)
    assert result.text == EXAMPLE_TEXT


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_stream_requests_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """Stream requests are accepted; the JSON answer (the spec has no SSE) is an interrupted
    stream, not text."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    if operation == "stream_chat":
        chunks = backend.stream_chat(CONVERSATION, endpoint_id=eid, max_tokens=64)
    else:
        chunks = backend.stream_generate("Say hi.", endpoint_id=eid, stop="\n")
    for chunk in drain_interrupted(chunks):
        assert not chunk.delta, "a JSON body must not leak out as stream text"
    assert_all_accepted(seen, MATCHED)


@pytest.mark.asyncio
async def test_astream_chat_request_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """astream_chat's request is accepted too."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    await adrain_interrupted(backend.astream_chat(CONVERSATION, endpoint_id=eid))
    await backend.aclose()
    assert_all_accepted(seen, MATCHED)


def test_embed_not_offered(mock_pool: MockPool) -> None:  # noqa: F811
    """embed is refused by the core before any request (the API has no embeddings)."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    with pytest.raises(UnsupportedOperationError):
        backend.embed("x", endpoint_id=eid)
    assert seen == []


def test_spec_violation_is_caught(mock_pool: MockPool) -> None:  # noqa: F811
    """A body the spec forbids (max_tokens of the wrong type) is rejected and raises."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    with pytest.raises(BadRequestError):
        backend.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid, max_tokens="lots")
    assert_rejected(seen[-1])

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

Tools, structured output and images: requests offering a tool (with each ``tool_choice``),
a conversation sending a tool call back (the assistant turn as ``ChatResult.message`` gives
it, and the ``tool`` message answering it), ``response_format`` of both JSON kinds and user
messages with ``image_url`` parts (an https and a ``data:`` URL) are each accepted with no
diagnostic, unary and streamed. The mock's generated answers carry no tool call (the
spec does not require one), so the assistant turn is built from a :class:`ToolCall` as a
result would hold it.
"""

from __future__ import annotations

import json
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

from ipfs_accel import Backend, ChatResult, ResponseError, ToolCall  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

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


PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
_CALL = ToolCall.of(id="call_abc123", name="get_weather", arguments='{"city": "Paris"}')
TOOL_TURN = [
    *WEATHER,
    ChatResult(text="", tool_calls=[_CALL]).message,
    {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny, 21 C"},
]
IMAGES = [{"role": "user", "content": [
    {"type": "text", "text": "What is in these images?"},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    {"type": "image_url", "image_url": {"url": PIXEL}},
]}]
SCHEMA = {"type": "json_schema", "json_schema": {
    "name": "weather", "strict": True,
    "schema": {"type": "object", "properties": {"city": {"type": "string"}},
               "required": ["city"], "additionalProperties": False}}}
_NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(("messages", "params"), [
    (WEATHER, {"tools": [TOOL]}),
    (WEATHER, {"tools": [TOOL], "tool_choice": "required", "parallel_tool_calls": False}),
    (WEATHER, {"tools": [TOOL], "tool_choice": _NAMED}),
    (WEATHER, {"tools": [TOOL], "tool_choice": "none"}),
    (TOOL_TURN, {"tools": [TOOL]}),
    (WEATHER, {"response_format": SCHEMA}),
    (WEATHER, {"response_format": {"type": "json_object"}}),
    (IMAGES, {}),
    (IMAGES, {"tools": [TOOL], "response_format": SCHEMA}),
], ids=["tools", "required", "named", "none", "tool-result", "json_schema", "json_object",
        "images", "all"])
def test_tools_formats_and_images_conform(
    mock_pool: MockPool,  # noqa: F811
    messages: list[dict[str, Any]], params: dict[str, Any],
) -> None:
    """Chat requests with tools, tool choices, a tool call sent back with its answer,
    response formats and image parts are accepted as the spec says, unary and streamed."""
    seen: list[httpx2.Response] = []
    streaming, sid = _backend(mock_pool, seen, headers={**FAST_STREAM,
                                                        "accept": "text/event-stream"})
    drain_interrupted(streaming.stream_chat(messages, endpoint_id=sid, **params))
    backend, eid = _backend(mock_pool, seen)
    result = backend.chat(messages, endpoint_id=eid, **params)
    assert_all_accepted(seen, "/chat/completions")
    for response in seen:  # what the mock validated is what the caller gave
        body = json.loads(response.request.content)
        assert body["messages"] == messages
        assert {k: body[k] for k in params} == params
    assert isinstance(result.text, str)

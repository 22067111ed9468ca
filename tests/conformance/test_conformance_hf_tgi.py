"""Conformance of the hf_tgi plugin against TGI's OpenAPI spec (Steady mock server).

Every operation goes through the real ``Registry(plugins=[ipfs_accel_hf_tgi])`` backend and
real HTTP to a mock that validates each request against ``hf_tgi/openapi.json``: a request
the spec rejects fails the test, and the mock's answers must parse. A recording transport
keeps every response so the mock's verdict headers can be checked.

Streams: the mock's SSE events hold only the schema's required fields and end with
``event: done`` / ``data: {}``; there is no ``generated_text`` event (``/generate_stream``)
and no ``data: [DONE]`` (chat), so the stream tests check that the request is accepted, that
every event parses, and that the missing terminal event is reported as
``StreamInterruptedError``, never as text. Skipped when the specs folder, the spec or the
mock binary is missing.

Tools, tool turns, structured output and images: the spec takes TGI's own shapes (a tool's
schema under a required ``arguments``, ``response_format`` a ``GrammarType`` with a required
``value``, an assistant turn with either ``content`` or ``tool_calls``), and the mock rejects
OpenAI's (``parameters``, ``{"type": "json_schema", "json_schema": ...}``, ``json_object``),
so these tests see the plugin's mapping accepted, and the raw OpenAI shapes refused.
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
    assert_rejected,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_hf_tgi = import_or_skip("ipfs_accel_hf_tgi")

from ipfs_accel import Backend  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "hf_tgi/openapi.json"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is Deep Learning?"},
    {"role": "assistant", "content": "A kind of machine learning."},
    {"role": "user", "content": "More detail, please."},
]


def _backend(pool: MockPool, seen: list[httpx2.Response], **settings: Any) -> tuple[Backend, str]:
    settings.setdefault("headers", FAST_STREAM)
    return make_backend(ipfs_accel_hf_tgi, "hf_tgi", pool.get(SPEC).base_url, seen, **settings)


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """generate with every common param and TGI extras is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.generate(
        "My name is Olivier and I", endpoint_id=eid, max_tokens=20, temperature=0.5, top_p=0.95,
        stop="\n", top_k=10, repetition_penalty=1.03, do_sample=True, seed=42,
        return_full_text=False, decoder_input_details=True,
    )
    assert_all_accepted(seen, "/generate")
    assert result.text == "test"


def test_generate_with_key_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """A Bearer key does not make the request invalid."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, api_key="hf_conformance")
    backend.generate("Hello", endpoint_id=eid)
    assert_all_accepted(seen, "/generate")


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """chat through the Messages API with common params is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.chat(MESSAGES, endpoint_id=eid, max_tokens=32, temperature=1.0,
                          top_p=0.95, stop=["\n\n"], seed=42, frequency_penalty=0.1)
    assert_all_accepted(seen, "/v1/chat/completions")
    assert isinstance(result.text, str)
    assert result.usage.input_tokens >= 0


@pytest.mark.parametrize("operation", ["health", "info"])
def test_invoke_conforms(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """health and info GET their routes; the answers parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.invoke(operation, endpoint_id=eid)
    assert_all_accepted(seen, f"/{operation}")
    if operation == "info":
        assert isinstance(result.data["model_id"], str)
    else:
        assert result.data["healthy"] is True


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_streams_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """Stream requests are accepted as SSE; the mock's terminal-less stream is interrupted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    if operation == "stream_chat":
        stream = backend.stream_chat(MESSAGES, endpoint_id=eid, max_tokens=16)
        path = "/v1/chat/completions"
    else:
        stream = backend.stream_generate("Hello", endpoint_id=eid, max_tokens=16, stop=["x"])
        path = "/generate_stream"
    chunks = drain_interrupted(stream)
    assert not any(chunk.done for chunk in chunks)
    assert_all_accepted(seen, path)
    assert seen[0].headers["content-type"].startswith("text/event-stream")
    if operation == "stream_chat":
        assert chunks and all(isinstance(c.delta, str) and c.delta for c in chunks)


@pytest.mark.asyncio
async def test_async_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """The async path sends the same accepted request."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = await backend.agenerate("Hello", endpoint_id=eid, max_tokens=4)
    await backend.aclose()
    assert_all_accepted(seen, "/generate")
    assert result.text == "test"


TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
TOOL_TURN = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "0", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "0", "content": "sunny, 21 C"},
]
IMAGES = [{"role": "user", "content": [
    {"type": "text", "text": "What is in these pictures?"},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
]}]


@pytest.mark.parametrize("choice", [
    None, "auto", "none", "required", {"type": "function", "function": {"name": "get_weather"}},
])
def test_chat_with_tools_conforms(mock_pool: MockPool, choice: Any) -> None:  # noqa: F811
    """Tools (schema sent as TGI's 'arguments') and each tool_choice are accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    extra = {} if choice is None else {"tool_choice": choice}
    backend.chat(MESSAGES, endpoint_id=eid, tools=[TOOL], **extra)
    assert_all_accepted(seen, "/v1/chat/completions")


def test_chat_with_tool_results_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """An assistant turn with tool calls and the tool's answer are accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    backend.chat(TOOL_TURN, endpoint_id=eid, tools=[TOOL])
    # a turn with text beside its calls is sent as calls only (TGI reads one or the other)
    turn = [TOOL_TURN[0], {**TOOL_TURN[1], "content": "Let me look."}, TOOL_TURN[2]]
    backend.chat(turn, endpoint_id=eid, tools=[TOOL])
    assert_all_accepted(seen, "/v1/chat/completions")


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}},
    {"type": "json_object"},
    {"type": "text"},
])
def test_chat_response_format_conforms(mock_pool: MockPool, fmt: dict[str, Any]) -> None:  # noqa: F811
    """OpenAI's response_format, sent as TGI's GrammarType, is accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    backend.chat(MESSAGES, endpoint_id=eid, response_format=fmt)
    backend.chat(MESSAGES, endpoint_id=eid, grammar={"type": "regex", "value": "[0-9]+"})
    assert_all_accepted(seen, "/v1/chat/completions")


def test_chat_with_images_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """image_url parts (https and data: URLs) are accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    backend.chat(IMAGES, endpoint_id=eid)
    assert_all_accepted(seen, "/v1/chat/completions")


def test_stream_chat_with_tools_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """A streamed chat with tools and a tool turn is accepted; its events parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    drain_interrupted(backend.stream_chat(TOOL_TURN, endpoint_id=eid, tools=[TOOL],
                                          tool_choice="required"))
    assert_all_accepted(seen, "/v1/chat/completions")


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}},
    {"type": "json_object"},
])
def test_generate_grammar_conforms(mock_pool: MockPool, fmt: dict[str, Any]) -> None:  # noqa: F811
    """response_format on generate, sent as parameters.grammar, is accepted (and streamed)."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    assert backend.generate("Hello", endpoint_id=eid, response_format=fmt).text == "test"
    assert_all_accepted(seen, "/generate")
    seen.clear()
    drain_interrupted(backend.stream_generate("Hello", endpoint_id=eid, response_format=fmt))
    assert_all_accepted(seen, "/generate_stream")


@pytest.mark.parametrize("body", [
    {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}},
    {"response_format": {"type": "json_object"}},
    {"tools": [TOOL]},
])
def test_openai_shapes_are_what_the_spec_refuses(mock_pool: MockPool,  # noqa: F811
                                                 body: dict[str, Any]) -> None:
    """The shapes mapped above, sent as OpenAI has them, are rejected by the mock."""
    resp = httpx2.post(mock_pool.get(SPEC).url("/v1/chat/completions"),
                       json={"messages": MESSAGES, **body})
    assert_rejected(resp)

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

Tools, tool results, ``response_format`` and images: requests carrying each, in OpenAI's
vocabulary, must be accepted in the form the plugin maps them to. For the tool round trip
the spec is served with its ``/api/chat`` example replaced by api.md's answer calling a
tool (``_calling_tool``), so the call the plugin reads came from a spec-shaped answer and
the turn it sends back is validated; the NDJSON lines of that copy carry the same call.
Skipped when the specs folder, the spec or the mock binary is missing.
"""

from __future__ import annotations

import copy
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

from ipfs_accel import Backend, ChatResult, ResponseError, ToolCall  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

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


# -- tools, tool results, response_format, images ----------------------------------------

_PARIS = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _calling_tool(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec with ``/api/chat`` answering as api.md's "Chat request (No streaming, with
    tools)" does, for get_weather(Paris), and its NDJSON lines carrying the same call as in
    "Chat request (Streaming with tools)"."""
    new = copy.deepcopy(doc)
    content = new["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
    message = {"role": "assistant", "content": "", "tool_calls": [_PARIS]}
    content["application/json"]["example"] = {
        "model": "gemma4", "created_at": "2025-07-07T20:32:53.844124Z", "message": message,
        "done_reason": "stop", "done": True, "prompt_eval_count": 169, "eval_count": 18,
    }
    # the mock builds NDJSON lines from the schema (required properties only, a property's
    # example as its value), so the event schema is narrowed to a line that carries the call
    content["application/x-ndjson"]["schema"] = {
        "type": "object", "required": ["model", "message", "done"],
        "properties": {"model": {"type": "string", "example": "gemma4"},
                       "message": {"type": "object", "example": message},
                       "done": {"type": "boolean", "const": False}},
    }
    return new


def _tool_backend(pool: MockPool, seen: list[httpx2.Response]) -> tuple[Backend, str]:
    return make_backend(ipfs_accel_ollama, "ollama", pool.get(SPEC, transform=_calling_tool)
                        .base_url, seen, headers=FAST_STREAM)


def _paris(result: ChatResult) -> ToolCall:
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls is not None
    [call] = result.tool_calls
    assert (call.name, call.arguments, call.raw) == ("get_weather", {"city": "Paris"}, _PARIS)
    assert call.id  # made by the core: Ollama sends none
    return call


def _answered(first: ChatResult, call: ToolCall) -> list[dict[str, Any]]:
    return [*MESSAGES, first.message,
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]


def test_tool_round_trip_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """chat offering a tool reads the spec-shaped call; the turn sent back (result.message
    and the tool's answer, mapped to object arguments and tool_name) is accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _tool_backend(mock_pool, seen)
    first = backend.chat(MESSAGES, model="gemma4", endpoint_id=eid, tools=[TOOL],
                         tool_choice="auto")
    call = _paris(first)
    backend.chat(_answered(first, call), model="gemma4", endpoint_id=eid, tools=[TOOL])
    assert_all_accepted(seen, "/api/chat")
    sent = seen[1].request.read()
    assert b'"tool_name":"get_weather"' in sent
    assert b'"arguments":{"city":"Paris"}' in sent


@pytest.mark.asyncio
async def test_async_tool_round_trip_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """The same loop on the event loop."""
    seen: list[httpx2.Response] = []
    backend, eid = _tool_backend(mock_pool, seen)
    first = await backend.achat(MESSAGES, model="gemma4", endpoint_id=eid, tools=[TOOL])
    call = _paris(first)
    await backend.achat(_answered(first, call), model="gemma4", endpoint_id=eid, tools=[TOOL])
    await backend.aclose()
    assert_all_accepted(seen, "/api/chat")


def test_streamed_tool_call_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """stream_chat offering a tool is accepted, and each NDJSON line carrying the call (the
    mock repeats it, with no done line) reaches the caller as a typed ToolCall before the
    stream is reported interrupted."""
    seen: list[httpx2.Response] = []
    backend, eid = _tool_backend(mock_pool, seen)
    chunks = drain_interrupted(backend.stream_chat(MESSAGES, model="gemma4", endpoint_id=eid,
                                                   tools=[TOOL]))
    assert_all_accepted(seen, "/api/chat")
    calls = [call for chunk in chunks for call in chunk.tool_calls or ()]
    assert calls and all(c.name == "get_weather" and c.arguments == {"city": "Paris"}
                         for c in calls)
    assert len({c.id for c in calls}) == len(calls)


def test_tool_results_in_openai_form_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """A history in OpenAI's form (JSON-text arguments, content None, two calls answered by
    ID, thinking kept by an earlier result) is sent in a form the spec accepts."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    history = [
        *MESSAGES,
        {"role": "assistant", "content": None,
         "extra_content": {"ollama": {"thinking": "Two cities: two calls."}},
         "tool_calls": [
             {"id": "call_a", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
             {"id": "call_b", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny, 21 C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "rain, 14 C"},
    ]
    result = backend.chat(history, model="gemma4", endpoint_id=eid, tools=[TOOL])
    assert_all_accepted(seen, "/api/chat")
    assert result.text == "Hello! How can I help you today?"


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "age", "strict": True, "schema": {
        "type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}}},
    {"type": "json_object"},
], ids=["json_schema", "json_object"])
@pytest.mark.parametrize("operation", ["chat", "generate"])
def test_response_format_conforms(
    mock_pool: MockPool, operation: str, fmt: dict[str, Any],  # noqa: F811
) -> None:
    """response_format becomes format (the schema, or "json") on both routes, accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    if operation == "chat":
        backend.chat(MESSAGES, model="gemma4", endpoint_id=eid, response_format=fmt)
    else:
        backend.generate("Ollama is 22.", model="gemma4", endpoint_id=eid, response_format=fmt)
    assert_all_accepted(seen, f"/api/{operation}")
    assert b'"format":' in seen[0].request.read()


def test_images_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """image_url parts with data: URLs go as the message's base64 images; generate takes
    Ollama's own images list; both accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    message = {"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}
    backend.chat([message], model="gemma4", endpoint_id=eid)
    backend.generate("What is in this image?", model="gemma4", endpoint_id=eid, images=[PNG])
    assert_all_accepted(seen)
    assert [r.request.url.path for r in seen] == ["/api/chat", "/api/generate"]
    assert f'"images":["{PNG}"]'.encode() in seen[0].request.read()

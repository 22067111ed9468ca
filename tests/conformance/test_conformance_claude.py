"""Conformance of the claude plugin against Anthropic's OpenAPI spec (Steady mock server).

Every operation of the plugin goes through the real ``Registry(plugins=[ipfs_accel_claude])``
backend and real HTTP to a mock that validates each request against
``anthropic/openapi.yaml``: a request the spec rejects fails the test, and the mock's
answers (the spec's ``Message`` example) must parse. A recording transport keeps every
response so the mock's verdict headers can be checked. Requests with OpenAI-form and native
tools and every ``tool_choice``, a result's message sent back with tool answers (thinking
blocks, ``tool_use``, ``tool_result`` with an image), ``response_format`` as
``output_config.format`` and images are covered. So are the Message Batches steps (submit
through ``backend.submit_batch``, poll, cancel, the results download), each accepted with
no diagnostic, and the results the mock streams read back.

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
    FAST_STREAM,
    adrain_interrupted,
    assert_all_accepted,
    drain_interrupted,
    make_backend,
    matched_paths,
)
from mockserver import (  # noqa: E402
    MockPool,
    assert_rejected,
    diagnostics,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_claude = import_or_skip("ipfs_accel_claude")

from ipfs_accel import (  # noqa: E402
    Backend,
    BadRequestError,
    BatchFetch,
    ChatResult,
    ToolCall,
    UnsupportedOperationError,
    VendorBatch,
)
from ipfs_accel._batch_fetch import fetch_lines  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

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
                           "required": ["city"]}}]  # Anthropic's own form: passed as it is
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
          "required": ["city"], "additionalProperties": False}
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def _tool_turn() -> list[dict[str, Any]]:
    """A conversation sent back after a claude tool call: the result's message (thinking,
    text, two calls) and both answers, one with an image."""
    first = ChatResult(
        text="Checking both.",
        tool_calls=[ToolCall.of(id="toolu_01A09q90qw90lq917835lq9", name="get_weather",
                                arguments={"city": "Paris"}),
                    ToolCall.of(id="call_7b2e", name="get_weather", arguments='{"city": "Oslo"}')],
        extra_content={"anthropic": {"thinking": [
            {"type": "thinking", "thinking": "Two cities: two calls.", "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}]}},
    )
    return [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        first.message,
        {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "sunny, 21 C"},
        {"role": "tool", "tool_call_id": "call_7b2e", "content": [
            {"type": "text", "text": "snow, the radar:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ]


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


@pytest.mark.parametrize("choice", [
    None, "auto", "none", "required", {"type": "function", "function": {"name": "get_weather"}},
])
def test_openai_tools_conform(mock_pool: MockPool, choice: Any) -> None:  # noqa: F811
    """OpenAI-form tools (strict, no parameters, beside a native tool) and every tool_choice,
    with parallel_tool_calls=False, are accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    tools = [TOOL, {"type": "function", "function": {"name": "now", "strict": True}},
             {**TOOLS[0], "name": "get_forecast"}]
    params: dict[str, Any] = {"tools": tools, "parallel_tool_calls": False}
    if choice is not None:
        params["tool_choice"] = choice
    result = backend.chat([{"role": "user", "content": "Weather?"}], endpoint_id=eid, **params)
    assert_all_accepted(seen, MATCHED)
    assert result.text == EXAMPLE_TEXT
    assert result.tool_calls is None


@pytest.mark.parametrize("operation", ["chat", "stream_chat"])
def test_tool_results_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """A result's message sent back (thinking blocks with signature, text, tool_use for each
    call) and the tool answers (merged into one user turn, an image among them) conform."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    if operation == "chat":
        result = backend.chat(_tool_turn(), endpoint_id=eid, tools=[TOOL], max_tokens=2048,
                              thinking={"type": "enabled", "budget_tokens": 1024})
        assert result.text == EXAMPLE_TEXT
    else:
        drain_interrupted(backend.stream_chat(_tool_turn(), endpoint_id=eid, tools=[TOOL]))
    assert_all_accepted(seen, MATCHED)
    sent = seen[0].request.read()
    assert b'"name":"get_weather"' in sent.replace(b" ", b"")
    assert b"redacted_thinking" in sent and b"extra_content" not in sent


def test_old_null_name_shape_is_refused_by_the_spec(mock_pool: MockPool) -> None:  # noqa: F811
    """The turn claude used to send back (a tool_use with name null) fails the spec's check
    (an E3012 diagnostic, which assert_all_accepted refuses): so the accepted requests above
    do test the fix."""
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01", "name": None, "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01"}]}]}
    url = mock_pool.get(SPEC).base_url + MATCHED
    found = diagnostics(httpx2.post(url, json=body, headers={"anthropic-version": "2023-06-01"}))
    assert any("body.messages.1.content" in d for d in found), found


@pytest.mark.parametrize("operation", ["chat", "generate"])
def test_output_config_conforms(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """response_format json_schema as output_config.format (with a given effort) is accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA, "strict": True}}
    if operation == "chat":
        backend.chat([{"role": "user", "content": "Weather as JSON"}], endpoint_id=eid,
                     response_format=fmt, output_config={"effort": "low"})
    else:
        backend.generate("Weather as JSON", endpoint_id=eid, response_format=fmt)
    assert_all_accepted(seen, MATCHED)
    assert b'"output_config"' in seen[0].request.read()


def test_images_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """image_url parts (https and data: URLs of each media type the spec lists) conform."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Which is Paris?"},
                                   {"type": "image_url",
                                    "image_url": {"url": "https://example.com/p.jpg"}}]
    parts += [{"type": "image_url", "image_url": {"url": f"data:image/{kind};base64,AAAA"}}
              for kind in ("jpeg", "png", "gif", "webp")]
    backend.chat([{"role": "user", "content": parts}], endpoint_id=eid)
    assert_all_accepted(seen, MATCHED)


BATCHES = "/v1/messages/batches"
BATCH_ID = "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"  # the spec's MessageBatch example


def test_batch_submit_poll_cancel_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """submit_batch's one request (the calls' lines, a whole conversation with tools and
    images among them, as {"requests": [...]}), a poll and a cancel are accepted; the
    MessageBatch answers are read (the example is in_progress)."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    calls = [{"id": "conv-1", "messages": CONVERSATION, "params": {"tools": TOOLS,
                                                                   "max_tokens": 300}},
             {"id": "L_2", "messages": [{"role": "user", "content": "Hi"}],
              "params": {"stop": "\n", "temperature": 0.2}}]
    job = backend.submit_batch(calls, endpoint_id=eid)
    assert job.batches == [BATCH_ID]
    assert_all_accepted(seen, BATCHES)
    assert job.status() == "in_progress"
    assert job.counts.total == 200  # the example's counts, processing included
    assert job.cancel() == "in_progress"
    assert [r.request.method for r in seen] == ["POST", "GET", "POST"]
    assert matched_paths(seen) == [BATCHES, BATCHES + "/{message_batch_id}",
                                   BATCHES + "/{message_batch_id}/cancel"]
    assert_all_accepted(seen)


@pytest.mark.parametrize("where", ["under the base URL", "the API's own URL"])
def test_batch_results_conform(mock_pool: MockPool, where: str) -> None:  # noqa: F811
    """The results download (a results_url under the endpoint's base URL as it is, the API's
    own URL through the base URL) is accepted, and each line the mock streams is read as an
    online answer."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, headers=FAST_STREAM)
    base = mock_pool.get(SPEC).base_url
    url = (base if where == "under the base URL" else "https://api.anthropic.com")
    url += f"{BATCHES}/{BATCH_ID}/results"
    step = BatchFetch(batch=VendorBatch(id=BATCH_ID, state="completed", outputs=(url,)),
                      output=url)
    lines = list(fetch_lines(backend._engine, backend._endpoint(eid), step))
    assert_all_accepted(seen, BATCHES + "/{message_batch_id}/results")
    assert len(lines) == 3
    for line in lines:
        out = backend._hooks.batch_result(line, "chat")
        assert out.result is not None and out.result.text == EXAMPLE_TEXT
        assert (out.result.usage.input_tokens, out.result.usage.output_tokens) == (2095, 503)


def test_bad_custom_id_is_flagged_by_the_spec(mock_pool: MockPool) -> None:  # noqa: F811
    """A custom_id outside ^[a-zA-Z0-9_-]{1,64}$ draws the mock's pattern diagnostic (which
    assert_all_accepted refuses): the plugin refuses such keys before sending."""
    params = {"model": "claude-sonnet-4-6", "max_tokens": 10,
              "messages": [{"role": "user", "content": "Hi"}]}
    url = mock_pool.get(SPEC).base_url + BATCHES
    found = diagnostics(httpx2.post(url, json={"requests": [{"custom_id": "line 1",
                                                             "params": params}]},
                                    headers={"anthropic-version": "2023-06-01"}))
    assert any("custom_id" in d for d in found), found

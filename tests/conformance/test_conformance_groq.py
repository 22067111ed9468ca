"""Conformance of the groq plugin against the GroqCloud spec (Steady mock server).

Every operation goes through the real ``Registry(plugins=[ipfs_accel_groq])`` backend and
real HTTP to a mock of ``groq/openapi.yaml`` that validates each request (its chat and
embeddings bodies are ``additionalProperties: false``): a request the spec rejects, or
accepts with a diagnostic, fails the test, and the mock's answers must parse.

The spec's paths carry the ``/openai/v1`` prefix, so the endpoint's base URL is the mock's
root plus ``/openai/v1``, as in production. The spec has no ``text/event-stream`` answer,
so the mock answers a stream request with JSON: the stream tests check that the request is
accepted and that the missing events are reported as ``StreamInterruptedError``. The
embed test narrows the spec (``embeddings_in_order``) to the answer a server gives its two
inputs, two rows indexed 0 and 1: from the schema alone the mock sends one row with an
index drawn from 0..100. Skipped when the spec or the mock binary is missing.

Tools, structured output and images: requests offering a tool (with each ``tool_choice``),
a conversation sending a tool call back (the assistant turn as ``ChatResult.message`` gives
it, and the ``tool`` message answering it: Groq's message schemas refuse unknown fields,
and its assistant ``content`` does not admit the ``null`` the turn carries beside its calls,
which the plugin leaves out),
``response_format`` of both JSON kinds and user messages with ``image_url`` parts (an https
and a ``data:`` URL) are each accepted with no diagnostic, unary and streamed. The mock's
answers carry no tool call, so the assistant turn is built from a :class:`ToolCall` as a
result would hold it.

Batches: each step of a batch job is accepted with no diagnostic (the mock validates the
upload's multipart form too: ``purpose`` in its one-value enum, ``file`` required, no
``expires_after``): the upload of the request lines and the batch created from the file's
ID (``endpoint`` ``/v1/chat/completions``, the only one, window ``24h``), a poll, a cancel
and the download of an output file (octet-stream, as the spec declares it). Each uploaded
line's ``body`` is itself accepted at its ``url`` (under ``/openai``), as the online
request. Groq's ``File`` schema requires nothing, so from it alone the mock answers the
upload with ``{}``, a file without the ``id`` the batch is made from (the plugin refuses
it, naming the field); the batch tests narrow the spec (``_file_has_id``) to the file the
API sends, whose ``id`` its examples always show.
"""

from __future__ import annotations

import copy
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
    RecordingTransport,
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

ipfs_accel_groq = import_or_skip("ipfs_accel_groq")

from ipfs_accel import (  # noqa: E402
    BATCH_STATES,
    Backend,
    BatchFetch,
    ChatResult,
    Registry,
    ResponseError,
    ToolCall,
    UnsupportedOperationError,
    VendorBatch,
)
from ipfs_accel._batch_fetch import fetch_lines  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "groq/openapi.yaml"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Explain the importance of fast language models"},
]


def _backend(pool: MockPool, seen: list[httpx2.Response], *,
             transform: SpecTransform | None = None, **settings: Any) -> tuple[Backend, str]:
    mock = pool.get(SPEC, transform=transform)
    return make_backend(ipfs_accel_groq, "groq", mock.root_url + "/openai/v1", seen,
                        api_key="gsk_conf", **settings)


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/openai/v1/chat/completions with the common params is accepted; usage and timings parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.chat(MESSAGES, endpoint_id=eid, max_tokens=64, temperature=0.5,
                          top_p=0.9, stop=["\n"], seed=1)
    assert_all_accepted(seen, "/openai/v1/chat/completions")
    assert isinstance(result.text, str)
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """generate is a one-turn chat on /openai/v1/chat/completions, accepted by the spec."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    result = backend.generate("Say hi", endpoint_id=eid, model="llama-3.1-8b-instant",
                              max_tokens=8)
    assert_all_accepted(seen, "/openai/v1/chat/completions")
    assert isinstance(result.text, str)


@pytest.mark.parametrize("params", [{}, {"encoding_format": "float"}])
def test_embed_conforms(mock_pool: MockPool, params: dict[str, Any]) -> None:  # noqa: F811
    """/openai/v1/embeddings with nomic-embed-text-v1_5 is accepted; one row per input parses
    in order."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen,
                            transform=embeddings_in_order("/openai/v1/embeddings", 2))
    result = backend.embed(["The quick brown fox", "jumped"], endpoint_id=eid, **params)
    assert_all_accepted(seen, "/openai/v1/embeddings")
    assert result.vectors == [row["embedding"] for row in seen[0].json()["data"]]


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_streams_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """Stream requests (with include_usage) are accepted; no SSE from the mock -> interrupted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, headers={"accept": "text/event-stream"})
    if operation == "stream_chat":
        stream = backend.stream_chat(MESSAGES, endpoint_id=eid, max_tokens=8)
    else:
        stream = backend.stream_generate("Hi", endpoint_id=eid, max_tokens=8)
    drain_interrupted(stream)
    assert_all_accepted(seen, "/openai/v1/chat/completions")


PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
_CALL = ToolCall.of(id="call_abc123", name="get_weather", arguments='{"city":"Paris"}')
TOOL_TURN = [
    *WEATHER,
    ChatResult(text="", tool_calls=[_CALL]).message,
    {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny, 21 C"},
]
IMAGES = [{"role": "user", "content": [
    {"type": "text", "text": "What is in these images?"},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
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
    backend, eid = _backend(mock_pool, seen)
    result = backend.chat(messages, endpoint_id=eid, **params)
    drain_interrupted(backend.stream_chat(messages, endpoint_id=eid, **params))
    assert_all_accepted(seen, "/openai/v1/chat/completions")
    # what the mock validated is what the caller gave, less a null content beside tool calls
    sent = [{k: v for k, v in m.items() if not (k == "content" and v is None)}
            for m in messages]
    for response in seen:
        body = json.loads(response.request.content)
        assert body["messages"] == sent
        assert {k: body[k] for k in params} == params
    assert isinstance(result.text, str)


def _file_has_id(doc: dict[str, Any]) -> dict[str, Any]:
    """Groq's ``File`` with its ``id`` required, as every file the API sends has one."""
    doc = copy.deepcopy(doc)
    doc["components"]["schemas"]["File"]["required"] = ["id"]
    return doc


class _ReadingTransport(RecordingTransport):
    """The recording transport, keeping a streamed request's body (an upload's) too."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        return super().handle_request(request)


def _batch_backend(pool: MockPool, seen: list[httpx2.Response], *,
                   transform: SpecTransform | None = _file_has_id) -> tuple[Backend, str]:
    mock = pool.get(SPEC, transform=transform)
    registry = Registry(plugins=[ipfs_accel_groq], entry_points=False, environ={},
                        transport=_ReadingTransport(seen))
    backend = registry.get("groq")
    eid = backend.create_endpoint(base_url=mock.root_url + "/openai/v1", max_retries=0,
                                  api_key="gsk_conf")
    return backend, eid


def _uploaded_lines(upload: httpx2.Response) -> list[dict[str, Any]]:
    """The JSONL file of a multipart upload, as the lines it holds."""
    content = upload.request.content
    boundary = upload.request.headers["content-type"].split("boundary=")[1].encode()
    [file] = [part for part in content.split(b"--" + boundary)
              if b'name="file"' in part.split(b"\r\n\r\n", 1)[0]]
    text = file.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
    return [json.loads(line) for line in text.splitlines()]


_CALLS = [{"id": "q1", "messages": MESSAGES, "params": {"max_tokens": 64, "seed": 1}},
          {"id": "q2", "messages": TOOL_TURN, "params": {"tools": [TOOL]}}]


def test_batch_submit_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """The upload (multipart, purpose batch, the lines as the file) and the batch made of
    it are accepted; each line's body is accepted at its url as the online request."""
    seen: list[httpx2.Response] = []
    backend, eid = _batch_backend(mock_pool, seen)
    job = backend.submit_batch(_CALLS, endpoint_id=eid, label="conformance")
    assert_all_accepted(seen)
    assert [r.headers.get("x-steady-matched-path") for r in seen] == [
        "/openai/v1/files", "/openai/v1/batches"]
    upload, create = seen
    assert all(r.request.headers["authorization"] == "Bearer gsk_conf" for r in seen)
    lines = _uploaded_lines(upload)
    assert [(x["custom_id"], x["method"], x["url"]) for x in lines] == [
        ("q1", "POST", "/v1/chat/completions"), ("q2", "POST", "/v1/chat/completions")]
    assert lines[0]["body"] == {"messages": MESSAGES, "model": "llama-3.3-70b-versatile",
                                "max_completion_tokens": 64, "seed": 1}
    assert "content" not in lines[1]["body"]["messages"][1]  # as the online request sends it
    assert json.loads(create.request.content) == {
        "input_file_id": upload.json()["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h", "metadata": {"label": "conformance-1"}}
    assert job.batches == [create.json()["id"]]
    root = mock_pool.get(SPEC, transform=_file_has_id).root_url
    online = [httpx2.post(root + "/openai" + line["url"], json=line["body"],
                          headers={"authorization": "Bearer gsk_conf"}) for line in lines]
    assert_all_accepted(online, "/openai/v1/chat/completions")


def test_batch_of_embeddings_is_refused_before_sending(mock_pool: MockPool) -> None:  # noqa: F811
    """Groq batches chat only (its endpoint enum): an embed call is refused, nothing sent."""
    seen: list[httpx2.Response] = []
    backend, eid = _batch_backend(mock_pool, seen)
    with pytest.raises(UnsupportedOperationError, match="batches take chat, not 'embed'"):
        backend.submit_batch([{"id": "e1", "input": "hi"}], endpoint_id=eid)
    assert seen == []


def test_batch_upload_answered_without_an_id_is_refused(mock_pool: MockPool) -> None:  # noqa: F811
    """From the spec alone the upload's answer is ``{}``: no file ID, no batch made."""
    seen: list[httpx2.Response] = []
    backend, eid = _batch_backend(mock_pool, seen, transform=None)
    with pytest.raises(ResponseError, match="missing required field `id`"):
        backend.submit_batch(_CALLS[:1], endpoint_id=eid)
    assert_all_accepted(seen, "/openai/v1/files")


def test_batch_poll_cancel_and_fetch_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """A poll, a cancel and an output's download are accepted; the mock's batches parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _batch_backend(mock_pool, seen)
    job = backend.get_batch(backend.submit_batch(_CALLS, endpoint_id=eid).id, eid)
    del seen[:]
    assert job.status() in BATCH_STATES
    assert backend.get_batch(job.id, eid).cancel() in BATCH_STATES
    batch = VendorBatch(id=job.batches[0], state="completed", outputs=("file_01jh6x76",))
    lines = list(fetch_lines(backend._engine, backend._endpoint(eid),
                             BatchFetch(batch=batch, output="file_01jh6x76")))
    assert_all_accepted(seen)
    assert [(r.request.method, r.headers.get("x-steady-matched-path")) for r in seen] == [
        ("GET", "/openai/v1/batches/{batch_id}"), ("POST", "/openai/v1/batches/{batch_id}/cancel"),
        ("GET", "/openai/v1/files/{file_id}/content")]
    assert seen[2].request.url.path == "/openai/v1/files/file_01jh6x76/content"
    assert seen[2].request.headers["accept"] == "application/octet-stream"
    assert seen[2].headers["content-type"] == "application/octet-stream"
    assert all(r.request.headers["authorization"] == "Bearer gsk_conf" for r in seen)
    # the spec's content is made-up bytes, no result line
    with pytest.raises(ValueError, match="must be a JSON object"):
        backend._hooks.batch_result(lines[0] if lines else None, "chat")

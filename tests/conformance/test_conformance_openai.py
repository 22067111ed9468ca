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

Batches: each step of a batch job is accepted with no diagnostic (the mock validates the
upload's multipart form too: ``purpose`` in its enum, ``file`` required, no unknown field):
the upload of the request lines and the batch created from the file's ID (``endpoint``
of each batched operation, window ``24h``), a poll, a cancel and the download of an output
file. Each uploaded line's ``body`` is itself accepted at its ``url``, as the online
request. The mock's answers parse into the batch's description; the file content it makes
up (a JSON string, where the real API sends JSONL) is read back as no result.
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

ipfs_accel_openai = import_or_skip("ipfs_accel_openai")

from ipfs_accel import (  # noqa: E402
    BATCH_STATES,
    Backend,
    BatchFetch,
    ChatResult,
    Registry,
    ResponseError,
    ToolCall,
    VendorBatch,
)
from ipfs_accel._batch_fetch import fetch_lines  # noqa: E402
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


class _ReadingTransport(RecordingTransport):
    """The recording transport, keeping a streamed request's body (an upload's) too."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        return super().handle_request(request)


def _batch_backend(pool: MockPool, seen: list[httpx2.Response]) -> tuple[Backend, str]:
    registry = Registry(plugins=[ipfs_accel_openai], entry_points=False, environ={},
                        transport=_ReadingTransport(seen))
    backend = registry.get("openai")
    eid = backend.create_endpoint(base_url=pool.get(SPEC).base_url, max_retries=0,
                                  api_key="sk-conformance", organization="org-123")
    return backend, eid


def _uploaded_lines(upload: httpx2.Response) -> list[dict[str, Any]]:
    """The JSONL file of a multipart upload, as the lines it holds."""
    content = upload.request.content
    boundary = upload.request.headers["content-type"].split("boundary=")[1].encode()
    [file] = [part for part in content.split(b"--" + boundary)
              if b'name="file"' in part.split(b"\r\n\r\n", 1)[0]]
    text = file.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
    return [json.loads(line) for line in text.splitlines()]


_BATCHED = {
    "chat": [{"id": "q1", "messages": MESSAGES, "params": {"max_tokens": 64, "seed": 7}},
             {"id": "q2", "messages": [{"role": "user", "content": "Hi"}]}],
    "embed": [{"custom_id": "e1", "method": "POST", "url": "/v1/embeddings",
               "body": {"input": ["The quick brown fox", "jumped"], "dimensions": 256}}],
}


@pytest.mark.parametrize("operation", list(_BATCHED))
def test_batch_submit_conforms(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """The upload (multipart, purpose batch, the lines as the file) and the batch made of
    it are accepted; each line's body is accepted at its url as the online request."""
    seen: list[httpx2.Response] = []
    backend, eid = _batch_backend(mock_pool, seen)
    job = backend.submit_batch(_BATCHED[operation], endpoint_id=eid, label="conformance")
    assert_all_accepted(seen)
    assert [r.headers.get("x-steady-matched-path") for r in seen] == ["/files", "/batches"]
    upload, create = seen
    for response in seen:
        assert response.request.headers["authorization"] == "Bearer sk-conformance"
        assert response.request.headers["openai-organization"] == "org-123"
    lines = _uploaded_lines(upload)
    url = {"chat": "/v1/chat/completions", "embed": "/v1/embeddings"}[operation]
    assert [line["url"] for line in lines] == [url] * len(_BATCHED[operation])
    if operation == "chat":  # the online request's own names: max_completion_tokens
        assert lines[0]["body"] == {"messages": MESSAGES, "model": "gpt-4o-mini",
                                    "max_completion_tokens": 64, "seed": 7}
    assert json.loads(create.request.content) == {
        "input_file_id": upload.json()["id"], "endpoint": url, "completion_window": "24h",
        "metadata": {"label": "conformance-1"}}
    assert job.batches == [create.json()["id"]]
    online: list[httpx2.Response] = []
    for line in lines:  # the line's request, sent online, is what the API takes there
        assert line["method"] == "POST" and line["custom_id"]
        online.append(httpx2.post(_mock_url(mock_pool, line["url"]), json=line["body"],
                                  headers={"authorization": "Bearer sk-conformance"}))
    assert_all_accepted(online, url.removeprefix("/v1"))


def _mock_url(pool: MockPool, url: str) -> str:
    return pool.get(SPEC).base_url + url.removeprefix("/v1")


def test_batch_poll_cancel_and_fetch_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """A poll, a cancel and an output's download are accepted; the mock's batches parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen)
    job = backend.get_batch(backend.submit_batch(_BATCHED["chat"], endpoint_id=eid).id, eid)
    del seen[:]
    assert job.status() in BATCH_STATES
    assert backend.get_batch(job.id, eid).cancel() in BATCH_STATES
    endpoint = backend._endpoint(eid)
    batch = VendorBatch(id=job.batches[0], state="completed", outputs=("file-abc123",))
    lines = list(fetch_lines(backend._engine, endpoint,
                             BatchFetch(batch=batch, output="file-abc123")))
    assert_all_accepted(seen)
    assert [(r.request.method, r.headers.get("x-steady-matched-path")) for r in seen] == [
        ("GET", "/batches/{batch_id}"), ("POST", "/batches/{batch_id}/cancel"),
        ("GET", "/files/{file_id}/content")]
    assert [r.request.url.path for r in seen] == [
        f"/batches/{job.batches[0]}", f"/batches/{job.batches[0]}/cancel",
        "/files/file-abc123/content"]
    assert all(r.request.headers["authorization"] == "Bearer sk-conformance" for r in seen)
    # the spec's content is a JSON string, no result line
    with pytest.raises(ValueError, match="must be a JSON object"):
        backend._hooks.batch_result(lines[0], "chat")

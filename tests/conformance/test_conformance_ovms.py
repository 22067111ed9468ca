"""Conformance of the ovms plugin against the KServe v2 and OpenAI specs (Steady mock server).

Every operation with a spec goes through the real ``Registry(plugins=[ipfs_accel_ovms])``
backend and real HTTP to a mock that validates each request: the KServe v2 tensor API
against ``ovms/rest_predict_v2.yaml`` (with the harness's path fix-up), the ``/v3``
OpenAI-compatible API against ``openai/openapi.transformed.yml`` mounted under ``/v3``.
A request the spec rejects fails the test; the mock's answers must parse.

Not covered here, for want of a spec: ``rerank`` (Cohere-style ``/v3/rerank``, not in the
OpenAI spec) and the TF-Serving ``predict`` (prose docs only); the unit tests cover both.
The mock's SSE streams have no ``data: [DONE]``, so stream tests check that the request is
accepted and that the plugin reports the missing terminal event as
``StreamInterruptedError``. The embed test narrows the OpenAI spec
(``embeddings_in_order``) to the answer a server gives its two inputs, two rows indexed 0
and 1: from the schema alone the mock sends one row with an index drawn from 0..100.
Skipped when a spec or the mock binary is missing.

Tools, structured output and images on ``/v3/chat/completions``: requests offering a tool
(with each ``tool_choice``), a conversation sending a tool call back (the assistant turn as
``ChatResult.message`` gives it, and the ``tool`` message answering it), ``response_format``
of both JSON kinds (``json_object`` goes as the json_schema of any object, see the plugin)
and user messages with ``image_url`` parts (an https and a ``data:`` URL, OVMS's VLM input)
are each accepted with no diagnostic, unary and streamed. The mock's generated answers carry
no tool call (the spec does not require one), so the assistant turn is built from a
:class:`ToolCall` as a result would hold it. ``/v3/completions`` takes none of these: the
plugin refuses them before sending, so no request reaches the mock.

KServe ``infer`` returns an ``InferResponse``: the mock's generated answer (``model_name``
and ``outputs``, the spec's required fields) parses into it.
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
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_ovms = import_or_skip("ipfs_accel_ovms")

from ipfs_accel import Backend, ChatResult, ConfigurationError, ToolCall  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

pytestmark = pytest.mark.conformance

KSERVE = "ovms/rest_predict_v2.yaml"
OPENAI = "openai/openapi.transformed.yml"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is OpenVINO?"},
]
TENSOR = {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]}


def _backend(pool: MockPool, seen: list[httpx2.Response], spec: str, *, prefix: str = "",
             **settings: Any) -> tuple[Backend, str]:
    return make_backend(ipfs_accel_ovms, "ovms", pool.get(spec, prefix=prefix).root_url, seen,
                        headers=FAST_STREAM, **settings)


# -- KServe v2 ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "1"])
def test_infer_conforms(mock_pool: MockPool, version: str | None) -> None:  # noqa: F811
    """infer (with and without a version) is accepted; the generated outputs parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, KSERVE)
    extra = {} if version is None else {"version": version}
    result = backend.invoke("infer", model="mymodel", endpoint_id=eid, inputs=[TENSOR],
                            outputs=[{"name": "output0"}], parameters={"priority": 1}, **extra)
    path = "/v2/models/{MODEL_NAME}" + ("" if version is None else "/versions/{MODEL_VERSION}")
    assert_all_accepted(seen, path + "/infer")
    assert isinstance(result.data, ipfs_accel_ovms.InferResponse)
    assert isinstance(result.data.outputs, list) and isinstance(result.data.model_name, str)
    assert json.loads(seen[0].request.content)["id"] == result.request_id


@pytest.mark.parametrize(
    ("operation", "params", "path"),
    [
        ("ready", {}, "/v2/health/ready"),
        ("live", {}, "/v2/health/live"),
        ("server_metadata", {}, "/v2"),
        ("model_ready", {"model": "resnet"}, "/v2/models/{MODEL_NAME}/ready"),
        ("model_ready", {"model": "resnet", "version": 1},
         "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/ready"),
        ("metadata", {"model": "resnet"}, "/v2/models/{MODEL_NAME}"),
        ("metadata", {"model": "resnet", "version": "2"},
         "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}"),
    ],
)
def test_kserve_gets_conform(mock_pool: MockPool, operation: str,  # noqa: F811
                             params: dict[str, Any], path: str) -> None:
    """Health and metadata GETs hit the spec's routes; the answers parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, KSERVE)
    result = backend.invoke(operation, endpoint_id=eid, **params)
    assert_all_accepted(seen)
    assert seen[0].headers.get("x-steady-matched-path") in (path, path + "/")
    assert result.data is not None


# -- /v3 OpenAI-compatible --------------------------------------------------------------


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/v3/chat/completions with the common params is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    result = backend.chat(MESSAGES, model="llama3", endpoint_id=eid, max_tokens=64,
                          temperature=0.2, top_p=0.9, stop=["\n"])
    assert_all_accepted(seen, "/v3/chat/completions")
    assert isinstance(result.text, str)


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/v3/completions is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    result = backend.generate("The sky is", model="llama3", endpoint_id=eid, max_tokens=8)
    assert_all_accepted(seen, "/v3/completions")
    assert isinstance(result.text, str)


def test_embed_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/v3/embeddings is accepted; one row per input parses in order."""
    seen: list[httpx2.Response] = []
    mock = mock_pool.get(OPENAI, prefix="/v3", transform=embeddings_in_order("/embeddings", 2))
    backend, eid = make_backend(ipfs_accel_ovms, "ovms", mock.root_url, seen)
    result = backend.embed(["a", "b"], model="gte", endpoint_id=eid)
    assert_all_accepted(seen, "/v3/embeddings")
    assert result.vectors == [row["embedding"] for row in seen[0].json()["data"]]


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_streams_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """Stream requests (with include_usage) are accepted; no [DONE] -> interrupted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    if operation == "stream_chat":
        stream = backend.stream_chat(MESSAGES, model="llama3", endpoint_id=eid, max_tokens=8)
    else:
        stream = backend.stream_generate("Hi", model="llama3", endpoint_id=eid, max_tokens=8)
    drain_interrupted(stream)
    assert_all_accepted(seen)


# -- tools, structured output and images on /v3/chat/completions ------------------------

PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
_CALL = ToolCall.of(id="8J4s6LVgP", name="get_weather", arguments='{"city": "Paris"}')
TOOL_TURN = [
    *WEATHER,
    ChatResult(text="", tool_calls=[_CALL]).message,
    {"role": "tool", "tool_call_id": "8J4s6LVgP", "content": "sunny, 21 C"},
]
IMAGES = [{"role": "user", "content": [
    {"type": "text", "text": "What is on the picture?"},
    {"type": "image_url", "image_url": {"url": "https://example.com/zebra.jpeg"}},
    {"type": "image_url", "image_url": {"url": PIXEL}},
]}]
SCHEMA = {"type": "json_schema", "json_schema": {
    "name": "weather", "strict": True,
    "schema": {"type": "object", "properties": {"city": {"type": "string"}},
               "required": ["city"], "additionalProperties": False}}}
ANY_OBJECT = {"type": "json_schema",
              "json_schema": {"name": "json_object", "schema": {"type": "object"}}}
_NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(("messages", "params"), [
    (WEATHER, {"tools": [TOOL]}),
    (WEATHER, {"tools": [TOOL], "tool_choice": "required"}),
    (WEATHER, {"tools": [TOOL], "tool_choice": _NAMED}),
    (WEATHER, {"tools": [TOOL], "tool_choice": "none"}),
    (TOOL_TURN, {"tools": [TOOL]}),
    (WEATHER, {"response_format": SCHEMA}),
    (WEATHER, {"response_format": {"type": "json_object"}}),
    (IMAGES, {"max_tokens": 128}),
    (IMAGES, {"tools": [TOOL], "response_format": SCHEMA}),
], ids=["tools", "required", "named", "none", "tool-result", "json_schema", "json_object",
        "images", "all"])
def test_tools_formats_and_images_conform(
    mock_pool: MockPool,  # noqa: F811
    messages: list[dict[str, Any]], params: dict[str, Any],
) -> None:
    """/v3/chat/completions with tools, tool choices, a tool call sent back with its answer,
    response formats and image parts is accepted as the spec says, unary and streamed."""
    seen: list[httpx2.Response] = []
    streaming, sid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    drain_interrupted(streaming.stream_chat(messages, model="qwen3", endpoint_id=sid, **params))
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    result = backend.chat(messages, model="qwen3", endpoint_id=eid, **params)
    assert_all_accepted(seen, "/v3/chat/completions")
    sent = dict(params)
    if sent.get("response_format") == {"type": "json_object"}:
        sent["response_format"] = ANY_OBJECT
    assert len(seen) == 2
    for response in seen:  # what the mock validated is what the caller gave
        body = json.loads(response.request.content)
        assert body["messages"] == messages
        assert {k: body[k] for k in params} == sent
    assert isinstance(result.text, str)


@pytest.mark.parametrize("params", [
    {"tools": [TOOL]},
    {"response_format": SCHEMA},
    {"response_format": {"type": "json_object"}},
], ids=["tools", "json_schema", "json_object"])
def test_completions_refuse_before_sending(mock_pool: MockPool,  # noqa: F811
                                           params: dict[str, Any]) -> None:
    """/v3/completions takes no tools or response format: refused, nothing reaches the mock."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    with pytest.raises(ConfigurationError, match="generate"):
        backend.generate("Weather?", model="qwen3", endpoint_id=eid, **params)
    assert seen == []

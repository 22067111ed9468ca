"""The gemini plugin against a mock of the Gemini native API spec (gemini-native.openapi.json).

Every operation goes through the real ``Registry(plugins=[ipfs_accel_gemini])`` backend and
real HTTP to the Steady mock: a request the spec rejects (or lets through with a
diagnostic) fails the test, and the mock's generated answers must parse.

Fix-ups are applied to a temporary copy of the spec (never to the file itself):

- ``EmbedContentRequest`` gets the ``model`` property. The community spec omits it and
  forbids unknown properties, but the authoritative proto (``generative_service.proto``,
  ``EmbedContentRequest.model``, REQUIRED, "Format: models/{model}") has it, and
  ``batchEmbedContents`` needs it on every request.
- For the embed tests that parse vectors, ``EmbedContentResponse.embedding``,
  ``BatchEmbedContentsResponse.embeddings`` and ``ContentEmbedding.values`` are required.
  The spec makes them optional, so the mock answers ``{}``; the proto marks them
  OUTPUT_ONLY (the server fills them) and says the batch's embeddings come one per
  request, in order, so the batch test also asks the mock for exactly three
  (``X-Steady-Array-Size: 3``, the count it sends), and the one-input test for the
  ``outputDimensionality`` it sends (8 values). Against the spec as it is, the
  requests are still checked and the plugin must refuse the empty answers.
- The ``text/event-stream`` schema is typed ``string`` in the spec, so Steady sends
  ``data: "LV"``, which the plugin must refuse (``ResponseError``). For one stream test
  only, it becomes the ``GenerateContentResponse`` named by the operation's
  ``x-gemini-stream-event-schema``, with candidates and ``finishReason`` required so that
  the generated events look like a finished stream.
- For the tool round trip against a spec-generated answer, ``generateContent`` answers
  with one candidate whose parts are signed ``functionCall`` parts (``functionCall`` with
  ``name`` and ``args``, and ``thoughtSignature``, required; ``finishReason`` set to
  ``STOP``), so the plugin reads calls the mock made up and sends them back.

Requests with tools (function declarations, Gemini's own tools, ``toolConfig``), tool
results (signed ``functionCall`` turns, ``functionResponse`` turns), ``response_format``
(``responseMimeType`` + ``responseJsonSchema``) and images (``inlineData``, ``fileData``)
are each checked against the spec, which forbids unknown fields at every level; a few
misnamed bodies sent straight to the mock show that it refuses them.
"""

from __future__ import annotations

import copy
import json
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

import mockserver as ms  # noqa: E402
from _conformance import FAST_STREAM, make_backend  # noqa: E402

ipfs_accel_gemini = import_or_skip("ipfs_accel_gemini")

from ipfs_accel import Backend, ResponseError, ToolCall  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "gemini/gemini-native.openapi.json"
KEY = "AIzaCONFORMANCE-test-key"
STREAM_PATH = "/v1beta/models/{model}:streamGenerateContent"
HI = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
]


def _embed_model_field(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    schema = doc["components"]["schemas"]["EmbedContentRequest"]
    schema["properties"]["model"] = {"type": "string"}
    return doc


def _embeddings_present(doc: dict[str, Any]) -> dict[str, Any]:
    doc = _embed_model_field(doc)
    schemas = doc["components"]["schemas"]
    schemas["EmbedContentResponse"]["required"] = ["embedding"]
    schemas["BatchEmbedContentsResponse"]["required"] = ["embeddings"]
    schemas["ContentEmbedding"]["required"] = ["values"]
    return doc


def _typed_stream_events(doc: dict[str, Any]) -> dict[str, Any]:
    doc = _embed_model_field(doc)
    schemas = doc["components"]["schemas"]
    event = copy.deepcopy(schemas["GenerateContentResponse"])
    event["required"] = ["candidates", "usageMetadata", "responseId"]
    candidate = copy.deepcopy(schemas["GenerateContentCandidate"])
    candidate["required"] = ["content", "finishReason"]
    event["properties"]["candidates"] = {"type": "array", "minItems": 1, "items": candidate}
    usage = copy.deepcopy(schemas["GenerateContentUsageMetadata"])
    usage["required"] = ["promptTokenCount", "candidatesTokenCount"]
    event["properties"]["usageMetadata"] = usage
    schemas["GeminiStreamEvent"] = event
    media = doc["paths"][STREAM_PATH]["post"]["responses"]["200"]["content"]["text/event-stream"]
    media["schema"] = {"$ref": "#/components/schemas/GeminiStreamEvent"}
    return doc


def _function_call_answers(doc: dict[str, Any]) -> dict[str, Any]:
    doc = _embed_model_field(doc)
    schemas = doc["components"]["schemas"]
    answer = schemas["GenerateContentResponse"]
    answer["required"] = ["candidates"]
    candidate = copy.deepcopy(schemas["GenerateContentCandidate"])
    candidate["required"] = ["content", "finishReason"]
    candidate["properties"]["finishReason"] = {"type": "string", "enum": ["STOP"]}
    content = copy.deepcopy(schemas["Content"])
    content["required"] = ["parts"]
    part = copy.deepcopy(schemas["Part"])
    part["required"] = ["functionCall", "thoughtSignature"]
    part["properties"] = {"functionCall": part["properties"]["functionCall"],
                          "thoughtSignature": part["properties"]["thoughtSignature"]}
    schemas["FunctionCall"]["required"] = ["name", "args"]
    content["properties"]["parts"] = {"type": "array", "minItems": 1, "items": part}
    candidate["properties"]["content"] = content
    answer["properties"]["candidates"] = {"type": "array", "minItems": 1, "items": candidate}
    return doc


class _Mock:
    """A backend with one endpoint (key in its header, plus ``headers`` for the mock) in
    front of ``server``, recording every response in ``seen``."""

    def __init__(self, server: ms.MockServer, **headers: str) -> None:
        self.server = server
        self.seen: list[httpx2.Response] = []
        self.backend: Backend
        self.backend, self.eid = make_backend(
            ipfs_accel_gemini, "gemini", server.base_url, self.seen, api_key=KEY,
            headers={**FAST_STREAM, **headers},
        )

    def check(self, path_suffix: str) -> None:
        """The last request went to ``path_suffix``, was accepted without diagnostics, and
        carried the key in its header only."""
        response = self.seen[-1]
        request = response.request
        assert request.url.path.endswith(path_suffix), request.url
        assert KEY not in str(request.url)
        assert request.headers["x-goog-api-key"] == KEY
        ms.assert_not_rejected(response)
        assert response.headers.get("x-steady-matched-path", "").startswith("/v1beta/models/")


@pytest.fixture(scope="module")
def mock() -> Iterator[_Mock]:
    spec = ms.require_spec(SPEC)
    with ms.start_mock(spec, transform=_embed_model_field) as server:
        yield _Mock(server)


@pytest.fixture(scope="module")
def embeddings_server() -> Iterator[ms.MockServer]:
    spec = ms.require_spec(SPEC)
    with ms.start_mock(spec, transform=_embeddings_present) as server:
        yield server


@pytest.fixture(scope="module")
def typed_stream_mock() -> Iterator[_Mock]:
    spec = ms.require_spec(SPEC)
    with ms.start_mock(spec, transform=_typed_stream_events) as server:
        yield _Mock(server)


@pytest.fixture(scope="module")
def calling_mock() -> Iterator[_Mock]:
    spec = ms.require_spec(SPEC)
    with ms.start_mock(spec, transform=_function_call_answers) as server:
        yield _Mock(server)


def test_chat(mock: _Mock) -> None:
    """chat with system, assistant turns and every common and passed-through parameter."""
    result = mock.backend.chat(
        HI, endpoint_id=mock.eid, max_tokens=32, temperature=0.2, top_p=0.9, stop=["END"],
        top_k=4, seed=1, safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT",
                                          "threshold": "BLOCK_NONE"}],
    )
    mock.check(":generateContent")
    assert isinstance(result.text, str)


def test_generate(mock: _Mock) -> None:
    """generate with a system instruction and a stop string."""
    result = mock.backend.generate("Once", endpoint_id=mock.eid, stop="\n",
                                   system_instruction="Poet.", model="models/gemini-2.5-pro")
    mock.check("/models/gemini-2.5-pro:generateContent")
    assert isinstance(result.text, str)


def test_embed_one(embeddings_server: ms.MockServer) -> None:
    """embed of one input with the optional EmbedContentRequest fields; its vector parses."""
    mock = _Mock(embeddings_server, **{"X-Steady-Array-Size": "8"})  # outputDimensionality
    result = mock.backend.embed("hello", endpoint_id=mock.eid, task_type="RETRIEVAL_DOCUMENT",
                                title="Doc", output_dimensionality=8)
    mock.check(":embedContent")
    assert result.vectors == [mock.seen[-1].json()["embedding"]["values"]]
    assert len(result.vectors[0]) == 8


def test_embed_batch(embeddings_server: ms.MockServer) -> None:
    """embed of three inputs through batchEmbedContents; the mock's three vectors parse."""
    mock = _Mock(embeddings_server, **{"X-Steady-Array-Size": "3"})
    result = mock.backend.embed(["a", "b", "c"], endpoint_id=mock.eid)
    mock.check(":batchEmbedContents")
    assert result.vectors == [e["values"] for e in mock.seen[-1].json()["embeddings"]]


def test_embed_one_without_embedding_is_refused(mock: _Mock) -> None:
    """The spec's answer may omit ``embedding`` (the mock sends ``{}``): the request is
    accepted and the plugin refuses the empty answer, naming what is missing."""
    with pytest.raises(ResponseError, match="no 'embedding'"):
        mock.backend.embed("hello", endpoint_id=mock.eid, output_dimensionality=8)
    mock.check(":embedContent")


def test_embed_batch_without_embeddings_is_refused(mock: _Mock) -> None:
    """The spec's batch answer may omit ``embeddings`` (``{}``): the request is accepted and
    the plugin refuses the answer, naming the missing list."""
    with pytest.raises(ResponseError, match="embeddings of type NoneType"):
        mock.backend.embed(["a", "b", "c"], endpoint_id=mock.eid)
    mock.check(":batchEmbedContents")


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_stream_of_untyped_events_is_accepted_and_refused_by_name(
    mock: _Mock, operation: str
) -> None:
    """The spec types the stream's events as bare strings (``data: "LV"``), where the API
    sends a ``GenerateContentResponse`` per event (the operation's
    ``x-gemini-stream-event-schema``): the request is accepted, and the plugin refuses the
    first event with a ResponseError saying what it got, never as text."""
    before = len(mock.seen)
    if operation == "stream_chat":
        chunks = mock.backend.stream_chat(HI, endpoint_id=mock.eid, max_tokens=8)
    else:
        chunks = mock.backend.stream_generate("Hi", endpoint_id=mock.eid, temperature=0.1)
    with pytest.raises(ResponseError, match=r"gemini sent a stream event .*"
                       r"Expected `object`, got `str`") as info:
        for chunk in chunks:
            assert not chunk.delta, "a string event must not leak out as stream text"
    assert not info.value.retryable
    mock.check(":streamGenerateContent")
    assert mock.seen[-1].request.url.params["alt"] == "sse"
    assert len(mock.seen) == before + 1  # not retried: the same server sends the same


def test_stream_of_typed_events_ends_at_the_finish_reason(typed_stream_mock: _Mock) -> None:
    """Generated GenerateContentResponse events parse; the first with a finishReason ends it."""
    mock = typed_stream_mock
    chunks = list(mock.backend.stream_chat(HI, endpoint_id=mock.eid, max_tokens=8))
    mock.check(":streamGenerateContent")
    last = chunks[-1]
    assert last.done
    assert last.finish_reason
    assert last.usage is not None
    assert mock.backend.get_stats(mock.eid).input_tokens == last.usage.input_tokens


SIG = "CiQBVKhc7kqb0cXzR2Y5x3n0M1h4Q29uZm9ybWFuY2U="
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
          "required": ["city"], "additionalProperties": False}


def _body(mock: _Mock) -> Any:
    """The JSON body of the last request sent to the mock."""
    return json.loads(mock.seen[-1].request.content)


@pytest.mark.parametrize("choice", ["auto", "none", "required",
                                    {"type": "function", "function": {"name": "get_weather"}}])
def test_tools_and_tool_choice(mock: _Mock, choice: Any) -> None:
    """Function tools (functionDeclarations with parametersJsonSchema), Gemini's own tools
    and every tool_choice (toolConfig.functionCallingConfig) fit the spec."""
    mock.backend.chat(HI, endpoint_id=mock.eid, tools=[TOOL, {"googleSearch": {}}],
                      tool_choice=choice)
    mock.check(":generateContent")
    body = _body(mock)
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]
    assert body["toolConfig"]["functionCallingConfig"]["mode"]


def test_tool_results(mock: _Mock) -> None:
    """A model turn with signed functionCall parts (one with the API's id) and the user
    turn of their functionResponse parts fit the spec."""
    calls = [
        {"id": "fc-1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
         "extra_content": {"google": {"thought_signature": SIG, "function_call_id": "fc-1"}}},
        {"id": "call_made", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]
    messages = [
        *HI,
        {"role": "assistant", "content": "Checking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "fc-1", "content": "sunny, 21 C"},
        {"role": "tool", "tool_call_id": "call_made", "content": '{"sky": "clear"}'},
    ]
    mock.backend.chat(messages, endpoint_id=mock.eid, tools=[TOOL])
    mock.check(":generateContent")
    model, answers = _body(mock)["contents"][-2:]
    assert model["parts"][1] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"},
                                                  "id": "fc-1"}, "thoughtSignature": SIG}
    assert [p["functionResponse"]["response"] for p in answers["parts"]] == [
        {"result": "sunny, 21 C"}, {"sky": "clear"}]


@pytest.mark.parametrize("operation", ["chat", "generate"])
@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}},
    {"type": "json_object"},
])
def test_response_format(mock: _Mock, operation: str, fmt: dict[str, Any]) -> None:
    """json_schema (responseMimeType + responseJsonSchema) and json_object fit the spec."""
    if operation == "chat":
        mock.backend.chat(HI, endpoint_id=mock.eid, response_format=fmt, max_tokens=64)
    else:
        mock.backend.generate("Hi", endpoint_id=mock.eid, response_format=fmt)
    mock.check(":generateContent")
    config = _body(mock)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert ("responseJsonSchema" in config) == (fmt["type"] == "json_schema")


def test_images(mock: _Mock) -> None:
    """data: URLs (inlineData) and https URLs (fileData, with and without a known type) fit
    the spec."""
    content = [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
        {"type": "image_url", "image_url": "https://example.com/render"},
    ]
    mock.backend.chat([{"role": "user", "content": content}], endpoint_id=mock.eid)
    mock.check(":generateContent")
    parts = _body(mock)["contents"][0]["parts"]
    assert [next(iter(p)) for p in parts] == ["text", "inlineData", "fileData", "fileData"]


def test_stream_with_tools_and_schema(typed_stream_mock: _Mock) -> None:
    """streamGenerateContent takes the same tools, tool results and response format."""
    mock = typed_stream_mock
    messages = [*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": SIG}}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    stream = mock.backend.stream_chat(messages, endpoint_id=mock.eid, tools=[TOOL],
                                      tool_choice="auto", response_format={"type": "json_object"})
    result = stream.final()
    mock.check(":streamGenerateContent")
    assert result.finish_reason


def test_round_trip_of_spec_generated_calls(calling_mock: _Mock) -> None:
    """Calls the mock made up come back as typed, signed ToolCalls; sent back with their
    answers, the next request fits the spec and carries each signature on its part."""
    mock = calling_mock
    first = mock.backend.chat(HI, endpoint_id=mock.eid, tools=[TOOL])
    mock.check(":generateContent")
    assert first.finish_reason == "tool_calls"
    calls = first.tool_calls
    assert calls
    for call in calls:
        assert isinstance(call, ToolCall) and call.name and call.id
        assert call.extra_content is not None
        assert call.extra_content["google"]["thought_signature"]
    answers = [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in calls]
    mock.backend.chat([*HI, first.message, *answers], endpoint_id=mock.eid, tools=[TOOL])
    mock.check(":generateContent")
    model = _body(mock)["contents"][-2]
    assert [p["thoughtSignature"] for p in model["parts"]] == [
        c.extra_content["google"]["thought_signature"] for c in calls if c.extra_content]


@pytest.mark.parametrize("body", [
    {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}], "tool_choice": "auto"},
    {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
     "tools": [{"functionDeclarations": [{"name": "f", "parameters_json_schema": {}}]}]},
    {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
     "generationConfig": {"response_format": {"type": "json_object"}}},
    {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}},
                                                "thought_signature": SIG}]}]},
    {"contents": [{"role": "user", "parts": [{"image_url": {"url": "https://x/y.png"}}]}]},
], ids=["tool_choice", "snake-schema", "response_format", "snake-signature", "image_url"])
def test_the_mock_refuses_misnamed_fields(mock: _Mock, body: dict[str, Any]) -> None:
    """The spec forbids unknown fields where the plugin writes these: OpenAI's names or a
    misspelt Gemini name are refused, so the tests above would see a wrong mapping."""
    response = httpx2.post(mock.server.url("/v1beta/models/gemini-2.5-flash:generateContent"),
                           json=body, timeout=10)
    ms.assert_rejected(response)

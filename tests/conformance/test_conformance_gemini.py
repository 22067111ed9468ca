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
"""

from __future__ import annotations

import copy
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

from ipfs_accel import Backend, ResponseError  # noqa: E402

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

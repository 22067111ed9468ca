"""Typed decoding: Gemini bodies and stream events are read through the plugin's Structs."""

from __future__ import annotations

import copy
from typing import Any

import ipfs_accel_gemini
import msgspec
import pytest
from _gemini_fixtures import (
    backend,
    endpoint,
    generate_response,
    json_response,
    sse,
    usage_metadata,
)
from ipfs_accel import ResponseError, ServerError
from ipfs_accel.testing import Recorder
from ipfs_accel_gemini._wire import GenerateContentResponse

HI = [{"role": "user", "content": "Hi"}]


def _body(**changes: Any) -> dict[str, Any]:
    """A generateContent answer with usage, then ``path=value`` changes (``__`` for dots)."""
    body = generate_response(usage=usage_metadata())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node: Any = body
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return body


@pytest.mark.parametrize(("changes", "field"), [
    ({"candidates__0__content__parts__0__text": 7}, "$.candidates[0].content.parts[0].text"),
    ({"candidates__0__finishReason": 1}, "$.candidates[0].finishReason"),
    ({"modelVersion": {"name": "gemini"}}, "$.modelVersion"),
    ({"responseId": 123}, "$.responseId"),
    ({"usageMetadata__promptTokenCount": "11"}, "$.usageMetadata.promptTokenCount"),
    ({"usageMetadata__thoughtsTokenCount": 2.5}, "$.usageMetadata.thoughtsTokenCount"),
    ({"candidates__0__content__parts__0__thought": "yes"},
     "$.candidates[0].content.parts[0].thought"),
    ({"candidates__0__content__parts__0__functionCall": "weather()"},
     "$.candidates[0].content.parts[0].functionCall"),
    ({"candidates": {"0": {}}}, "$.candidates"),
    ({"promptFeedback": {"blockReason": False}}, "$.promptFeedback.blockReason"),
])
def test_a_wrong_typed_field_names_the_field_and_the_backend(
    changes: dict[str, Any], field: str
) -> None:
    """A field of the wrong type is a ResponseError naming gemini and the field, not retried."""
    rec = Recorder(json_response(200, _body(**changes)))
    b = backend(rec)
    with pytest.raises(ResponseError) as info:
        b.chat(HI, endpoint_id=endpoint(b))
    text = str(info.value)
    assert "gemini sent a chat response" in text and "does not fit" in text
    assert f"`{field}`" in text
    assert info.value.backend == "gemini"
    assert len(rec.requests) == 1
    assert b.get_stats().failed_requests == 1


def test_unknown_fields_and_part_kinds_are_tolerated_and_raw_has_the_body() -> None:
    """Fields and part kinds the plugin does not read are skipped; raw is the whole body."""
    parts = [
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"text": "One", "thoughtSignature": "c2ln", "partMetadata": {"a": 1}},
        {"hologram": {"frames": [1, 2]}},
        {"text": " two"},
    ]
    body = generate_response(parts=parts, usage={**usage_metadata(3, 2),
                                                 "promptTokensDetails": [{"modality": "TEXT"}]})
    body["modelStatus"] = {"modelStage": "STABLE"}
    body["candidates"][0]["safetyRatings"] = [{"category": "X", "probability": "LOW"}]
    body["brandNewField"] = {"nested": [None, True]}
    b = backend(Recorder(json_response(200, body)))
    result = b.chat(HI, endpoint_id=endpoint(b))
    assert result.text == "One two"
    assert result.tool_calls is None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (3, 2)
    assert result.raw == body


def test_parse_usage_reads_the_typed_response() -> None:
    """parse_usage reads the Struct the core decoded, or a generic body the same way; never raises."""
    body = msgspec.json.decode(
        msgspec.json.encode(_body(usageMetadata=usage_metadata(5, 4, cachedContentTokenCount=2))),
        type=GenerateContentResponse,
    )
    u = ipfs_accel_gemini.parse_usage("chat", body)
    assert u is not None
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens) == (5, 4, 2)
    assert u.details == {"totalTokenCount": 9.0}  # the cached tokens are part of the prompt
    assert u.total_tokens == 9
    assert ipfs_accel_gemini.parse_usage("chat", GenerateContentResponse()) is None
    generic = ipfs_accel_gemini.parse_usage("chat", {"usageMetadata": usage_metadata(3, 1)})
    assert generic is not None and (generic.input_tokens, generic.output_tokens) == (3, 1)
    bad = {"usageMetadata": {"promptTokenCount": "3"}}
    assert ipfs_accel_gemini.parse_usage("chat", bad) is None
    assert ipfs_accel_gemini.parse_usage("chat", None) is None


def _stream() -> list[dict[str, Any]]:
    return [
        generate_response("Hel", finish=None, response_id="r-t", usage=usage_metadata(9, 1)),
        generate_response("lo", finish="STOP", response_id="r-t", usage=usage_metadata(9, 2)),
    ]


def test_a_wrong_typed_stream_event_names_the_field() -> None:
    """An event with a field of the wrong type ends the stream with a ResponseError naming it."""
    events = _stream()
    events[1]["candidates"][0]["content"]["parts"][0]["text"] = ["lo"]
    rec = Recorder(sse(events))
    b = backend(rec)
    received: list[str] = []
    with pytest.raises(ResponseError) as info:
        for chunk in b.stream_chat(HI, endpoint_id=endpoint(b)):
            received.append(chunk.delta)
    assert received == ["Hel"]
    text = str(info.value)
    assert "gemini sent a stream event" in text
    assert "`$.candidates[0].content.parts[0].text`" in text
    assert not info.value.retryable and len(rec.requests) == 1


def test_stream_chunks_tolerate_unknown_fields_and_carry_raw() -> None:
    """Unknown fields in events are skipped; each chunk's raw is its event's whole data."""
    events = _stream()
    for event in events:
        event["modelStatus"] = {"modelStage": "PREVIEW"}
        event["candidates"][0]["content"]["parts"].append({"hologram": {"frames": 2}})
    b = backend(Recorder(sse(events)))
    chunks = list(b.stream_chat(HI, endpoint_id=endpoint(b)))
    assert "".join(c.delta for c in chunks) == "Hello"
    assert [c.raw for c in chunks] == events
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 2


@pytest.mark.parametrize("error", ["flat", {"code": "500", "status": 7}, [1], None])
def test_error_events_of_any_shape_are_classified(error: Any) -> None:
    """An error event is classified whatever the shape of its error object (null is no error)."""
    events: list[Any] = [{"error": error}] if error is not None else []
    events.append({"error": {"code": 500, "status": "INTERNAL", "message": "boom"}})
    b = backend(Recorder(sse(events)))
    with pytest.raises(ServerError) as info:
        list(b.stream_chat(HI, endpoint_id=endpoint(b, max_retries=0)))
    assert info.value.status in (200, 500)


def test_embed_raw_has_the_other_fields_but_not_the_vector() -> None:
    """embedContent: the vector is in vectors, raw keeps every other field of the body."""
    body = {"embedding": {"values": [0.5, 0.25], "shape": [2]}, "usageMetadata": {"x": 1}}
    b = backend(Recorder(json_response(200, body)))
    result = b.embed("a", endpoint_id=endpoint(b))
    assert result.vectors == [[0.5, 0.25]]
    assert result.raw == {"usageMetadata": {"x": 1}}


def test_batch_embed_raw_has_the_other_fields_but_not_the_vectors() -> None:
    """batchEmbedContents: vectors in order, raw keeps the body's other fields."""
    body = {"embeddings": [{"values": [1, 0]}, {"values": [0.0, 1.0], "shape": [2]}],
            "extra": "kept"}
    b = backend(Recorder(json_response(200, copy.deepcopy(body))))
    result = b.embed(["a", "b"], endpoint_id=endpoint(b))
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert result.raw == {"extra": "kept"}


@pytest.mark.parametrize(("body", "inputs", "field"), [
    ({"embedding": [0.1, 0.2]}, ["a"], "$.embedding"),
    ({"embedding": {"values": "0.1,0.2"}}, ["a"], "$.embedding.values"),
    ({"embeddings": {"values": [0.1]}}, ["a", "b"], "$.embeddings"),
])
def test_a_wrong_typed_embedding_names_the_field(
    body: dict[str, Any], inputs: list[str], field: str
) -> None:
    """An embedding body of the wrong shape is a ResponseError naming the field."""
    b = backend(Recorder(json_response(200, body)))
    with pytest.raises(ResponseError, match=r"^gemini sent an? embed response") as info:
        b.embed(inputs, endpoint_id=endpoint(b))
    assert f"`{field}`" in str(info.value)

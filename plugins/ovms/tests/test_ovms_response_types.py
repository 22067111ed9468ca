"""Answers the ovms plugin must refuse (short or misplaced embeddings, wrong-typed fields) and
what it must let through (unknown fields, kept in the results as sent)."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _ovms_fixtures import (
    CHAT_RESPONSE,
    EMBED_RESPONSE,
    INFER_RESPONSE,
    METADATA_RESPONSE,
    backend,
    endpoint,
    sse,
)
from ipfs_accel import Backend, ResponseError
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hi"}]


def _embeddings(*indexes: int) -> dict[str, Any]:
    return {**EMBED_RESPONSE,
            "data": [{"object": "embedding", "embedding": [float(i)], "index": i} for i in indexes]}


def test_shuffled_embeddings_are_put_back_in_input_order() -> None:
    """Rows arriving as index 2, 1, 0 give the vectors in input order."""
    b = backend(Recorder(httpx2.Response(200, json=_embeddings(2, 1, 0))))
    assert b.embed(["a", "b", "c"], model="m", endpoint_id=endpoint(b)).vectors == [
        [0.0], [1.0], [2.0]]


@pytest.mark.parametrize("indexes", [(0, 1), (), (0, 1, 5)])
def test_embeddings_that_do_not_match_the_inputs_raise(indexes: tuple[int, ...]) -> None:
    """Two rows, none, or an out-of-range index for three inputs is a ResponseError, tried once."""
    rec = Recorder(httpx2.Response(200, json=_embeddings(*indexes)))
    b = backend(rec)
    with pytest.raises(ResponseError, match="data") as info:
        b.embed(["a", "b", "c"], model="m", endpoint_id=endpoint(b))
    assert info.value.backend == "ovms" and len(rec.requests) == 1


def test_null_inside_a_vector_is_named() -> None:
    """A null inside an embedding is a ResponseError naming its position."""
    body = copy.deepcopy(EMBED_RESPONSE)
    body["data"][0]["embedding"] = [None, 0.6]  # index 1
    b = backend(Recorder(httpx2.Response(200, json=body)))
    where = r"`\$\.data\[0\]\.embedding\[0\]`"
    with pytest.raises(ResponseError, match=rf"ovms sent a embed response.*got `null` - at {where}"):
        b.embed(["a", "b"], model="m", endpoint_id=endpoint(b))


@pytest.mark.parametrize(("field", "value"), [("finish_reason", 3), ("model", {"n": 1})])
def test_wrong_typed_chat_field_raises_naming_it(field: str, value: Any) -> None:
    """finish_reason or model of the wrong type is a ResponseError naming the field."""
    body = copy.deepcopy(CHAT_RESPONSE)
    if field == "model":
        body["model"] = value
    else:
        body["choices"][0][field] = value
    b = backend(Recorder(httpx2.Response(200, json=body)))
    path = r"\$\.model" if field == "model" else r"\$\.choices\[0\]\.finish_reason"
    with pytest.raises(ResponseError, match=rf"ovms sent a chat response.*got `\w+` - at `{path}`"):
        b.chat(HI, model="m", endpoint_id=endpoint(b))


def _chunk(content: Any, finish: Any = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
            "model": "llama3", "object": "chat.completion.chunk"}


@pytest.mark.parametrize(("event", "path"), [
    (_chunk(5), r"\$\.choices\[0\]\.delta\.content"),
    (_chunk("x", finish=7), r"\$\.choices\[0\]\.finish_reason"),
])
def test_wrong_typed_stream_event_is_named(event: dict[str, Any], path: str) -> None:
    """A /v3 stream chunk with a wrong-typed field ends the stream with a ResponseError
    naming the backend and the field, after the text already yielded."""
    rec = Recorder(sse([_chunk("Hel"), event]))
    b = backend(rec)
    seen: list[str] = []
    with pytest.raises(ResponseError, match=rf"ovms sent a stream event.*{path}") as got:
        for chunk in b.stream_chat(HI, model="m", endpoint_id=endpoint(b)):
            seen.append(chunk.delta)
    assert seen == ["Hel"] and got.value.backend == "ovms" and len(rec.requests) == 1


def test_chat_ignores_unknown_fields_and_keeps_the_body_in_raw() -> None:
    """Unknown fields, whatever their type, are skipped; raw is the whole body."""
    body = {**copy.deepcopy(CHAT_RESPONSE), "system_fingerprint": 3, "ovms": {"x": [1]}}
    body["choices"][0]["message"]["reasoning"] = {"steps": 2}
    b = backend(Recorder(httpx2.Response(200, json=body)))
    result = b.chat(HI, model="m", endpoint_id=endpoint(b))
    assert result.text == "\n\nHow can I help you?"
    assert result.raw == body


# -- rerank, KServe v2 and TF-Serving -----------------------------------------------------

TENSOR = {"name": "input0", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}


def _infer(b: Backend) -> Any:
    return b.invoke("infer", model="mymodel", endpoint_id=endpoint(b), inputs=[TENSOR])


def _rerank(b: Backend) -> Any:
    return b.invoke("rerank", model="m", endpoint_id=endpoint(b), query="q",
                    documents=["a", "b"])


def _output(**change: Any) -> dict[str, Any]:
    return {**INFER_RESPONSE, "outputs": [{**INFER_RESPONSE["outputs"][0], **change}]}


@pytest.mark.parametrize(
    ("operation", "body", "path"),
    [
        ("infer", _output(shape="3x2"), r"\$\.outputs\[0\]\.shape"),
        ("infer", _output(shape=[3, 2.5]), r"\$\.outputs\[0\]\.shape\[1\]"),
        ("infer", _output(datatype=11), r"\$\.outputs\[0\]\.datatype"),
        ("infer", _output(name=None), r"\$\.outputs\[0\]\.name"),
        ("infer", {**INFER_RESPONSE, "outputs": {"output0": []}}, r"\$\.outputs"),
        ("infer", {"model_name": "mymodel"}, "outputs"),
        ("rerank", {"results": [{"index": "0", "relevance_score": 0.5}]},
         r"\$\.results\[0\]\.index"),
        ("rerank", {"results": [{"index": 0, "relevance_score": "high"}]},
         r"\$\.results\[0\]\.relevance_score"),
        ("rerank", {"results": None}, r"\$\.results"),
    ],
)
def test_wrong_typed_native_field_is_named(operation: str, body: Any, path: str) -> None:
    """A rerank or infer answer with a wrong-typed or missing field is a ResponseError naming
    the backend and the field, tried once (it was passed through, or failed unnamed)."""
    rec = Recorder(httpx2.Response(200, json=body))
    b = backend(rec)
    with pytest.raises(ResponseError, match=rf"ovms sent a {operation} response.*{path}") as got:
        _infer(b) if operation == "infer" else _rerank(b)
    assert got.value.backend == "ovms" and got.value.retryable is False
    assert len(rec.requests) == 1


@pytest.mark.parametrize("operation", ["metadata", "server_metadata", "predict"])
def test_native_answer_that_is_not_an_object_is_refused(operation: str) -> None:
    """Metadata and predict answers must be JSON objects: a list is a ResponseError."""
    b = backend(Recorder(httpx2.Response(200, json=[METADATA_RESPONSE])))
    extra: dict[str, Any] = {"instances": [[1.0]]} if operation == "predict" else {}
    with pytest.raises(ResponseError, match=rf"ovms sent a {operation} response.*Expected `object`"):
        b.invoke(operation, model="resnet", endpoint_id=endpoint(b), **extra)


def test_native_answers_keep_unknown_fields_as_sent() -> None:
    """Unknown fields are skipped by the typed decode but the results carry them as sent:
    a tensor's parameters, a rerank row's document, extra metadata."""
    tensor = {**INFER_RESPONSE["outputs"][0], "parameters": {"binary_data_size": 24},
              "vendor": {"x": [1]}}
    rows = [{"index": 1, "relevance_score": 0.9, "document": {"text": "b"}, "extra": None}]
    metadata = {**METADATA_RESPONSE, "vendor_field": [1, "two"]}
    rec = Recorder(
        httpx2.Response(200, json={**INFER_RESPONSE, "outputs": [tensor], "id": "7", "more": {}}),
        httpx2.Response(200, json={"results": rows, "id": "r", "meta": {"api_version": 2}}),
        httpx2.Response(200, json=metadata),
        httpx2.Response(200, json={"predictions": None, "model_spec": {"x": 1}}),
    )
    b = backend(rec)
    infer = _infer(b).data
    assert (infer.outputs, infer.id) == ([tensor], "7")
    assert _rerank(b).data == rows
    assert b.invoke("metadata", model="resnet", endpoint_id=endpoint(b)).data == metadata
    assert b.invoke("predict", model="m", endpoint_id=endpoint(b), instances=[1]).data is None

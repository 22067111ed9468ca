"""Typed decoding: infer and batch_infer answers decode into the plugin's Structs, a field of
the wrong type is a ResponseError naming backend and field, unknown fields are skipped, and
``raw`` (or an invoke's ``data``) still carries what the server sent. The contract has no
streams, so there are no events to decode."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_llvm
import pytest
from ipfs_accel import Backend, ResponseError
from ipfs_accel.testing import FAST_RETRIES, Recorder, mock_backend
from ipfs_accel_llvm._response import BatchAnswer, Counts, InferAnswer

ANSWER: dict[str, Any] = {
    "result": "Hello from LLVM",
    "model": "default",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
}
EXTRAS: dict[str, Any] = {
    "errors": [],
    "execution_time": 0.25,
    "total_tokens": "not read",  # outside usage, and not declared: skipped
    "trace": {"passes": ["mem2reg", {"inline": None}]},
}


def _backend(*answers: httpx2.Response) -> tuple[Backend, str, Recorder]:
    rec = Recorder(*answers)
    backend = mock_backend(ipfs_accel_llvm, rec)
    eid = backend.create_endpoint(**{**FAST_RETRIES, "base_url": "http://llvm.test"})
    return backend, eid, rec


@pytest.mark.parametrize(("body", "field"), [
    ({**ANSWER, "finish_reason": 1}, "$.finish_reason"),
    ({**ANSWER, "model": ["default"]}, "$.model"),
    ({**ANSWER, "usage": "nine"}, "$.usage"),
    ({**ANSWER, "usage": {"prompt_tokens": -5}}, "$.usage.prompt_tokens"),
    ({**ANSWER, "usage": {"completion_tokens": "4"}}, "$.usage.completion_tokens"),
    ({**ANSWER, "usage": {"output_tokens": 1.5}}, "$.usage.output_tokens"),
])
def test_a_generate_field_of_the_wrong_type_is_named(body: dict[str, Any], field: str) -> None:
    """A wrong-typed or negative field of an infer answer is a ResponseError naming backend
    and field, after one attempt."""
    backend, eid, rec = _backend(httpx2.Response(200, json=body))
    with pytest.raises(ResponseError, match="llvm sent a generate response") as info:
        backend.generate("hi", endpoint_id=eid)
    assert f"`{field}`" in str(info.value)
    assert info.value.backend == "llvm"
    assert info.value.attempts == 1 and len(rec.requests) == 1
    assert backend.get_stats(eid).input_tokens == 0


@pytest.mark.parametrize(("operation", "params", "body", "field"), [
    ("batch_infer", {"inputs": ["a"]}, {"results": "a!"}, "$.results"),
    ("batch_infer", {"inputs": ["a"]}, {"results": ["a!"], "usage": {"input_tokens": -1}},
     "$.usage.input_tokens"),
    ("infer", {"input": [1]}, {"result": 1, "usage": {"prompt_tokens": True}},
     "$.usage.prompt_tokens"),
])
def test_an_invoke_field_of_the_wrong_type_is_named(
    operation: str, params: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    """batch_infer and infer answers are checked by type the same way."""
    backend, eid, _ = _backend(httpx2.Response(200, json=body))
    with pytest.raises(ResponseError, match=rf"llvm sent an? {operation} response") as info:
        backend.invoke(operation, endpoint_id=eid, **params)
    assert f"`{field}`" in str(info.value)


def test_unknown_fields_are_skipped_and_raw_is_the_body() -> None:
    """Fields the plugin does not read, whatever their type, are skipped; raw is the body."""
    body = {**ANSWER, **EXTRAS, "usage": {**ANSWER["usage"], "cached": "yes"}}
    backend, eid, _ = _backend(httpx2.Response(200, json=body))
    out = backend.generate("hi", endpoint_id=eid)
    assert (out.text, out.finish_reason, out.native_finish_reason, out.model) == (
        "Hello from LLVM", "stop", "stop", "default")
    assert (out.usage.input_tokens, out.usage.output_tokens) == (5, 4)
    assert out.raw == body


def test_a_bare_string_answer_is_the_text_and_the_raw() -> None:
    """An older server's bare JSON string is the text; raw is that string."""
    backend, eid, _ = _backend(httpx2.Response(200, json="just text"))
    out = backend.generate("hi", model="m", endpoint_id=eid)
    assert (out.text, out.model, out.raw) == ("just text", "m", "just text")


@pytest.mark.parametrize("body", [
    {**ANSWER, **EXTRAS},
    ["a", {"b": 1}],
    "text",
    3.5,
    False,
])
def test_infer_passes_any_json_on_as_sent(body: Any) -> None:
    """invoke('infer') gives the body as the server sent it, unknown fields and all, and
    counts the usage of an object answer."""
    backend, eid, _ = _backend(httpx2.Response(200, json=body))
    out = backend.invoke("infer", endpoint_id=eid, input="x")
    assert out.data == body
    assert out.usage.total_tokens == (9 if isinstance(body, dict) else 0)


def test_infer_refuses_null() -> None:
    """A null infer answer is a ResponseError, as it was before answers were typed."""
    backend, eid, _ = _backend(httpx2.Response(200, json=None))
    with pytest.raises(ResponseError, match=r"llvm sent an? infer response"):
        backend.invoke("infer", endpoint_id=eid, input="x")


def test_batch_results_are_passed_as_sent() -> None:
    """batch_infer gives the results list as sent; unknown fields are skipped."""
    results = ["a!", {"text": "b!", "score": None}, 3]
    backend, eid, _ = _backend(httpx2.Response(200, json={"results": results, **EXTRAS}))
    assert backend.invoke("batch_infer", endpoint_id=eid, inputs=["a", "b", "c"]).data == results


@pytest.mark.parametrize("operation", ["list_models", "model_info", "status"])
def test_pass_through_operations_keep_any_shape(operation: str) -> None:
    """list_models, model_info and status are passed on generically: a field the plugin does
    not read is never refused, and a 'usage' there is not counted."""
    body = {"models": "several", "status": 1, "id": None, "usage": {"prompt_tokens": -1}}
    backend, eid, _ = _backend(httpx2.Response(200, json=body))
    out = backend.invoke(operation, endpoint_id=eid)
    assert out.data == body
    assert out.usage.total_tokens == 0


def test_parse_usage_reads_the_structs() -> None:
    """The parse_usage hook reads a decoded answer's usage, either name of each count."""
    usage = ipfs_accel_llvm.parse_usage(
        "generate", InferAnswer(usage=Counts(input_tokens=2, completion_tokens=3)))
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (2, 3)
    assert ipfs_accel_llvm.parse_usage("batch_infer", BatchAnswer(results=[])) is None
    assert ipfs_accel_llvm.parse_usage("status", {"usage": {"prompt_tokens": 1}}) is None
    assert ipfs_accel_llvm.parse_usage("infer", "text") is None

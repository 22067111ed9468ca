"""The gemini plugin's finish reasons in the core's vocabulary, and the model each call uses."""

from __future__ import annotations

from typing import Any

import ipfs_accel_gemini
import pytest
from _gemini_fixtures import Recorder, backend, endpoint, generate_response, json_response, sse

HI = [{"role": "user", "content": "Hi"}]

# every Candidate.FinishReason of generative_service.proto, and what it becomes
SPEC_FINISH_REASONS = [
    ("STOP", "stop"),
    ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"),
    ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
    ("IMAGE_RECITATION", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"),
    ("UNEXPECTED_TOOL_CALL", "error"),
    ("TOO_MANY_TOOL_CALLS", "error"),
    ("LANGUAGE", "other"),
    ("OTHER", "other"),
    ("IMAGE_OTHER", "other"),
    ("NO_IMAGE", "other"),
    ("FINISH_REASON_UNSPECIFIED", "other"),
]

# every PromptFeedback.BlockReason: the finish reason of a prompt blocked before any answer
SPEC_BLOCK_REASONS = [
    ("SAFETY", "content_filter"),
    ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"),
    ("OTHER", "other"),
    ("BLOCK_REASON_UNSPECIFIED", "other"),
]

CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}


def test_table_covers_exactly_the_spec() -> None:
    """The plugin's table names every spec value this test expects, and no others."""
    expected = dict(SPEC_FINISH_REASONS) | dict(SPEC_BLOCK_REASONS)
    assert dict(ipfs_accel_gemini._response.FINISH_REASON_TABLE) == expected


@pytest.mark.parametrize(("native", "expected"), SPEC_FINISH_REASONS)
def test_finish_reason_normalized(native: str, expected: str) -> None:
    """A candidate's finishReason becomes the vocabulary's value; the API's own is kept."""
    b = backend(Recorder(json_response(200, generate_response(finish=native))))
    result = b.chat(HI, endpoint_id=endpoint(b))
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), SPEC_BLOCK_REASONS)
def test_block_reason_normalized(native: str, expected: str) -> None:
    """A blocked prompt's blockReason is the finish reason, unary and streamed."""
    body = {"promptFeedback": {"blockReason": native}, "responseId": "r-b"}
    b = backend(Recorder(json_response(200, body)))
    result = b.chat(HI, endpoint_id=endpoint(b))
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)
    b = backend(Recorder(sse([body])))
    last = list(b.stream_chat(HI, endpoint_id=endpoint(b)))[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), SPEC_FINISH_REASONS)
def test_stream_last_chunk_carries_both(native: str, expected: str) -> None:
    """The stream's last chunk carries the normalized and the native finish reason."""
    b = backend(Recorder(sse([generate_response("Hel", finish=None),
                              generate_response("lo", finish=native)])))
    chunks = list(b.stream_chat(HI, endpoint_id=endpoint(b)))
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == (expected, native)
    assert all(c.finish_reason is None for c in chunks[:-1])


def test_unknown_finish_reason_is_other_with_native_kept() -> None:
    """A finishReason the spec does not list is "other", unary and streamed, never lost."""
    b = backend(Recorder(json_response(200, generate_response(finish="NEW_REASON_42"))))
    result = b.chat(HI, endpoint_id=endpoint(b))
    assert (result.finish_reason, result.native_finish_reason) == ("other", "NEW_REASON_42")
    b = backend(Recorder(sse([generate_response("x", finish="NEW_REASON_42")])))
    last = list(b.stream_chat(HI, endpoint_id=endpoint(b)))[-1]
    assert (last.finish_reason, last.native_finish_reason) == ("other", "NEW_REASON_42")


def test_stop_with_function_calls_is_tool_calls() -> None:
    """Gemini ends a turn that calls functions with STOP: that is "tool_calls", native STOP."""
    body = generate_response(parts=[CALL], finish="STOP")
    b = backend(Recorder(json_response(200, body)))
    result = b.chat(HI, endpoint_id=endpoint(b))
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "STOP")
    b = backend(Recorder(sse([body])))
    last = list(b.stream_chat(HI, endpoint_id=endpoint(b)))[-1]
    assert (last.finish_reason, last.native_finish_reason) == ("tool_calls", "STOP")
    # a function call cut short is not a request for tools
    b = backend(Recorder(json_response(200, generate_response(parts=[CALL], finish="MAX_TOKENS"))))
    assert b.chat(HI, endpoint_id=endpoint(b)).finish_reason == "length"


def test_backend_declares_a_default_per_operation() -> None:
    """embed has its own default model; every other operation uses DEFAULT_MODEL."""
    info = ipfs_accel_gemini.backend_info()
    assert info.default_model == ipfs_accel_gemini.DEFAULT_MODEL == "gemini-2.5-flash"
    assert dict(info.default_models) == {"embed": "gemini-embedding-001"}
    assert ipfs_accel_gemini.DEFAULT_EMBED_MODEL == "gemini-embedding-001"


OPERATIONS: list[tuple[str, Any]] = [
    ("chat", HI),
    ("generate", "Hi"),
    ("stream_chat", HI),
    ("stream_generate", "Hi"),
    ("embed", "Hi"),
    ("embed", ["a", "b"]),
]

_ROUTES = {"chat": "generateContent", "generate": "generateContent",
           "stream_chat": "streamGenerateContent", "stream_generate": "streamGenerateContent"}


def _answer(operation: str, inputs: Any) -> Recorder:
    if operation.startswith("stream_"):
        return Recorder(sse([generate_response("ok")]))
    if operation == "embed":
        if isinstance(inputs, list):
            return Recorder(json_response(200, {"embeddings": [{"values": [1.0]}] * len(inputs)}))
        return Recorder(json_response(200, {"embedding": {"values": [1.0]}}))
    return Recorder(json_response(200, generate_response()))


def _run(operation: str, inputs: Any, *, settings: dict[str, Any] | None = None,
         **kwargs: Any) -> Recorder:
    rec = _answer(operation, inputs)
    b = backend(rec)
    out = getattr(b, operation)(inputs, endpoint_id=endpoint(b, **(settings or {})), **kwargs)
    if operation.startswith("stream_"):
        list(out)
    return rec


def _sent_model(rec: Recorder, operation: str, inputs: Any) -> str:
    path = rec.last.url.path
    if operation == "embed":
        route = "batchEmbedContents" if isinstance(inputs, list) else "embedContent"
    else:
        route = _ROUTES[operation]
    prefix, _, suffix = path.rpartition(":")
    assert suffix == route
    model = prefix.removeprefix("/v1beta/models/")
    if route == "batchEmbedContents":  # each batch request names the model too
        assert {r["model"] for r in rec.body()["requests"]} == {f"models/{model}"}
    return model


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"])
def test_model_named_by_the_call_is_sent_as_given(operation: str, inputs: Any, model: str) -> None:
    """A call's model= is the model sent, for every operation, even the chat default on embed."""
    rec = _run(operation, inputs, model=model)
    assert _sent_model(rec, operation, inputs) == model


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_model_named_by_the_endpoint_is_sent_as_given(operation: str, inputs: Any) -> None:
    """An endpoint's model setting is sent as given, even with embed_model set beside it."""
    rec = _run(operation, inputs, settings={"model": "gemini-2.5-flash",
                                            "embed_model": "text-embedding-004"})
    assert _sent_model(rec, operation, inputs) == "gemini-2.5-flash"


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_default_per_operation_when_none_named(operation: str, inputs: Any) -> None:
    """With no model named, embed sends the embedding default and the rest the chat default."""
    rec = _run(operation, inputs)
    expected = "gemini-embedding-001" if operation == "embed" else "gemini-2.5-flash"
    assert _sent_model(rec, operation, inputs) == expected


@pytest.mark.parametrize("inputs", ["Hi", ["a", "b"]])
def test_embed_model_option_is_the_endpoints_default(inputs: Any) -> None:
    """embed_model chooses embed's model when none is named; a named one still wins."""
    rec = _run("embed", inputs, settings={"embed_model": "text-embedding-004"})
    assert _sent_model(rec, "embed", inputs) == "text-embedding-004"
    rec = _run("embed", inputs, settings={"embed_model": "text-embedding-004"},
               model="gemini-embedding-exp")
    assert _sent_model(rec, "embed", inputs) == "gemini-embedding-exp"
    rec = _run("chat", HI, settings={"embed_model": "text-embedding-004"})
    assert _sent_model(rec, "chat", HI) == "gemini-2.5-flash"

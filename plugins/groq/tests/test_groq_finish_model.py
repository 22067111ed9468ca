"""The groq plugin's finish reasons in the core's vocabulary, and the model each call sends."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _groq_fixtures import CHAT, EMBEDDINGS, Server, backend, chunk, sse, stream_response

HI = [{"role": "user", "content": "Hi"}]

# every finish_reason of the GroqCloud spec's chat choice and chunk choice, and what it becomes
SPEC_FINISH_REASONS = [
    ("stop", "stop"),
    ("length", "length"),
    ("tool_calls", "tool_calls"),
    ("function_call", "tool_calls"),
]


def _chat(finish: str | None) -> httpx2.Response:
    body = copy.deepcopy(CHAT)
    body["choices"][0]["finish_reason"] = finish
    return httpx2.Response(200, json=body)


def _stream(finish: str) -> httpx2.Response:
    return stream_response(sse(chunk("Hel"), chunk("lo"), chunk(None, finish)))


@pytest.mark.parametrize(("native", "expected"), SPEC_FINISH_REASONS)
@pytest.mark.parametrize("operation", ["chat", "generate"])
def test_finish_reason_normalized(operation: str, native: str, expected: str) -> None:
    """A choice's finish_reason is in the vocabulary; the value as sent is kept beside it."""
    b, eid = backend(Server(_chat(native)))
    result = getattr(b, operation)(HI if operation == "chat" else "Hi", endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), SPEC_FINISH_REASONS)
@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_stream_last_chunk_carries_both(operation: str, native: str, expected: str) -> None:
    """The stream's last chunk carries the normalized and the native finish reason."""
    b, eid = backend(Server(_stream(native)))
    chunks = list(getattr(b, operation)(HI if operation == "stream_chat" else "Hi",
                                        endpoint_id=eid))
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == (expected, native)


def test_unknown_finish_reason_is_other_with_native_kept() -> None:
    """A finish_reason the spec does not list is "other", unary and streamed, never lost."""
    b, eid = backend(Server(_chat("warp_drive")))
    result = b.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == ("other", "warp_drive")
    b, eid = backend(Server(_stream("warp_drive")))
    last = list(b.stream_chat(HI, endpoint_id=eid))[-1]
    assert (last.finish_reason, last.native_finish_reason) == ("other", "warp_drive")


def test_no_finish_reason_stays_none() -> None:
    """A choice without a finish_reason has neither value."""
    b, eid = backend(Server(_chat(None)))
    result = b.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (None, None)


OPERATIONS: list[tuple[str, Any]] = [
    ("chat", HI),
    ("generate", "Hi"),
    ("stream_chat", HI),
    ("stream_generate", "Hi"),
    ("embed", ["a", "b"]),  # EMBEDDINGS holds two rows
]


def _sent(operation: str, inputs: Any, *, settings: dict[str, Any] | None = None,
          **kwargs: Any) -> str:
    if operation == "embed":
        answer = httpx2.Response(200, json=EMBEDDINGS)
    elif operation.startswith("stream_"):
        answer = _stream("stop")
    else:
        answer = _chat("stop")
    server = Server(answer)
    b, eid = backend(server, **(settings or {}))
    out = getattr(b, operation)(inputs, endpoint_id=eid, **kwargs)
    if operation.startswith("stream_"):
        list(out)
    model = server.body()["model"]
    assert isinstance(model, str)
    return model


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
@pytest.mark.parametrize("model", ["llama-3.3-70b-versatile", "nomic-embed-text-v1_5",
                                   "my-proxy-alias"])
def test_model_named_by_the_call_is_sent_as_given(operation: str, inputs: Any, model: str) -> None:
    """A call's model= is the model sent, for every operation, the chat default on embed too."""
    assert _sent(operation, inputs, model=model) == model


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_model_named_by_the_endpoint_is_sent_as_given(operation: str, inputs: Any) -> None:
    """An endpoint's model setting is sent as given, for every operation."""
    assert _sent(operation, inputs, settings={"model": "llama-3.3-70b-versatile"}) == (
        "llama-3.3-70b-versatile")


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_default_per_operation_when_none_named(operation: str, inputs: Any) -> None:
    """With no model named, embed sends the embedding default and the rest the chat default."""
    expected = "nomic-embed-text-v1_5" if operation == "embed" else "llama-3.3-70b-versatile"
    assert _sent(operation, inputs) == expected

"""The openai plugin's finish reasons in the core's vocabulary, and the model each call sends."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _openai_fixtures import CHAT, COMPLETION, EMBEDDINGS, Server, backend, chunk, sse, stream_response

HI = [{"role": "user", "content": "Hi"}]

# every finish_reason of the spec's chat choice and chunk choice, and what it becomes
CHAT_FINISH_REASONS = [
    ("stop", "stop"),
    ("length", "length"),
    ("tool_calls", "tool_calls"),
    ("content_filter", "content_filter"),
    ("function_call", "tool_calls"),
]
# every finish_reason of the spec's legacy completion choice
COMPLETION_FINISH_REASONS = [
    ("stop", "stop"),
    ("length", "length"),
    ("content_filter", "content_filter"),
]


def _chat(finish: str | None) -> httpx2.Response:
    body = copy.deepcopy(CHAT)
    body["choices"][0]["finish_reason"] = finish
    return httpx2.Response(200, json=body)


def _completion(finish: str | None) -> httpx2.Response:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["finish_reason"] = finish
    return httpx2.Response(200, json=body)


def _completion_stream(finish: str) -> httpx2.Response:
    event = {"id": "cmpl-7iA7", "object": "text_completion", "created": 1690759702,
             "model": "gpt-3.5-turbo-instruct",
             "choices": [{"text": "This", "index": 0, "logprobs": None, "finish_reason": None}]}
    end = copy.deepcopy(event)
    end["choices"][0].update(text="", finish_reason=finish)
    return stream_response(sse(event, end))


@pytest.mark.parametrize(("native", "expected"), CHAT_FINISH_REASONS)
def test_chat_finish_reason_normalized(native: str, expected: str) -> None:
    """A chat choice's finish_reason is in the vocabulary; the value as sent is kept beside it."""
    b, eid = backend(Server(_chat(native)))
    result = b.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), CHAT_FINISH_REASONS)
def test_chat_stream_last_chunk_carries_both(native: str, expected: str) -> None:
    """stream_chat's last chunk carries the normalized and the native finish reason."""
    b, eid = backend(Server(stream_response(sse(chunk("Hi"), chunk(None, native)))))
    last = list(b.stream_chat(HI, endpoint_id=eid))[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), COMPLETION_FINISH_REASONS)
def test_completion_finish_reason_normalized(native: str, expected: str) -> None:
    """generate and stream_generate (/completions) carry both values too."""
    b, eid = backend(Server(_completion(native)))
    result = b.generate("x", endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)
    b, eid = backend(Server(_completion_stream(native)))
    last = list(b.stream_generate("x", endpoint_id=eid))[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == (expected, native)


def test_unknown_finish_reason_is_other_with_native_kept() -> None:
    """A finish_reason the spec does not list is "other", unary and streamed, never lost."""
    b, eid = backend(Server(_chat("warp_drive")))
    result = b.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == ("other", "warp_drive")
    b, eid = backend(Server(stream_response(sse(chunk("Hi"), chunk(None, "warp_drive")))))
    last = list(b.stream_chat(HI, endpoint_id=eid))[-1]
    assert (last.finish_reason, last.native_finish_reason) == ("other", "warp_drive")
    b, eid = backend(Server(_completion("warp_drive")))
    result = b.generate("x", endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == ("other", "warp_drive")


OPERATIONS: list[tuple[str, Any]] = [
    ("chat", HI),
    ("generate", "Hi"),
    ("stream_chat", HI),
    ("stream_generate", "Hi"),
    ("embed", ["a", "b"]),  # EMBEDDINGS holds two rows
]

DEFAULTS = {
    "chat": "gpt-4o-mini",
    "stream_chat": "gpt-4o-mini",
    "generate": "gpt-3.5-turbo-instruct",
    "stream_generate": "gpt-3.5-turbo-instruct",
    "embed": "text-embedding-3-small",
}


def _sent(operation: str, inputs: Any, *, settings: dict[str, Any] | None = None,
          **kwargs: Any) -> str:
    answers = {
        "chat": _chat("stop"),
        "generate": _completion("stop"),
        "stream_chat": stream_response(sse(chunk("Hi", "stop"))),
        "stream_generate": _completion_stream("stop"),
        "embed": httpx2.Response(200, json=EMBEDDINGS),
    }
    server = Server(answers[operation])
    b, eid = backend(server, **(settings or {}))
    out = getattr(b, operation)(inputs, endpoint_id=eid, **kwargs)
    if operation.startswith("stream_"):
        list(out)
    model = server.body()["model"]
    assert isinstance(model, str)
    return model


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-3.5-turbo-instruct",
                                   "text-embedding-3-small", "my-proxy-alias"])
def test_model_named_by_the_call_is_sent_as_given(operation: str, inputs: Any, model: str) -> None:
    """A call's model= is the model sent for every operation, the chat default included."""
    assert _sent(operation, inputs, model=model) == model


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_model_named_by_the_endpoint_is_sent_as_given(operation: str, inputs: Any) -> None:
    """An endpoint's model setting is sent as given, for every operation."""
    assert _sent(operation, inputs, settings={"model": "gpt-4o-mini"}) == "gpt-4o-mini"


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_default_per_operation_when_none_named(operation: str, inputs: Any) -> None:
    """With no model named, each operation sends the model its route accepts."""
    assert _sent(operation, inputs) == DEFAULTS[operation]

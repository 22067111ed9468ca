"""The ollama plugin's finish reasons in the core's vocabulary, and the model each call sends."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_ollama
import pytest
from _ollama_fixtures import (
    CHAT_RESPONSE,
    EMBED_RESPONSE,
    FINAL_COUNTS,
    GENERATE_RESPONSE,
    backend,
    chat_line,
    endpoint,
    gen_line,
    ndjson,
)
from ipfs_accel import ConfigurationError
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Why is the sky blue?"}]

# every done_reason the API docs show (api.md), and what it becomes
DOCUMENTED_DONE_REASONS = [
    ("stop", "stop"),
    ("length", "length"),
    ("load", "other"),
    ("unload", "other"),
]


def _answer(operation: str, done_reason: str | None = "stop") -> httpx2.Response:
    final = {**FINAL_COUNTS, "done_reason": done_reason}
    if operation == "chat":
        return httpx2.Response(200, json={**CHAT_RESPONSE, "done_reason": done_reason})
    if operation == "generate":
        return httpx2.Response(200, json={**GENERATE_RESPONSE, "done_reason": done_reason})
    if operation == "stream_chat":
        return ndjson([chat_line("The"), chat_line(" sky"), chat_line("", done=True, **final)])
    if operation == "stream_generate":
        return ndjson([gen_line("The"), gen_line(" sky"), gen_line("", done=True, **final)])
    return httpx2.Response(200, json=EMBED_RESPONSE)


def _inputs(operation: str) -> Any:
    if operation.endswith("chat"):
        return HI
    return ["a", "b"] if operation == "embed" else "Why?"


def test_table_covers_exactly_the_documented_values() -> None:
    """The plugin's table names every documented done_reason, and no others."""
    table = ipfs_accel_ollama._protocol.FINISH_REASON_TABLE
    assert dict(table) == dict(DOCUMENTED_DONE_REASONS)


@pytest.mark.parametrize(("native", "expected"), DOCUMENTED_DONE_REASONS)
@pytest.mark.parametrize("operation", ["chat", "generate"])
def test_done_reason_normalized(operation: str, native: str, expected: str) -> None:
    """A done_reason is in the vocabulary as finish_reason; the API's own is kept beside it."""
    b = backend(Recorder(_answer(operation, native)))
    r = getattr(b, operation)(_inputs(operation), model="llama3.2", endpoint_id=endpoint(b))
    assert (r.finish_reason, r.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), DOCUMENTED_DONE_REASONS)
@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_stream_last_chunk_carries_both(operation: str, native: str, expected: str) -> None:
    """The stream's last chunk (the done line) carries the normalized and the native reason."""
    b = backend(Recorder(_answer(operation, native)))
    chunks = list(getattr(b, operation)(_inputs(operation), model="gemma4",
                                        endpoint_id=endpoint(b)))
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == (expected, native)
    assert all(c.finish_reason is None for c in chunks[:-1])


@pytest.mark.parametrize("operation", ["chat", "generate", "stream_chat", "stream_generate"])
def test_unknown_done_reason_is_other_with_native_kept(operation: str) -> None:
    """A done_reason the docs do not show is "other", never lost; none stays None."""
    b = backend(Recorder(_answer(operation, "connection_closed")))
    out = getattr(b, operation)(_inputs(operation), model="m", endpoint_id=endpoint(b))
    last = list(out)[-1] if operation.startswith("stream_") else out
    assert (last.finish_reason, last.native_finish_reason) == ("other", "connection_closed")
    b = backend(Recorder(_answer(operation, None)))
    out = getattr(b, operation)(_inputs(operation), model="m", endpoint_id=endpoint(b))
    last = list(out)[-1] if operation.startswith("stream_") else out
    assert (last.finish_reason, last.native_finish_reason) == (None, None)


def test_length_with_tool_calls_stays_length() -> None:
    """Only a turn that stopped is a tool call; one cut short by num_predict is "length"."""
    answer = {**CHAT_RESPONSE, "done_reason": "length", "message": {
        "role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}}
    b = backend(Recorder(httpx2.Response(200, json=answer)))
    r = b.chat(HI, model="m", endpoint_id=endpoint(b))
    assert (r.finish_reason, r.native_finish_reason) == ("length", "length")


OPERATIONS = ["chat", "generate", "stream_chat", "stream_generate", "embed"]


def _sent(operation: str, *, settings: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    rec = Recorder(_answer(operation))
    b = backend(rec)
    out = getattr(b, operation)(_inputs(operation), endpoint_id=endpoint(b, **(settings or {})),
                                **kwargs)
    if operation.startswith("stream_"):
        list(out)
    return rec.body()["model"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_model_named_by_the_call_is_sent_as_given(operation: str) -> None:
    """A call's model= is sent exactly as given (tag included), for every operation."""
    assert _sent(operation, model="llama3.2:3b-instruct-q4_K_M") == "llama3.2:3b-instruct-q4_K_M"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_model_named_by_the_endpoint_is_sent_as_given(operation: str) -> None:
    """An endpoint's model setting is sent for every operation when the call names none."""
    assert _sent(operation, settings={"model": "gemma4"}) == "gemma4"
    assert _sent(operation, settings={"model": "gemma4"}, model="all-minilm") == "all-minilm"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_default_model(operation: str) -> None:
    """Ollama serves whatever was pulled: no default, so a call naming none fails unsent."""
    assert ipfs_accel_ollama.backend_info().default_model is None
    assert dict(ipfs_accel_ollama.backend_info().default_models) == {}
    rec = Recorder(_answer(operation))
    b = backend(rec)
    with pytest.raises(ConfigurationError):
        out = getattr(b, operation)(_inputs(operation), endpoint_id=endpoint(b))
        if operation.startswith("stream_"):
            list(out)
    assert rec.requests == []

"""The claude plugin's finish reasons in the core's vocabulary, and the model it sends."""

from __future__ import annotations

from typing import Any

import ipfs_accel_claude
import pytest
from _claude_fixtures import json_response, make_backend, message, sse_response, stream_events
from ipfs_accel import FINISH_REASONS
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hello"}]

# every stop_reason of the spec's StopReason and BetaStopReason, and what it becomes
SPEC_STOP_REASONS = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"),
    ("refusal", "content_filter"),
    ("pause_turn", "other"),
    ("compaction", "other"),
]

OPERATIONS: list[tuple[str, Any]] = [
    ("chat", HI),
    ("generate", "Hello"),
    ("stream_chat", HI),
    ("stream_generate", "Hello"),
]


def test_table_covers_exactly_the_spec() -> None:
    """The plugin's table names every spec stop_reason this test expects, and no others."""
    assert dict(ipfs_accel_claude._response.FINISH_REASON_TABLE) == dict(SPEC_STOP_REASONS)


@pytest.mark.parametrize(("native", "expected"), SPEC_STOP_REASONS)
def test_stop_reason_normalized(native: str, expected: str) -> None:
    """A Message's stop_reason becomes the vocabulary's value; the API's own is kept."""
    backend, eid = make_backend(Recorder(json_response(200, message(stop_reason=native))))
    result = backend.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), SPEC_STOP_REASONS)
def test_stream_last_chunk_carries_both(native: str, expected: str) -> None:
    """The stream's last chunk carries the normalized and the native stop reason."""
    rec = Recorder(sse_response(stream_events("Hi", stop_reason=native)))
    backend, eid = make_backend(rec)
    last = list(backend.stream_chat(HI, endpoint_id=eid))[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == (expected, native)


def test_unknown_stop_reason_is_other_with_native_kept() -> None:
    """A stop_reason the spec does not list is "other", unary and streamed, never lost."""
    backend, eid = make_backend(Recorder(json_response(200, message(stop_reason="nap_time"))))
    result = backend.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == ("other", "nap_time")
    backend, eid = make_backend(Recorder(sse_response(stream_events("x", stop_reason="nap_time"))))
    last = list(backend.stream_chat(HI, endpoint_id=eid))[-1]
    assert (last.finish_reason, last.native_finish_reason) == ("other", "nap_time")
    assert last.finish_reason in FINISH_REASONS


def _answer(operation: str) -> Recorder:
    if operation.startswith("stream_"):
        return Recorder(sse_response(stream_events("ok")))
    return Recorder(json_response(200, message("ok")))


def _run(backend: Any, operation: str, inputs: Any, eid: str, **kwargs: Any) -> None:
    out = getattr(backend, operation)(inputs, endpoint_id=eid, **kwargs)
    if operation.startswith("stream_"):
        list(out)


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_named_model_sent_as_given(operation: str, inputs: Any) -> None:
    """A model named by the call, or by the endpoint, is the model sent, for every operation."""
    rec = _answer(operation)
    backend, eid = make_backend(rec)
    _run(backend, operation, inputs, eid, model="claude-haiku-4-5")
    assert rec.body()["model"] == "claude-haiku-4-5"
    rec = _answer(operation)
    backend, eid = make_backend(rec, model="my-proxy-alias")
    _run(backend, operation, inputs, eid)
    assert rec.body()["model"] == "my-proxy-alias"


@pytest.mark.parametrize(("operation", "inputs"), OPERATIONS)
def test_default_model_when_none_named(operation: str, inputs: Any) -> None:
    """With no model named, every operation sends the backend's default model."""
    rec = _answer(operation)
    backend, eid = make_backend(rec)
    _run(backend, operation, inputs, eid)
    assert rec.body()["model"] == "claude-sonnet-4-6"

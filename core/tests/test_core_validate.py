"""The result guard: every parsed result, chunk and usage has the declared types, for any plugin."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ipfs_accel import (
    Call,
    ChatResult,
    EmbedResult,
    InvokeResult,
    Registry,
    ResponseError,
    StreamChunk,
    ToolCall,
    Usage,
)
from ipfs_accel._validate import check_chunk, check_result, check_usage

MSG = [{"role": "user", "content": "hi"}]
CHAT = Call(operation="chat", request_id="r-1")
FAST = {"initial_retry_delay": 0.001, "max_retry_delay": 0.01}

# values of every JSON type but the one a field declares
NOT_STR = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
NOT_NUMBER = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.lists(st.integers()),
                       st.sampled_from([math.nan, math.inf, -math.inf, 10**400]))
NUMBER = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**9), 10**9))
COUNT = st.integers(0, 10**12)


def _raises(fn: Callable[[], object], *words: str) -> ResponseError:
    with pytest.raises(ResponseError) as info:
        fn()
    for word in words:
        assert word in info.value.message, (word, info.value.message)
    assert not info.value.retryable
    return info.value


@given(
    text=st.text(), reason=st.none() | st.text(), model=st.none() | st.text(),
    calls=st.none() | st.lists(st.builds(
        lambda i, n, a: ToolCall.of(id=i, name=n, arguments=a), st.text(max_size=3),
        st.text(max_size=3), st.dictionaries(st.text(max_size=3), st.text(max_size=3)))),
    counts=st.tuples(COUNT, COUNT, COUNT, COUNT),
)
def test_well_typed_chat_results_pass(text, reason, model, calls, counts):
    """A ChatResult whose fields have their declared types passes unchanged."""
    i, o, r, w = counts
    usage = Usage(input_tokens=i, output_tokens=o, cache_read_tokens=r, cache_write_tokens=w)
    result = ChatResult(text=text, finish_reason=reason, model=model, tool_calls=calls, usage=usage)
    check_result(result, CHAT, "b", "e")
    assert (result.text, result.finish_reason, result.model) == (text, reason, model)
    assert all(c.id for c in result.tool_calls or ())  # a call the API gave no ID gets one


def test_tool_calls_must_be_tool_call_values():
    """A plugin that puts its API's dicts in tool_calls is told what the core expects."""
    result = ChatResult(text="", tool_calls=[{"id": "x"}])  # type: ignore[list-item]
    _raises(lambda: check_result(result, CHAT, "b", "e"),
            "tool_calls[0] of type dict, expected ToolCall")


@given(field=st.sampled_from(["text", "finish_reason", "model", "server_request_id"]),
       value=NOT_STR)
def test_wrong_typed_chat_field_names_field_and_backend(field, value):
    """A chat field of the wrong type is a ResponseError naming the backend and the field."""
    result = ChatResult(text="ok")
    setattr(result, field, value)
    err = _raises(lambda: check_result(result, CHAT, "openai", "e-1"),
                  "openai returned", field, type(value).__name__, "expected a string")
    assert (err.backend, err.endpoint_id, err.request_id) == ("openai", "e-1", "r-1")


def test_error_message_reads_as_documented():
    """The message says which backend sent which field of which type, and what was expected."""
    result = ChatResult(text="ok", finish_reason=3)  # type: ignore[arg-type]
    err = _raises(lambda: check_result(result, CHAT, "openai", "e"))
    assert err.message == "openai returned finish_reason of type int, expected a string"


@given(value=st.one_of(st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                       st.text(min_size=1), st.integers()))
def test_tool_calls_must_be_a_list(value):
    """tool_calls is a list or None; a dict or a string is a ResponseError naming it."""
    result = ChatResult(text="", tool_calls=value)
    _raises(lambda: check_result(result, CHAT, "b", "e"), "tool_calls")


@given(rows=st.lists(st.lists(NUMBER, max_size=8), max_size=6))
def test_well_typed_vectors_pass_as_floats(rows):
    """One list of finite numbers per input passes; ints come back as floats of the same value."""
    call = Call(operation="embed", inputs=["x"] * len(rows))
    result = EmbedResult(vectors=[list(r) for r in rows])
    check_result(result, call, "b", "e")
    assert result.vectors == rows
    assert all(type(x) is float for v in result.vectors for x in v)


@given(rows=st.lists(st.lists(NUMBER, min_size=1, max_size=6), min_size=1, max_size=5),
       data=st.data(), bad=NOT_NUMBER)
def test_a_value_that_is_not_a_finite_number_is_named_by_position(rows, data, bad):
    """null, a string, a bool, NaN, an infinity or a huge int inside a vector is named by position."""
    i = data.draw(st.integers(0, len(rows) - 1))
    j = data.draw(st.integers(0, len(rows[i]) - 1))
    rows[i][j] = bad
    call = Call(operation="embed", inputs=["x"] * len(rows))
    _raises(lambda: check_result(EmbedResult(vectors=rows), call, "gemini", "e"),
            "gemini returned", f"vectors[{i}][{j}]")


@given(rows=st.lists(st.lists(NUMBER, max_size=3), max_size=6), inputs=st.integers(0, 6))
def test_vector_count_must_equal_input_count(rows, inputs):
    """Fewer or more vectors than inputs is a ResponseError that gives both counts."""
    call = Call(operation="embed", inputs=["x"] * inputs)
    result = EmbedResult(vectors=rows)
    if len(rows) == inputs:
        check_result(result, call, "b", "e")
    else:
        _raises(lambda: check_result(result, call, "ollama", "e"),
                f"ollama returned {len(rows)} vectors for {inputs} inputs")


def test_a_vector_that_is_not_a_list_is_named():
    """A row that is an object or null (not a list of numbers) is named by its index."""
    call = Call(operation="embed", inputs=["a", "b"])
    _raises(lambda: check_result(EmbedResult(vectors=[[1.0], None]), call, "b", "e"),  # type: ignore[list-item]
            "vectors[1] of type null")
    _raises(lambda: check_result(EmbedResult(vectors={"a": 1}), call, "b", "e"),  # type: ignore[arg-type]
            "vectors of type dict")


@given(field=st.sampled_from(["input_tokens", "output_tokens", "cache_read_tokens",
                              "cache_write_tokens"]),
       value=st.one_of(st.integers(max_value=-1), st.floats(allow_nan=False), st.booleans(),
                       st.text(max_size=2)))
def test_usage_counts_are_non_negative_ints(field, value):
    """A negative, fractional, bool or string token count is a ResponseError naming it."""
    usage = Usage()
    setattr(usage, field, value)
    _raises(lambda: check_usage(usage, CHAT, "groq", "e"), "groq returned", f"usage.{field}")
    _raises(lambda: check_result(InvokeResult(data={}, usage=usage), CHAT, "groq", "e"),
            f"usage.{field}")


def test_usage_none_passes():
    """No usage reported is no problem."""
    check_usage(None, CHAT, "b", "e")


@given(delta=st.text(), reason=st.none() | st.text())
def test_well_typed_chunks_pass(delta, reason):
    """A chunk with a string delta and a string-or-None finish reason passes."""
    check_chunk(StreamChunk(delta=delta, finish_reason=reason, usage=Usage(input_tokens=1)),
                CHAT, "b", "e")


@given(field=st.sampled_from(["delta", "finish_reason", "server_request_id"]), value=NOT_STR)
def test_wrong_typed_chunk_field_is_named(field, value):
    """A chunk field of the wrong type is a ResponseError naming it, with the server's ID kept."""
    chunk = StreamChunk()
    setattr(chunk, field, value)
    err = _raises(lambda: check_chunk(chunk, CHAT, "ollama", "e", "srv-1"), "ollama returned", field)
    assert err.server_request_id == "srv-1"


def test_chunk_usage_is_checked():
    """A chunk carrying a usage with a negative count is refused."""
    chunk = StreamChunk(usage=Usage(input_tokens=-1))
    _raises(lambda: check_chunk(chunk, CHAT, "b", "e"), "usage.input_tokens of -1")


# -- through the engine, with the test plugin that passes server values as they come -------


def _backend(handler: Callable[[httpx2.Request], httpx2.Response]) -> ipfs_accel.Backend:
    registry = Registry(
        plugins=[_echo_plugin], entry_points=False, transport=httpx2.MockTransport(handler)
    )
    return registry.get("echo", **FAST)


def _answer(body: Any, seen: list[httpx2.Request] | None = None,
            sse: bool = False) -> Callable[[httpx2.Request], httpx2.Response]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        if sse:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                   content=body.encode())
        return httpx2.Response(200, json=body, headers={"x-request-id": "srv-7"})

    return handler


def _chat_body(**choice: Any) -> dict[str, Any]:
    return {"model": "m", "choices": [{"message": {"content": "hi"}, **choice}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


def test_engine_refuses_a_wrong_typed_field_without_retrying():
    """A third-party plugin's wrong-typed finish_reason fails the call once, counted as failed."""
    seen: list[httpx2.Request] = []
    b = _backend(_answer(_chat_body(finish_reason={"why": "stop"}), seen))
    err = _raises(lambda: b.chat(MSG, request_id="q-1"),
                  "echo returned finish_reason of type dict")
    assert (err.request_id, err.server_request_id) == ("q-1", "srv-7")
    assert len(seen) == 1
    stats = b.get_stats()
    assert (stats.failed_requests, stats.input_tokens, stats.total_tokens) == (1, 0, 0)


def test_engine_refuses_negative_usage_and_stats_stay_non_negative():
    """A negative token count from parse_usage fails the call; nothing is added to the stats."""
    body = _chat_body(finish_reason="stop")
    body["usage"] = {"prompt_tokens": -50, "completion_tokens": 1}
    b = _backend(_answer(body))
    _raises(lambda: b.chat(MSG), "usage.input_tokens of -50")
    stats = b.get_stats()
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (0, 0, 0)


def test_engine_refuses_short_embeddings():
    """Two vectors for three inputs is a ResponseError, never a misaligned result."""
    body = {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0]}]}
    b = _backend(_answer(body))
    _raises(lambda: b.embed(["alpha", "beta", "gamma"]), "2 vectors for 3 inputs")


def test_engine_refuses_null_inside_a_vector():
    """A null inside a vector is named by its position."""
    body = {"data": [{"index": 0, "embedding": [1.0, None]}]}
    _raises(lambda: _backend(_answer(body)).embed(["alpha"]), "vectors[0][1] of type null")


@pytest.mark.asyncio
async def test_engine_async_path_is_guarded_too():
    """achat runs the same guard."""
    b = _backend(_answer(_chat_body(finish_reason=7)))
    with pytest.raises(ResponseError, match="finish_reason of type int"):
        await b.achat(MSG)


def _sse(*events: Any) -> str:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_engine_refuses_a_wrong_typed_stream_chunk():
    """A stream event whose finish_reason is a number ends the stream with a ResponseError."""
    text = _sse({"choices": [{"delta": {"content": "he"}}]},
                {"choices": [{"delta": {"content": "y"}, "finish_reason": 5}]})
    b = _backend(_answer(text, sse=True))
    with pytest.raises(ResponseError, match="echo returned finish_reason of type int"):
        list(b.stream_chat(MSG))


def test_engine_refuses_negative_usage_in_a_stream():
    """A usage event with a negative count fails the stream; the stats stay non-negative."""
    text = _sse({"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]},
                {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": -9}})
    b = _backend(_answer(text, sse=True))
    with pytest.raises(ResponseError, match=r"usage\.output_tokens of -9"):
        list(b.stream_chat(MSG))
    stats = b.get_stats()
    assert stats.output_tokens >= 0 and stats.total_tokens >= 0

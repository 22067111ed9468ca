"""Answers the openai plugin must refuse (short or misplaced embeddings, wrong-typed fields)
and what it skips (unknown fields), with raw carrying the body."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _openai_fixtures import CHAT, COMPLETION, EMBEDDINGS, Server, backend, chunk, sse, stream_response
from ipfs_accel import ResponseError

HI = [{"role": "user", "content": "Hi"}]


def _embeddings(*indexes: int) -> dict[str, Any]:
    return {**EMBEDDINGS,
            "data": [{"object": "embedding", "embedding": [float(i), 0.5], "index": i}
                     for i in indexes]}


def test_shuffled_embeddings_are_put_back_in_input_order() -> None:
    """Rows arriving as index 2, 0, 1 give the vectors of inputs 0, 1, 2 in that order."""
    b, eid = backend(Server(httpx2.Response(200, json=_embeddings(2, 0, 1))))
    result = b.embed(["alpha", "beta", "gamma"], endpoint_id=eid)
    assert result.vectors == [[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]]


@pytest.mark.parametrize("indexes", [(0, 1), (), (0, 0, 1), (0, 1, 3)])
def test_embeddings_that_do_not_match_the_inputs_raise(indexes: tuple[int, ...]) -> None:
    """Fewer rows than inputs, none, or a repeated or out-of-range index is a ResponseError,
    tried once: never a result where 'alpha' gets another input's vector."""
    server = Server(httpx2.Response(200, json=_embeddings(*indexes)))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match="data") as info:
        b.embed(["alpha", "beta", "gamma"], endpoint_id=eid)
    assert info.value.backend == "openai"
    assert len(server.requests) == 1
    assert b.get_stats(eid).failed_requests == 1


def test_null_inside_a_vector_is_named() -> None:
    """A null inside an embedding is a ResponseError naming its position."""
    body = copy.deepcopy(EMBEDDINGS)
    body["data"][0]["embedding"] = [0.5, None]
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"openai sent a embed response .*got `null` - at "
                                            r"`\$\.data\[0\]\.embedding\[1\]`"):
        b.embed(["a", "b"], endpoint_id=eid)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("finish_reason", 1, r"Expected `str \| null`, got `int` - at `\$\.choices\[0\]\.finish_reason`"),
        ("finish_reason", {"type": "stop"}, r"got `object` - at `\$\.choices\[0\]\.finish_reason`"),
        ("model", 4, r"got `int` - at `\$\.model`"),
        ("tool_calls", {"id": "x"}, r"got `object` - at `\$\.choices\[0\]\.message\.tool_calls`"),
    ],
)
def test_wrong_typed_chat_fields_raise_naming_the_field(field: str, value: Any, words: str) -> None:
    """finish_reason, model or tool_calls of the wrong type is a ResponseError naming it."""
    body = copy.deepcopy(CHAT)
    if field == "model":
        body["model"] = value
    elif field == "tool_calls":
        body["choices"][0]["message"]["tool_calls"] = value
    else:
        body["choices"][0][field] = value
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match="openai sent a chat response .*" + words):
        b.chat(HI, endpoint_id=eid)


def test_negative_token_count_raises_and_stats_stay_at_zero() -> None:
    """A negative prompt_tokens is a ResponseError; nothing is added to the stats."""
    body = copy.deepcopy(CHAT)
    body["usage"]["prompt_tokens"] = -19
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"usage\.input_tokens of -19"):
        b.chat(HI, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (0, 0, 0)


def test_wrong_typed_finish_reason_in_a_stream_raises() -> None:
    """A streamed chunk whose finish_reason is a number ends the stream with a ResponseError."""
    body = sse(chunk("Hel"), {**chunk("lo"), "choices": [
        {"index": 0, "delta": {"content": "lo"}, "finish_reason": 0}]})
    b, eid = backend(Server(stream_response(body)))
    with pytest.raises(ResponseError, match=r"openai sent a stream event .*got `int` - at "
                                            r"`\$\.choices\[0\]\.finish_reason`"):
        list(b.stream_chat(HI, endpoint_id=eid))


def test_chat_skips_unknown_fields_and_raw_carries_the_body() -> None:
    """Fields the plugin does not read (refusal, annotations, service_tier, new ones) are
    skipped, whatever their type; raw is the whole body."""
    body = {**copy.deepcopy(CHAT), "brand_new": {"nested": [1, "x"]}, "service_tier": 3}
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    result = b.chat(HI, endpoint_id=eid)
    assert result.text == "Hello! How can I assist you today?"
    assert result.raw == body


def test_completion_raw_carries_the_body() -> None:
    """generate's raw is the whole text_completion body."""
    b, eid = backend(Server(httpx2.Response(200, json=COMPLETION)))
    assert b.generate("x", endpoint_id=eid).raw == COMPLETION


def test_embeddings_raw_is_the_body_without_the_vectors() -> None:
    """EmbedResult.raw keeps object, model and usage as sent; the vectors are in vectors only."""
    b, eid = backend(Server(httpx2.Response(200, json=EMBEDDINGS)))
    result = b.embed(["a", "b"], endpoint_id=eid)
    assert result.raw == {"object": "list", "model": "text-embedding-3-small",
                          "usage": {"prompt_tokens": 8, "total_tokens": 8}}


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("data", 1, "index"), 0.5, r"\$\.data\[1\]\.index"),
        (("usage", "prompt_tokens"), "8", r"\$\.usage\.prompt_tokens"),
        (("data", 0), [0.5, 0.25], r"\$\.data\[0\]"),
    ],
)
def test_wrong_typed_embeddings_fields_raise_naming_the_path(
    path: tuple[Any, ...], value: Any, field: str
) -> None:
    """An embeddings body with a wrong-typed index, usage count or row is a ResponseError
    naming the backend and the path, tried once."""
    body: Any = copy.deepcopy(EMBEDDINGS)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match=f"openai sent a embed response .* - at `{field}`"):
        b.embed(["a", "b"], endpoint_id=eid)
    assert len(server.requests) == 1


def test_stream_chunks_skip_unknown_fields_and_raw_carries_each_chunk() -> None:
    """A chunk's unknown fields (obfuscation, service_tier) are skipped; raw is the chunk."""
    first = chunk("Hel", obfuscation="abc", service_tier="default")
    b, eid = backend(Server(stream_response(sse(first, chunk("lo", "stop")))))
    chunks = list(b.stream_chat(HI, endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == "Hello" and chunks[0].raw == first


def test_wrong_typed_usage_in_the_last_chunk_is_named() -> None:
    """The include_usage chunk with a wrong-typed count ends the stream naming the path."""
    body = sse(chunk("Hi", "stop"), chunk(usage={"prompt_tokens": 9, "completion_tokens": None,
                                                 "prompt_tokens_details": []}))
    b, eid = backend(Server(stream_response(body)))
    with pytest.raises(ResponseError, match=r"openai sent a stream event .*"
                                            r"`\$\.usage\.prompt_tokens_details`"):
        list(b.stream_chat(HI, endpoint_id=eid))

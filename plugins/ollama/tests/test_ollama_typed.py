"""Typed decoding: answers and NDJSON lines decode into the plugin's Structs, a field of the
wrong type is a ResponseError naming backend and field, unknown fields are skipped, and
``raw`` still carries what the server sent."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import ipfs_accel_ollama
import pytest
from _ollama_fixtures import (
    CHAT_RESPONSE,
    EMBED_RESPONSE,
    FINAL_COUNTS,
    GENERATE_RESPONSE,
    TAGS_RESPONSE,
    backend,
    chat_line,
    endpoint,
    gen_line,
    ndjson,
)
from ipfs_accel import ResponseError
from ipfs_accel.testing import Recorder
from ipfs_accel_ollama._answers import ChatAnswer, ChatLine, Tags

HI = [{"role": "user", "content": "why is the sky blue?"}]
EXTRAS: dict[str, Any] = {
    "context": {"nested": [1, 2, {"deep": None}]},
    "logprobs": [{"token": "x", "logprob": -0.1}],
    "created_at": 1700000000,  # not read: a different type is no concern of the plugin
    "a_field_from_the_future": True,
}


@pytest.mark.parametrize(("body", "field"), [
    ({**CHAT_RESPONSE, "done_reason": 7}, "$.done_reason"),
    ({**CHAT_RESPONSE, "model": {"name": "llama3.2"}}, "$.model"),
    ({**CHAT_RESPONSE, "message": {"role": "assistant", "content": 5}}, "$.message.content"),
    ({**CHAT_RESPONSE, "message": "hello"}, "$.message"),
    ({**CHAT_RESPONSE, "message": {"content": "", "tool_calls": {"name": "f"}}},
     "$.message.tool_calls"),
    ({**CHAT_RESPONSE, "message": {"content": "", "thinking": 1}}, "$.message.thinking"),
    ({**CHAT_RESPONSE, "eval_count": -3}, "$.eval_count"),
    ({**CHAT_RESPONSE, "prompt_eval_count": "26"}, "$.prompt_eval_count"),
    ({**CHAT_RESPONSE, "eval_duration": "fast"}, "$.eval_duration"),
])
def test_a_chat_field_of_the_wrong_type_is_named(body: dict[str, Any], field: str) -> None:
    """A wrong-typed or negative field of a chat answer is a ResponseError naming backend and
    field, after one attempt (the same server would send the same answer)."""
    rec = Recorder(httpx2.Response(200, json=body))
    b = backend(rec)
    with pytest.raises(ResponseError, match="ollama sent a chat response") as info:
        b.chat(HI, model="llama3.2", endpoint_id=endpoint(b))
    assert f"`{field}`" in str(info.value)
    assert info.value.backend == "ollama"
    assert info.value.attempts == 1 and len(rec.requests) == 1


@pytest.mark.parametrize(("operation", "body", "field"), [
    ("generate", {**GENERATE_RESPONSE, "response": ["a"]}, "$.response"),
    ("generate", {**GENERATE_RESPONSE, "done_reason": False}, "$.done_reason"),
    ("generate", {**GENERATE_RESPONSE, "thinking": ["a"]}, "$.thinking"),
    ("embed", {**EMBED_RESPONSE, "model": 3}, "$.model"),
    ("embed", {**EMBED_RESPONSE, "prompt_eval_count": -1}, "$.prompt_eval_count"),
    ("embed", {"model": "all-minilm"}, "embeddings"),
    ("list_models", {"models": {"gemma4": {}}}, "$.models"),
    ("list_models", {"models": ["gemma4"]}, "$.models[0]"),
])
def test_other_answers_of_the_wrong_type_are_named(
    operation: str, body: dict[str, Any], field: str
) -> None:
    """generate, embed and list_models answers are checked by type the same way."""
    b = backend(Recorder(httpx2.Response(200, json=body)))
    eid = endpoint(b)
    with pytest.raises(ResponseError, match=rf"ollama sent an? {operation} response") as info:
        if operation == "generate":
            b.generate("Why?", model="m", endpoint_id=eid)
        elif operation == "embed":
            b.embed(["a", "b"], model="m", endpoint_id=eid)
        else:
            b.invoke("list_models", endpoint_id=eid)
    assert field in str(info.value)


def test_a_body_that_is_not_an_object_does_not_fit() -> None:
    """A JSON list where an answer object belongs is refused, naming the expected shape."""
    b = backend(Recorder(httpx2.Response(200, json=[CHAT_RESPONSE])))
    with pytest.raises(ResponseError, match="does not fit the API: Expected `object`"):
        b.chat(HI, model="m", endpoint_id=endpoint(b))


def test_a_stream_line_of_the_wrong_type_is_named() -> None:
    """A chat line whose content is not a string ends the stream with a ResponseError naming
    the field; the text before it was yielded, so it is not retried."""
    rec = Recorder(ndjson([
        chat_line("The"), {**chat_line(""), "message": {"content": 5}},
        chat_line("", done=True, **FINAL_COUNTS),
    ]))
    b = backend(rec)
    seen: list[str] = []
    with pytest.raises(ResponseError, match=r"ollama sent a stream event") as info:
        for chunk in b.stream_chat(HI, model="gemma4", endpoint_id=endpoint(b)):
            seen.append(chunk.delta)
    assert "`$.message.content`" in str(info.value)
    assert info.value.backend == "ollama"
    assert seen == ["The"]
    assert len(rec.requests) == 1
    assert b.get_stats().failed_requests == 1


@pytest.mark.asyncio
async def test_a_final_line_with_a_negative_count_is_named() -> None:
    """A done line with a negative eval_count is a ResponseError naming it (async stream),
    so the stats never count it."""
    rec = Recorder(ndjson([gen_line("Hi"),
                           gen_line("!", done=True, **{**FINAL_COUNTS, "eval_count": -1})]))
    b = backend(rec)
    with pytest.raises(ResponseError, match=r"stream event.*`\$\.eval_count`"):
        async for _ in b.astream_generate("Q", model="gemma4", endpoint_id=endpoint(b)):
            pass
    assert b.get_stats().output_tokens == 0
    await b.aclose()


def test_unknown_fields_are_skipped_and_raw_is_the_body() -> None:
    """Fields the plugin does not read, whatever their type, are skipped; raw is the body."""
    body = {**CHAT_RESPONSE, **EXTRAS,
            "message": {**CHAT_RESPONSE["message"], "images": 1, "role": 2}}
    b = backend(Recorder(httpx2.Response(200, json=body),
                         httpx2.Response(200, json={**GENERATE_RESPONSE, **EXTRAS})))
    eid = endpoint(b)
    r = b.chat(HI, model="llama3.2", endpoint_id=eid)
    assert r.text == "Hello! How are you today?"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (26, 298)
    assert r.raw == body
    g = b.generate("Why?", model="llama3.2", endpoint_id=eid)
    assert g.raw == {**GENERATE_RESPONSE, **EXTRAS}


def test_embed_raw_has_every_field_but_the_vectors() -> None:
    """The vectors are in vectors only; raw keeps every other field, unknown ones too."""
    body = {**EMBED_RESPONSE, **EXTRAS}
    b = backend(Recorder(httpx2.Response(200, json=body)))
    r = b.embed(["a", "b"], model="all-minilm", endpoint_id=endpoint(b))
    assert r.vectors == EMBED_RESPONSE["embeddings"]
    assert r.raw == {k: v for k, v in body.items() if k != "embeddings"}
    assert r.usage.details == {"total_duration": 14143917, "load_duration": 1019500}


def test_stream_lines_skip_unknown_fields_and_carry_raw() -> None:
    """Stream lines with fields the plugin does not read parse; each chunk's raw is its line."""
    lines = [chat_line("The", **EXTRAS), chat_line(" end", done=True, **FINAL_COUNTS, **EXTRAS)]
    b = backend(Recorder(ndjson(lines)))
    chunks = list(b.stream_chat(HI, model="gemma4", endpoint_id=endpoint(b)))
    assert [c.delta for c in chunks] == ["The", " end"]
    assert [c.raw for c in chunks] == [json.loads(json.dumps(x)) for x in lines]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 308


def test_tags_stay_the_objects_the_server_sent() -> None:
    """list_models gives the model summaries as dicts, unknown fields and all."""
    models = [{**TAGS_RESPONSE["models"][0], "remote_host": "https://ollama.com", "x": [1]}]
    b = backend(Recorder(httpx2.Response(200, json={"models": models, "extra": 1})))
    assert b.invoke("list_models", endpoint_id=endpoint(b)).data == models


def test_parse_usage_reads_the_structs() -> None:
    """The parse_usage hook reads the decoded Structs; a line without counts reports none."""
    usage = ipfs_accel_ollama.parse_usage(
        "chat", ChatAnswer(prompt_eval_count=3, eval_count=4, eval_duration=10.0))
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.details) == (3, 4,
                                                                        {"eval_duration": 10.0})
    assert ipfs_accel_ollama.parse_usage("stream_chat", ChatLine()) is None
    assert ipfs_accel_ollama.parse_usage("list_models", Tags()) is None
    assert ipfs_accel_ollama.parse_usage("stream_chat", None) is None

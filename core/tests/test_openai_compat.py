"""The shared OpenAI wire-format helper against the shapes the OpenAI spec gives."""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

import httpx2
import msgspec
import pytest
from ipfs_accel import (
    FINISH_REASONS,
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    Event,
    Exchange,
    Failure,
    Registry,
    Response,
    ResponseError,
    ServerError,
    StreamChunk,
    StreamFailure,
    Usage,
    hookimpl,
)
from ipfs_accel import openai_compat as oa
from ipfs_accel._wire import decode_json, decode_typed


def _response(data: object) -> Response:
    """A response whose body was decoded generically (an exchange that declared no type)."""
    return Response(status=200, headers={}, content=b"", data=data)


def _typed(body: object, type_: type[Any]) -> Response:
    """A response as the core hands it over when the exchange declares ``type_``."""
    content = msgspec.json.encode(body)
    return Response(status=200, headers={}, content=content, data=decode_typed(content, type_))


def test_usage_reads_cached_and_cache_write_tokens() -> None:
    """prompt_tokens_details.cached_tokens and .cache_write_tokens (CompletionUsage) are kept."""
    usage = oa.parse_usage(
        {
            "usage": {
                "prompt_tokens": 1117,
                "completion_tokens": 46,
                "total_tokens": 1163,
                "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 64},
            }
        }
    )
    assert usage == Usage(
        input_tokens=1117, output_tokens=46, cache_read_tokens=1024, cache_write_tokens=64
    )


def test_usage_null_in_stream_chunks_is_none() -> None:
    """Chunks before the last carry "usage": null under include_usage: no usage there."""
    assert oa.parse_usage({"choices": [], "usage": None}) is None


def test_embeddings_base64_decoded_as_float32() -> None:
    """encoding_format=base64 answers little-endian float32s in base64; they become floats."""
    values = [0.5, -1.25, 3.0]
    b64 = base64.b64encode(struct.pack("<3f", *values)).decode()
    body = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.1, 0.2]},
            {"object": "embedding", "index": 0, "embedding": b64},
        ],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    result = oa.parse_embeddings(_response(body))
    assert result.vectors == [values, [0.1, 0.2]]


def test_embeddings_bad_base64_raises() -> None:
    """A string that is not base64 is an unreadable body, not a vector of characters."""
    body = {"object": "list", "model": "m", "data": [{"index": 0, "embedding": "not b64!"}]}
    with pytest.raises(ValueError):  # the core reports it as a ResponseError
        oa.parse_embeddings(_response(body))


def _sse(data: str, event: str = "") -> Event:
    return Event(event=event, data=data, json=decode_json(data))


def test_chat_event_error_null_is_not_a_failure() -> None:
    """A chunk with "error": null is a chunk (the SDKs test the error's truth, not presence)."""
    chunk = oa.parse_chat_event(
        _sse('{"error": null, "choices": [{"index": 0, "delta": {"content": "Hi"},'
             ' "finish_reason": null}]}')
    )
    assert isinstance(chunk, StreamChunk) and chunk.delta == "Hi"


def test_chat_event_error_object_is_a_failure() -> None:
    """A chunk carrying an error object ends the stream as a failure."""
    out = oa.parse_chat_event(_sse('{"error": {"message": "boom", "type": "server_error"}}'))
    assert isinstance(out, StreamFailure)


def _rows(*indexes: object) -> dict[str, object]:
    return {"object": "list", "model": "m",
            "data": [{"index": i, "embedding": [float(n)]} for n, i in enumerate(indexes)]}


def test_embeddings_rows_are_placed_by_index() -> None:
    """Rows that arrive shuffled are put back where their index says."""
    result = oa.parse_embeddings(_response(_rows(2, 0, 1)), count=3)
    assert result.vectors == [[1.0], [2.0], [0.0]]


def test_embeddings_without_index_keep_their_position() -> None:
    """A row without an index stays where it came."""
    body = {"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}
    assert oa.parse_embeddings(_response(body)).vectors == [[1.0], [2.0]]


@pytest.mark.parametrize(
    ("body", "count", "words"),
    [
        (_rows(0, 1), 3, "2 embeddings in 'data' for 3 inputs"),
        (_rows(), 2, "0 embeddings in 'data' for 2 inputs"),
        (_rows(0, 0, 1), 3, "data[1].index 0 repeats"),
        (_rows(0, 3, 1), 3, "data[1].index 3 is out of range"),
        (_rows(0, -1), 2, "data[1].index -1 is out of range"),
    ],
)
def test_embeddings_that_cannot_be_placed_raise(body: object, count: int, words: str) -> None:
    """A short list, or a repeated or out-of-range index, raises."""
    with pytest.raises(ValueError, match=re.escape(words)):
        oa.parse_embeddings(_typed(body, oa.Embeddings), count=count)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_rows(0, "1"), "got `str` - at `$.data[1].index`"),
        (_rows(0, True), "got `bool` - at `$.data[1].index`"),
        ({"data": [{"index": 0, "embedding": [1.0]}, None]}, "got `null` - at `$.data[1]`"),
        ({"data": [{"index": 0, "embedding": None}]}, "got `null` - at `$.data[0].embedding`"),
        ({"data": [{"index": 0, "embedding": {"a": 1}}]},
         "got `object` - at `$.data[0].embedding`"),
        ({"data": [{"index": 0}]}, "missing required field `embedding` - at `$.data[0]`"),
    ],
)
def test_embeddings_rows_of_the_wrong_type_do_not_fit(body: object, words: str) -> None:
    """A row that is not an object, a non-int index or a vector that is neither a list nor
    base64 does not fit Embeddings: the error names the field and what was there, whether
    the core decoded the body or the parser fits a generic one."""
    with pytest.raises(msgspec.ValidationError, match=re.escape(words)):
        _typed(body, oa.Embeddings)
    with pytest.raises(ValueError, match=re.escape(words)):
        oa.parse_embeddings(_response(body))


# --- Through the core: the exchange declares the Structs, the core decodes into them ------


class _Compat:
    """A backend that is nothing but ``openai_compat``."""

    def __init__(self) -> None:
        self.sent: list[Exchange] = []

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="compat", default_base_url="http://compat.test",
                           default_model="m",
                           operations=frozenset({"chat", "generate", "embed", "stream_chat",
                                                 "stream_generate"}))

    @hookimpl
    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        exchange = oa.exchange(call, endpoint)
        self.sent.append(exchange)
        return exchange

    @hookimpl
    def parse_usage(self, operation: str, data: Any) -> Usage | None:
        return oa.parse_usage(data)

    @hookimpl
    def classify_error(self, failure: Failure) -> Classification:
        return oa.classify_error(failure)


def _compat(
    *answers: httpx2.Response, plugin: _Compat | None = None
) -> tuple[Any, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []
    queue = list(answers)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0)

    registry = Registry(plugins=[plugin or _Compat()], entry_points=False,
                        transport=httpx2.MockTransport(handler))
    return registry.get("compat", initial_retry_delay=0.001), seen


HI = [{"role": "user", "content": "Hi"}]
CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m-1",
        "system_fingerprint": "fp", "service_tier": {"not": "declared"},
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello", "refusal": None,
                                 "annotations": [{"type": "url_citation"}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                  "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}}}
CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m-1",
         "obfuscation": "xyz", "choices": [{"index": 0, "logprobs": None, "finish_reason": None,
                                             "delta": {"role": "assistant", "content": "He"}}]}
EMBEDDINGS = {"object": "list", "model": "e-1", "extra": [1, 2],
              "data": [{"object": "embedding", "index": 1, "embedding": [0.5]},
                       {"object": "embedding", "index": 0, "embedding": [0.25]}],
              "usage": {"prompt_tokens": 4, "total_tokens": 4}}


def _sse_response(*events: object) -> httpx2.Response:
    body = "".join(f"data: {msgspec.json.encode(e).decode()}\n\n" for e in events)
    return httpx2.Response(200, content=(body + "data: [DONE]\n\n").encode(),
                           headers={"content-type": "text/event-stream"})


def test_exchange_declares_the_structs() -> None:
    """Each route's exchange names the Struct its answer (or its stream's events) decode into."""
    plugin = _Compat()
    b, _ = _compat(httpx2.Response(200, json=CHAT), httpx2.Response(200, json={"choices": []}),
                   httpx2.Response(200, json=EMBEDDINGS), _sse_response(CHUNK), _sse_response(),
                   plugin=plugin)
    b.chat(HI)
    b.generate("p")
    b.embed(["a", "b"])
    list(b.stream_chat(HI))
    list(b.stream_generate("p"))
    assert [x.response_type if x.stream is None else x.event_type for x in plugin.sent] == [
        oa.ChatCompletion, oa.Completion, oa.Embeddings,
        {"": oa.ChatCompletionChunk}, {"": oa.Completion}]


def test_chat_skips_unknown_fields_and_raw_carries_the_body() -> None:
    """Fields the Struct does not declare are skipped; raw is the whole body as sent."""
    b, _ = _compat(httpx2.Response(200, json=CHAT))
    result = b.chat(HI)
    assert (result.text, result.finish_reason, result.model) == ("Hello", "stop", "m-1")
    assert result.native_finish_reason == "stop"
    assert result.usage == Usage(input_tokens=5, output_tokens=2, cache_read_tokens=3)
    assert result.raw == CHAT


def test_stream_chunks_skip_unknown_fields_and_raw_carries_each_chunk() -> None:
    """Each chunk's raw is that chunk, unknown fields included; the usage chunk is counted."""
    usage = {**CHUNK, "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    b, _ = _compat(_sse_response(CHUNK, usage))
    chunks = list(b.stream_chat(HI))
    assert chunks[0].delta == "He" and chunks[0].raw == CHUNK
    assert chunks[-1].done and chunks[-1].usage == Usage(input_tokens=2, output_tokens=1)


def test_embeddings_raw_is_the_body_without_the_vectors() -> None:
    """EmbedResult.raw keeps object, model and usage as sent, not the vectors (decoded once)."""
    b, _ = _compat(httpx2.Response(200, json=EMBEDDINGS))
    result = b.embed(["a", "b"])
    assert result.vectors == [[0.25], [0.5]]
    assert result.raw == {"object": "list", "model": "e-1",
                          "usage": {"prompt_tokens": 4, "total_tokens": 4}}
    assert result.usage == Usage(input_tokens=4)


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = msgspec.json.decode(msgspec.json.encode(body))  # a deep copy
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with(CHAT, ("choices", 0, "finish_reason"), 7), "$.choices[0].finish_reason"),
        (_with(CHAT, ("model",), 4), "$.model"),
        (_with(CHAT, ("choices", 0, "message", "content"), {"text": "x"}),
         "$.choices[0].message.content"),
        (_with(CHAT, ("choices", 0, "message", "tool_calls"), {"id": "x"}),
         "$.choices[0].message.tool_calls"),
        (_with(CHAT, ("usage", "prompt_tokens"), "5"), "$.usage.prompt_tokens"),
        (_with(CHAT, ("usage", "prompt_tokens_details", "cached_tokens"), 1.5),
         "$.usage.prompt_tokens_details.cached_tokens"),
    ],
)
def test_a_wrong_typed_chat_field_is_a_response_error_naming_it(
    body: dict[str, Any], field: str
) -> None:
    """A chat completion with a wrong-typed field is a ResponseError naming backend and path,
    tried once."""
    b, seen = _compat(httpx2.Response(200, json=body))
    with pytest.raises(ResponseError, match="compat sent a chat response") as info:
        b.chat(HI)
    assert f"at `{field}`" in str(info.value) and info.value.backend == "compat"
    assert len(seen) == 1


def test_a_wrong_typed_completion_field_is_a_response_error_naming_it() -> None:
    """A legacy completion whose text is not a string names $.choices[0].text."""
    body = {"model": "m", "choices": [{"text": ["x"], "finish_reason": "stop"}]}
    b, _ = _compat(httpx2.Response(200, json=body))
    with pytest.raises(ResponseError, match=r"compat sent a generate response.*\$\.choices\[0\]\.text"):
        b.generate("p")


@pytest.mark.parametrize(
    ("chunk", "field"),
    [
        (_with(CHUNK, ("choices", 0, "finish_reason"), 0), "$.choices[0].finish_reason"),
        (_with(CHUNK, ("choices", 0, "delta", "content"), 5), "$.choices[0].delta.content"),
        ({**CHUNK, "usage": {"prompt_tokens": [1]}}, "$.usage.prompt_tokens"),
    ],
)
@pytest.mark.asyncio
async def test_a_wrong_typed_chunk_field_ends_the_stream_naming_it(
    chunk: dict[str, Any], field: str
) -> None:
    """A chunk with a wrong-typed field ends the stream with a ResponseError naming the path."""
    b, _ = _compat(_sse_response(CHUNK, chunk))
    deltas = []
    with pytest.raises(ResponseError, match="compat sent a stream event") as info:
        async for c in b.astream_chat(HI):
            deltas.append(c.delta)
    assert f"at `{field}`" in str(info.value) and info.value.backend == "compat"
    assert deltas == ["He"]
    await b.aclose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with(EMBEDDINGS, ("data", 0, "embedding", 0), "0.5"), "$.data[0].embedding[0]"),
        (_with(EMBEDDINGS, ("data", 1, "index"), "0"), "$.data[1].index"),
        (_with(EMBEDDINGS, ("model",), ["e"]), "$.model"),
        (_with(EMBEDDINGS, ("data",), {"0": [0.5]}), "$.data"),
    ],
)
def test_a_wrong_typed_embeddings_field_is_a_response_error_naming_it(
    body: dict[str, Any], field: str
) -> None:
    """An embeddings body with a wrong-typed field is a ResponseError naming backend and path."""
    b, seen = _compat(httpx2.Response(200, json=body))
    with pytest.raises(ResponseError, match="compat sent a embed response") as info:
        b.embed(["a", "b"])
    assert f"at `{field}`" in str(info.value) and len(seen) == 1


def test_an_error_event_reaches_classification_generically() -> None:
    """`event: error` keeps its generic decode: a JSON string there is a failure, not a misfit."""
    body = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\nevent: error\ndata: "overloaded"\n\n'
    b, _ = _compat(httpx2.Response(200, content=body,
                                   headers={"content-type": "text/event-stream"}))
    with pytest.raises(ServerError, match="overloaded"):
        list(b.stream_chat(HI))


def test_usage_of_a_typed_body_keeps_groq_timings() -> None:
    """parse_usage reads the decoded Struct, Groq's *_time fields into details."""
    usage = oa.parse_usage(msgspec.json.decode(
        b'{"usage": {"prompt_tokens": 3, "completion_tokens": 1, "queue_time": 0.5,'
        b' "total_time": 1, "prompt_tokens_details": null}}', type=oa.ChatCompletion))
    assert usage == Usage(input_tokens=3, output_tokens=1,
                          details={"queue_time": 0.5, "total_time": 1.0})


def test_generic_usage_that_does_not_fit_is_no_usage() -> None:
    """A generic body's usage that cannot be read is None: the parse_usage hook never raises."""
    assert oa.parse_usage({"usage": {"prompt_tokens": {"n": 1}}}) is None


# --- finish_reason: one vocabulary, the value as sent beside it ----------------------------


def test_the_finish_reason_table_maps_into_the_vocabulary() -> None:
    """Every value the table names maps to one of FINISH_REASONS, OpenAI's own to themselves."""
    assert set(oa.FINISH_REASON_TABLE.values()) <= FINISH_REASONS
    for reason in ("stop", "length", "tool_calls", "content_filter"):
        assert oa.FINISH_REASON_TABLE[reason] == reason


FINISHES = [*oa.FINISH_REASON_TABLE.items(), ("EOS_TOKEN", "stop"), ("Length", "length"),
            ("something_new", "other"), ("other", "other")]


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_chat_finish_reason_is_normalized_and_native_kept(native: str, expected: str) -> None:
    """A chat completion's finish_reason is in the vocabulary; the value as sent is native."""
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": native}]}
    result = oa.parse_chat(_typed(body, oa.ChatCompletion))
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_completion_finish_reason_is_normalized_and_native_kept(native: str, expected: str) -> None:
    """A text completion's finish_reason is in the vocabulary; the value as sent is native."""
    result = oa.parse_completion(_response({"choices": [{"text": "x", "finish_reason": native}]}))
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_chunk_finish_reason_is_normalized_and_native_kept(native: str, expected: str) -> None:
    """Chat and completion stream chunks carry both fields the same way."""
    chat = oa.parse_chat_event(_sse(msgspec.json.encode(
        {"choices": [{"delta": {"content": ""}, "finish_reason": native}]}).decode()))
    text = oa.parse_completion_event(_sse(msgspec.json.encode(
        {"choices": [{"text": "", "finish_reason": native}]}).decode()))
    for chunk in (chat, text):
        assert isinstance(chunk, StreamChunk)
        assert (chunk.finish_reason, chunk.native_finish_reason) == (expected, native)


def test_no_finish_reason_stays_none() -> None:
    """A choice without finish_reason (a chunk mid-stream, a message cut short) gives None twice."""
    result = oa.parse_chat(_response({"choices": [{"message": {"content": "x"}}]}))
    chunk = oa.parse_chat_event(_sse(msgspec.json.encode(CHUNK).decode()))
    assert isinstance(chunk, StreamChunk)
    for out in (result, chunk):
        assert (out.finish_reason, out.native_finish_reason) == (None, None)


def test_a_stream_s_last_chunk_carries_both_finish_fields() -> None:
    """Through the core, the stream's final chunk has the normalized and the native value."""
    last = {**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "function_call"}]}
    b, _ = _compat(_sse_response(CHUNK, last))
    chunks = list(b.stream_chat(HI))
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == (
        "tool_calls", "function_call")

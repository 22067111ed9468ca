"""The brook plugin over httpx2's MockTransport: what it sends, and what it reads back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import ipfs_accel_brook
import pytest
from ipfs_accel import (
    ContextLengthError,
    Failure,
    QuotaExceededError,
    ResponseError,
    StreamInterruptedError,
)
from ipfs_accel.testing import FAST_RETRIES, Recorder, mock_backend

HI = [{"role": "user", "content": "Hi"}]
CHAT = {"id": "brk-1", "model": "brook-chat-1", "message": {"role": "assistant", "text": "Hello!"},
        "end": "END_OF_TURN", "meter": {"read": 5, "written": 2}}
EMBED = {"model": "brook-embed-1", "meter": {"read": 4},
         "embeddings": [{"index": 1, "values": [0.0, 1.0]}, {"index": 0, "values": [1.0, 0.0]}]}


def sse(*events: tuple[str, Any]) -> httpx2.Response:
    """A Brook stream: one SSE event per ``(name, data)``."""
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


STREAM = [("start", {"id": "brk-7", "meter": {"read": 5}}), ("text", {"text": "Hel"}),
          ("ping", {}), ("text", {"text": "lo"}),
          ("end", {"end": "MAX_LENGTH", "meter": {"written": 2}})]


def brook(*answers: Any) -> tuple[Any, str, Recorder]:
    rec = Recorder(*answers)
    backend = mock_backend(ipfs_accel_brook, rec)
    return backend, backend.create_endpoint(api_key="k-1", **FAST_RETRIES), rec


def test_chat_request_and_result() -> None:
    """A chat goes to /v2/chat in Brook's form; the reply, its end reason and usage come back."""
    backend, eid, rec = brook(httpx2.Response(200, json=CHAT))
    result = backend.chat(HI, endpoint_id=eid, request_id="rid-1")
    assert rec.last.url.path == "/v2/chat"
    assert rec.last.headers["authorization"] == "Key k-1"
    assert rec.last.headers["x-client-request-id"] == "rid-1"
    assert rec.body() == {"model": "brook-chat-1", "messages": [{"role": "user", "text": "Hi"}],
                          "allow_fallback": True}
    assert (result.text, result.model, result.request_id) == ("Hello!", "brook-chat-1", "rid-1")
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "END_OF_TURN")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 2)
    assert result.raw == CHAT


def test_common_parameters_under_brooks_names() -> None:
    """max_tokens, temperature, top_p and stop reach Brook under its names; others pass through."""
    backend, eid, rec = brook(httpx2.Response(200, json=CHAT))
    backend.chat(HI, endpoint_id=eid, max_tokens=9, temperature=0.5, top_p=0.9, stop="\n", seed=3)
    body = rec.body()
    assert {k: body[k] for k in ("max_new_tokens", "temperature", "nucleus", "stop_sequences")} == {
        "max_new_tokens": 9, "temperature": 0.5, "nucleus": 0.9, "stop_sequences": ["\n"]}
    assert body["seed"] == 3
    assert not {"max_tokens", "top_p", "stop"} & body.keys()


def test_a_named_model_is_sent_as_given() -> None:
    """Only the default model may fall back to a sibling; a named one (call or endpoint) is kept."""
    backend, eid, rec = brook(httpx2.Response(200, json=CHAT))
    backend.chat(HI, endpoint_id=eid, model="brook-chat-2")
    assert rec.body()["model"] == "brook-chat-2" and "allow_fallback" not in rec.body()
    pinned = backend.create_endpoint(model="brook-chat-1")
    backend.chat(HI, endpoint_id=pinned)
    assert rec.body()["model"] == "brook-chat-1" and "allow_fallback" not in rec.body()


def test_generate_is_one_user_turn() -> None:
    """generate sends the prompt as a single user turn."""
    backend, eid, rec = brook(httpx2.Response(200, json=CHAT))
    assert backend.generate("Once", endpoint_id=eid).text == "Hello!"
    assert rec.body()["messages"] == [{"role": "user", "text": "Once"}]


def test_an_unknown_end_is_other_and_kept() -> None:
    """An end value the table lacks becomes "other"; Brook's own value stays beside it."""
    backend, eid, _ = brook(httpx2.Response(200, json={**CHAT, "end": "NAPTIME"}))
    result = backend.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == ("other", "NAPTIME")


def test_server_request_id_header_wins_over_the_body() -> None:
    """The Brook-Request-ID header wins; the body's id stands in when there is no header."""
    backend, eid, _ = brook(httpx2.Response(200, json=CHAT, headers={"brook-request-id": "hdr-1"}),
                            httpx2.Response(200, json=CHAT))
    assert backend.chat(HI, endpoint_id=eid).server_request_id == "hdr-1"
    assert backend.chat(HI, endpoint_id=eid).server_request_id == "brk-1"


def test_a_wrong_typed_field_is_named() -> None:
    """A field of the wrong type fails the typed decode, which names it; it is not retried."""
    backend, eid, rec = brook(httpx2.Response(200, json={**CHAT, "meter": {"read": "5"}}))
    with pytest.raises(ResponseError, match=r"\$\.meter\.read"):
        backend.chat(HI, endpoint_id=eid)
    assert len(rec.requests) == 1


def test_stream() -> None:
    """A stream yields the text; its last chunk is done, with the end reason and merged usage."""
    backend, eid, rec = brook(sse(*STREAM))
    chunks = list(backend.stream_chat(HI, endpoint_id=eid, request_id="rid-2"))
    assert rec.body()["stream"] is True
    assert "".join(c.delta for c in chunks) == "Hello"
    last = chunks[-1]
    assert last.done and sum(c.done for c in chunks) == 1
    assert (last.finish_reason, last.native_finish_reason) == ("length", "MAX_LENGTH")
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (5, 2)  # start + end, merged
    assert {(c.request_id, c.server_request_id) for c in chunks} == {("rid-2", "brk-7")}
    assert backend.get_stats(eid).total_tokens == 7


def test_stream_header_id_wins_over_the_start_event() -> None:
    """In a stream too the header's ID wins over the one the start event carries."""
    answer = sse(*STREAM)
    answer.headers["brook-request-id"] = "hdr-2"
    backend, eid, _ = brook(answer)
    assert {c.server_request_id for c in backend.stream_chat(HI, endpoint_id=eid)} == {"hdr-2"}


def test_async_stream() -> None:
    """astream_generate reads the same events on the running loop."""
    backend, eid, rec = brook(sse(*STREAM))

    async def read() -> list[Any]:
        return [c async for c in backend.astream_generate("Once", endpoint_id=eid)]

    chunks = asyncio.run(read())
    assert "".join(c.delta for c in chunks) == "Hello" and chunks[-1].done
    assert rec.body()["messages"] == [{"role": "user", "text": "Once"}]


def test_a_stream_without_its_end_event_is_interrupted() -> None:
    """No end event, no done: the stream is cut off, and retried since no text reached the caller."""
    cut = sse(*STREAM[:1])
    backend, eid, rec = brook(cut, sse(*STREAM))
    assert "".join(c.delta for c in backend.stream_chat(HI, endpoint_id=eid)) == "Hello"
    assert len(rec.requests) == 2
    backend, eid, rec = brook(sse(*STREAM[:3]))
    chunks = backend.stream_chat(HI, endpoint_id=eid)
    with pytest.raises(StreamInterruptedError, match="before its final event"):
        list(chunks)
    assert len(rec.requests) == 1  # text had reached the caller: never started over


def test_an_error_event_is_raised_not_shown() -> None:
    """An error event mid-stream is classified by its code and raised, never yielded as text."""
    backend, eid, _ = brook(sse(STREAM[0], ("error", {"error": {"message": "no more",
                                                               "code": "quota_exhausted"}})))
    with pytest.raises(QuotaExceededError, match="no more"):
        list(backend.stream_chat(HI, endpoint_id=eid))


def test_embed_rows_by_index() -> None:
    """embed sends the texts with the embed default model and puts the rows back in input order."""
    backend, eid, rec = brook(httpx2.Response(200, json=EMBED))
    result = backend.embed(["a", "b"], endpoint_id=eid)
    assert rec.last.url.path == "/v2/embed"
    assert rec.body() == {"model": "brook-embed-1", "texts": ["a", "b"]}
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (4, 0)


def test_embed_asks_one_vector_per_input() -> None:
    """Fewer rows than inputs, or rows whose indexes do not cover them, are refused."""
    backend, eid, _ = brook(httpx2.Response(200, json=EMBED))
    with pytest.raises(ResponseError, match="2 vectors for 3 inputs"):
        backend.embed(["a", "b", "c"], endpoint_id=eid)
    twice = {**EMBED, "embeddings": [{"index": 0, "values": [1.0]}, {"index": 0, "values": [2.0]}]}
    backend, eid, _ = brook(httpx2.Response(200, json=twice))
    with pytest.raises(ResponseError, match="indexes"):
        backend.embed(["a", "b"], endpoint_id=eid)


def test_error_codes() -> None:
    """Brook's codes refine the status: context_too_long is final, retry_in stands for Retry-After."""
    backend, eid, rec = brook(httpx2.Response(400, json={"error": {"message": "too long",
                                                                   "code": "context_too_long"}}))
    with pytest.raises(ContextLengthError):
        backend.chat(HI, endpoint_id=eid)
    assert len(rec.requests) == 1
    c = ipfs_accel_brook.classify_error(Failure(operation="chat", status=429, data={
        "error": {"message": "slow down", "code": "rate_limited", "retry_in": 3}}))
    assert (c.retryable, c.retry_after, c.code) == (True, 3, "rate_limited")
    c = ipfs_accel_brook.classify_error(Failure(operation="chat", status=429, headers={
        "retry-after": "7"}, data={"error": {"retry_in": 3}}))
    assert c.retry_after == 7
    assert ipfs_accel_brook.classify_error(Failure(operation="chat", status=502, data=[])).retryable

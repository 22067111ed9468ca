"""The groq plugin's operations: requests as the GroqCloud spec says, results read back."""

from __future__ import annotations

import httpx2
import ipfs_accel_groq
import pytest
from _groq_fixtures import (
    CHAT,
    EMBEDDINGS,
    KEY,
    STREAM_USAGE,
    TIMINGS,
    Server,
    backend,
    chunk,
    sse,
    stream_response,
)
from ipfs_accel import ConfigurationError, Registry, Usage

HI = [{"role": "user", "content": "Hi"}]


def test_chat_request_and_result() -> None:
    """chat posts /openai/v1/chat/completions with Bearer key and max_completion_tokens."""
    server = Server(httpx2.Response(200, json=CHAT, headers={"x-request-id": "req_srv_1"}))
    b, eid = backend(server)
    result = b.chat(HI, endpoint_id=eid, request_id="abc-1", max_tokens=64, top_p=0.5)
    req = server.requests[0]
    assert req.method == "POST"
    assert str(req.url) == "https://api.groq.com/openai/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["x-request-id"] == "abc-1"
    assert server.body() == {"model": "llama-3.3-70b-versatile", "messages": HI,
                             "max_completion_tokens": 64, "top_p": 0.5}
    assert result.text == "Fast language models matter."
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "stop")
    assert result.request_id == "abc-1"
    assert result.server_request_id == "req_srv_1"


def test_chat_usage_keeps_groq_timings() -> None:
    """Tokens count as usual; queue/prompt/completion/total_time land in Usage.details."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    usage = b.chat(HI, endpoint_id=eid).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (18, 556, 574)
    assert usage.details == TIMINGS
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (18, 556, 574)


def test_generate_is_a_one_turn_chat() -> None:
    """generate has no /completions on Groq: the prompt is sent as one user message."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    result = b.generate("Say hi", endpoint_id=eid, model="llama-3.1-8b-instant", stop=["\n"])
    assert server.requests[0].url.path == "/openai/v1/chat/completions"
    assert server.body() == {"model": "llama-3.1-8b-instant",
                             "messages": [{"role": "user", "content": "Say hi"}], "stop": ["\n"]}
    assert result.text == "Fast language models matter."


def test_embed_request_and_vectors_in_input_order() -> None:
    """embed posts /openai/v1/embeddings with nomic-embed-text-v1_5, embed's default model."""
    server = Server(httpx2.Response(200, json=EMBEDDINGS, headers={"x-request-id": "req_e"}))
    b, eid = backend(server)
    result = b.embed(["a", "b"], endpoint_id=eid)
    assert server.requests[0].url.path == "/openai/v1/embeddings"
    assert server.body() == {"model": "nomic-embed-text-v1_5", "input": ["a", "b"]}
    assert result.vectors == [[-0.01, 0.02], [0.5, 0.25]]
    assert result.usage == Usage(input_tokens=6)
    assert result.server_request_id == "req_e"


def test_embed_keeps_a_chosen_model() -> None:
    """A model other than the chat default is sent as given."""
    server = Server(httpx2.Response(200, json=EMBEDDINGS))
    b, eid = backend(server)
    b.embed(["a", "b"], endpoint_id=eid, model="some-embedder")  # EMBEDDINGS holds two rows
    assert server.body()["model"] == "some-embedder"


def test_stream_chat_usage_from_x_groq() -> None:
    """stream_chat sends no stream_options (not in Groq's schema) and counts x_groq.usage."""
    final = chunk(None, "stop", x_groq={"id": "req_01", "usage": STREAM_USAGE})
    body = sse(chunk("", x_groq={"id": "req_01"}), chunk("Hel"), chunk("lo"), final)
    server = Server(stream_response(body))
    b, eid = backend(server)
    chunks = list(b.stream_chat(HI, endpoint_id=eid, request_id="s-1", max_tokens=5))
    assert server.body() == {"model": "llama-3.3-70b-versatile", "messages": HI,
                             "max_completion_tokens": 5, "stream": True}
    assert "".join(c.delta for c in chunks) == "Hello"
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("stop", "stop")
    assert (last.usage.input_tokens, last.usage.output_tokens) == (9, 3)  # type: ignore[union-attr]
    assert last.usage.details["queue_time"] == 0.01  # type: ignore[union-attr]
    assert {c.request_id for c in chunks} == {"s-1"}
    assert {c.server_request_id for c in chunks} == {"req_stream"}
    assert b.get_stats(eid).total_tokens == 12


def test_stream_usage_top_level() -> None:
    """A top-level usage chunk (a caller's own stream_options) is counted as well."""
    usage_chunk = {**chunk(), "choices": [], "usage": STREAM_USAGE}
    server = Server(stream_response(sse(chunk("ok", "stop"), usage_chunk)))
    b, eid = backend(server)
    list(b.stream_chat(HI, endpoint_id=eid, stream_options={"include_usage": True}))
    assert server.body()["stream_options"] == {"include_usage": True}
    assert b.get_stats(eid).total_tokens == 12


def test_stream_generate_usage_from_x_groq() -> None:
    """stream_generate streams a one-turn chat; the final x_groq.usage is counted."""
    final = chunk(None, "stop", x_groq={"id": "req_01", "usage": STREAM_USAGE})
    server = Server(stream_response(sse(chunk("ok"), final)))
    b, eid = backend(server)
    chunks = list(b.stream_generate("x", endpoint_id=eid))
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 12
    assert chunks[-1].usage.details["total_time"] == 0.006
    stats = b.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens) == (9, 3)


def test_stream_usage_in_both_places_counted_once() -> None:
    """x_groq.usage and the include_usage chunk report the same call: counted once."""
    final = chunk(None, "stop", x_groq={"id": "req_01", "usage": STREAM_USAGE})
    usage_chunk = {**chunk(), "choices": [], "usage": STREAM_USAGE}
    server = Server(stream_response(sse(chunk("ok"), final, usage_chunk)))
    b, eid = backend(server)
    list(b.stream_chat(HI, endpoint_id=eid))
    assert b.get_stats(eid).total_tokens == 12


@pytest.mark.asyncio
async def test_async_chat_and_stream() -> None:
    """achat and astream_chat share the plugin code with the sync calls."""
    server = Server(httpx2.Response(200, json=CHAT),
                    stream_response(sse(chunk("Hi", "stop", x_groq={"usage": STREAM_USAGE}))))
    b, eid = backend(server)
    assert (await b.achat(HI, endpoint_id=eid)).text
    assert "".join([c.delta async for c in b.astream_chat(HI, endpoint_id=eid)]) == "Hi"
    assert b.get_stats(eid).total_tokens == 574 + 12
    await b.aclose()


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints, two keys: each request carries its endpoint's key and no other."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, first = backend(server, api_key="gsk_first")
    second = b.create_endpoint(api_key="gsk_second")
    b.chat(HI, endpoint_id=second)
    b.chat(HI, endpoint_id=first)
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer gsk_second", "Bearer gsk_first"]
    for request, other in zip(server.requests, ("gsk_first", "gsk_second"), strict=True):
        assert other not in " ".join(request.headers.values())
        assert other.encode() not in request.content


def test_key_and_base_url_from_env() -> None:
    """GROQ_API_KEY and GROQ_BASE_URL configure an endpoint made without them."""
    server = Server(httpx2.Response(200, json=CHAT))
    registry = Registry(plugins=[ipfs_accel_groq], entry_points=False,
                        transport=httpx2.MockTransport(server),
                        environ={"GROQ_API_KEY": "gsk_env", "GROQ_BASE_URL": "http://proxy/openai/v1"})
    registry.get("groq").chat(HI)
    assert str(server.requests[0].url) == "http://proxy/openai/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer gsk_env"


def test_key_is_required() -> None:
    """No api_key= and no GROQ_API_KEY is a configuration error naming the variable."""
    registry = Registry(plugins=[ipfs_accel_groq], entry_points=False, environ={})
    with pytest.raises(ConfigurationError, match="GROQ_API_KEY"):
        registry.get("groq").create_endpoint()

"""hf_tgi: each operation's request and result, streams, keys and the plugin's surface."""

from __future__ import annotations

import json
import logging
import pathlib
import tomllib

import httpx2
import ipfs_accel_hf_tgi
import pytest
from _hf_tgi_fixtures import (
    CHAT,
    GENERATE,
    GENERATE_HEADERS,
    STREAM,
    Server,
    backend,
    chat_chunk,
    sse,
    token,
)
from ipfs_accel import (
    ChatResult,
    InvokeResult,
    Registry,
    ServerError,
    StreamInterruptedError,
    UnsupportedOperationError,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_entry_point_is_declared() -> None:
    """pyproject.toml declares the hf_tgi entry point and the distribution name."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["name"] == "ipfs-accel-plugin-hf_tgi"
    assert data["project"]["entry-points"]["ipfs_accel.backends"] == {"hf_tgi": "ipfs_accel_hf_tgi"}


def test_public_surface() -> None:
    """The package exports exactly its four hooks."""
    assert ipfs_accel_hf_tgi.__all__ == ["backend_info", "classify_error", "parse_usage", "send"]


def test_backend_info() -> None:
    """Defaults: localhost:8080, TGI_BASE_URL, HF_TOKEN/HF_API_TOKEN, optional key."""
    info = ipfs_accel_hf_tgi.backend_info()
    assert info.name == "hf_tgi"
    assert info.default_base_url == "http://localhost:8080"
    assert info.base_url_env == ("TGI_BASE_URL",)
    assert info.api_key_env == ("HF_TOKEN", "HF_API_TOKEN")
    assert not info.api_key_required
    assert info.operations == {"chat", "generate", "stream_chat", "stream_generate",
                               "health", "info"}


def test_base_url_from_env_and_default() -> None:
    """TGI_BASE_URL is used when no base_url is given, else localhost:8080."""
    server = Server(httpx2.Response(200))
    reg = Registry(plugins=[ipfs_accel_hf_tgi], entry_points=False,
                   transport=httpx2.MockTransport(server), environ={"TGI_BASE_URL": "http://r1:80/"})
    b = reg.get("hf_tgi")
    assert b.get_endpoint(b.create_endpoint()).base_url == "http://r1:80"
    reg2 = Registry(plugins=[ipfs_accel_hf_tgi], entry_points=False, environ={})
    b2 = reg2.get("hf_tgi")
    assert b2.get_endpoint(b2.create_endpoint()).base_url == "http://localhost:8080"


def test_generate_request_and_result() -> None:
    """generate posts /generate with mapped parameters and details; usage from the headers."""
    server = Server(httpx2.Response(200, json=GENERATE, headers=GENERATE_HEADERS))
    b, eid = backend(server)
    result = b.generate("The capital of France is", endpoint_id=eid, request_id="req-1",
                        max_tokens=20, temperature=0.5, top_p=0.9, stop="\n", top_k=10, seed=3)
    req = server.requests[0]
    assert req.method == "POST"
    assert req.url == "http://tgi.test/generate"
    assert req.headers["x-request-id"] == "req-1"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    assert server.body() == {
        "inputs": "The capital of France is",
        "parameters": {"max_new_tokens": 20, "temperature": 0.5, "top_p": 0.9, "stop": ["\n"],
                       "top_k": 10, "seed": 3, "details": True},
    }
    assert isinstance(result, ChatResult)
    assert result.text == " Paris."
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "eos_token")
    assert result.request_id == "req-1"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (7, 3)
    assert result.usage.total_tokens == 10
    assert result.usage.details["x-total-time"] == 120.0
    stats = b.get_stats(eid)
    assert (stats.successful_requests, stats.input_tokens, stats.output_tokens) == (1, 7, 3)


def test_generate_usage_from_details_without_headers() -> None:
    """Without the token headers, usage comes from details.generated_tokens and prefill."""
    body = {**GENERATE, "details": {**GENERATE["details"],
                                    "prefill": [{"id": 1, "text": "<s>", "logprob": None},
                                                {"id": 450, "text": "The", "logprob": -2.5}]}}
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    result = b.generate("The", endpoint_id=eid, details=True, decoder_input_details=True)
    assert server.body()["parameters"] == {"details": True, "decoder_input_details": True}
    assert (result.usage.input_tokens, result.usage.output_tokens) == (2, 3)


def test_generate_without_details() -> None:
    """A bare {generated_text} answer parses; details=False is passed through."""
    server = Server(httpx2.Response(200, json={"generated_text": "x"}))
    b, eid = backend(server)
    result = b.generate("p", endpoint_id=eid, details=False)
    assert server.body()["parameters"] == {"details": False}
    assert result.text == "x"
    assert result.usage.total_tokens == 0


def test_stream_generate() -> None:
    """stream_generate posts /generate_stream and yields token text; the last event ends it."""
    server = Server(sse(STREAM))
    b, eid = backend(server)
    chunks = list(b.stream_generate("The capital of France is", endpoint_id=eid,
                                    request_id="req-s", max_tokens=5))
    req = server.requests[0]
    assert req.url == "http://tgi.test/generate_stream"
    assert req.headers["accept"] == "text/event-stream"
    assert req.headers["x-request-id"] == "req-s"
    assert server.body() == {"inputs": "The capital of France is",
                             "parameters": {"max_new_tokens": 5, "details": True}}
    assert "".join(c.delta for c in chunks) == " Paris."
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("stop", "eos_token")
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (7, 3)
    assert all(c.request_id == "req-s" for c in chunks)
    stats = b.get_stats()
    assert (stats.successful_requests, stats.input_tokens, stats.output_tokens) == (1, 7, 3)


@pytest.mark.asyncio
async def test_astream_generate_counts_usage() -> None:
    """The async stream yields the same text and its usage is counted."""
    server = Server(sse(STREAM))
    b, eid = backend(server)
    chunks = [c async for c in b.astream_generate("p", endpoint_id=eid)]
    assert "".join(c.delta for c in chunks) == " Paris."
    assert b.get_stats().total_tokens == 10


def test_stream_generate_length_keeps_last_token() -> None:
    """A stream stopped by length keeps the text of its last (non-special) token."""
    events = [
        {"index": 1, "token": token(1, "a"), "generated_text": None, "details": None},
        {"index": 2, "token": token(2, "b"), "generated_text": "ab",
         "details": {"finish_reason": "length", "generated_tokens": 2, "input_length": 1,
                     "seed": None}},
    ]
    b, eid = backend(Server(sse(events)))
    chunks = list(b.stream_generate("p", endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == "ab"
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("length", "length")


def test_stream_generate_error_event_raises() -> None:
    """An error event inside the stream raises, and is never yielded as text."""
    events = [STREAM[0], {"error": "Request failed during generation: CUDA OOM",
                          "error_type": "generation"}]
    b, eid = backend(Server(sse(events)))
    seen: list[str] = []
    with pytest.raises(ServerError) as info:
        for chunk in b.stream_generate("p", endpoint_id=eid):
            seen.append(chunk.delta)
    assert seen == [" Paris"]
    assert "CUDA OOM" in info.value.message
    assert info.value.code == "generation"
    assert b.get_stats().failed_requests == 1


def test_stream_generate_truncated() -> None:
    """A stream that ends before the generated_text event raises StreamInterruptedError."""
    b, eid = backend(Server(sse(STREAM[:2])))
    with pytest.raises(StreamInterruptedError):
        list(b.stream_generate("p", endpoint_id=eid))


def test_chat_request_and_result() -> None:
    """chat posts the Messages API with model 'tgi' and reads the OpenAI-shaped answer."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    messages = [{"role": "user", "content": "Hi"}]
    result = b.chat(messages, endpoint_id=eid, request_id="req-c", max_tokens=32, stop=["x"])
    req = server.requests[0]
    assert req.url == "http://tgi.test/v1/chat/completions"
    assert req.headers["x-request-id"] == "req-c"
    assert server.body() == {"messages": messages, "model": "tgi", "max_tokens": 32,
                             "stop": ["x"]}
    assert result.text == "Hello!"
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "stop")
    assert result.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 2)


def test_chat_model_can_be_named() -> None:
    """A model given on the call is sent as it is."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid, model="my-model")
    assert server.body()["model"] == "my-model"


def test_chat_usage_from_headers_when_body_has_none() -> None:
    """Without a body usage, the token-count headers give the chat's usage."""
    body = {k: v for k, v in CHAT.items() if k != "usage"}
    server = Server(httpx2.Response(200, json=body, headers=GENERATE_HEADERS))
    b, eid = backend(server)
    result = b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (7, 3)


def test_stream_chat() -> None:
    """stream_chat asks for SSE and usage; deltas, [DONE] and the usage chunk are read."""
    events = [chat_chunk("Hel"), chat_chunk("lo", "stop"),
              chat_chunk(None, usage={"prompt_tokens": 4, "completion_tokens": 2,
                                      "total_tokens": 6}),
              "[DONE]"]
    server = Server(sse(events))
    b, eid = backend(server)
    chunks = list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=eid,
                                request_id="req-sc"))
    req = server.requests[0]
    assert req.url == "http://tgi.test/v1/chat/completions"
    assert req.headers["accept"] == "text/event-stream"
    assert req.headers["x-request-id"] == "req-sc"
    body = server.body()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "".join(c.delta for c in chunks) == "Hello"
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("stop", "stop")
    stats = b.get_stats()
    assert (stats.input_tokens, stats.output_tokens, stats.successful_requests) == (4, 2, 1)


def test_stream_chat_error_event_raises() -> None:
    """An error event in a chat stream raises instead of being yielded."""
    events = [chat_chunk("Hel"), {"error": "Input validation error", "error_type": "validation"}]
    b, eid = backend(Server(sse(events)))
    with pytest.raises(Exception) as info:
        list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=eid))
    assert "Input validation error" in str(info.value)
    assert not isinstance(info.value, StreamInterruptedError)


def test_stream_chat_truncated() -> None:
    """A chat stream without [DONE] raises StreamInterruptedError."""
    b, eid = backend(Server(sse([chat_chunk("Hel")])))
    with pytest.raises(StreamInterruptedError):
        list(b.stream_chat([{"role": "user", "content": "Hi"}], endpoint_id=eid))


def test_invoke_health_and_info() -> None:
    """health is GET /health (empty 200); info is GET /info, returned as the server sent it."""
    info = {"model_id": "bigscience/bloom-560m", "max_concurrent_requests": 128,
            "max_best_of": 2, "max_stop_sequences": 4, "max_input_tokens": 1024,
            "max_total_tokens": 2048, "validation_workers": 2, "max_client_batch_size": 4,
            "router": "text-generation-router", "version": "3.3.6"}
    server = Server(httpx2.Response(200), httpx2.Response(200, json=info))
    b, eid = backend(server)
    health = b.invoke("health", endpoint_id=eid, request_id="req-h")
    assert isinstance(health, InvokeResult)
    assert health.data == {"healthy": True, "status": 200}
    assert server.requests[0].method == "GET"
    assert server.requests[0].url == "http://tgi.test/health"
    assert server.requests[0].headers["x-request-id"] == "req-h"
    assert server.requests[0].content == b""
    got = b.invoke("info", endpoint_id=eid)
    assert server.requests[1].method == "GET"
    assert server.requests[1].url == "http://tgi.test/info"
    assert got.data == info


def test_unknown_operation() -> None:
    """An operation TGI does not offer (embed) is refused before anything is sent."""
    server = Server(httpx2.Response(200))
    b, eid = backend(server)
    with pytest.raises(UnsupportedOperationError):
        b.embed(["x"], endpoint_id=eid)
    assert server.requests == []


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints with two keys: each request carries its own Bearer, a keyless one none."""
    server = Server(lambda r: httpx2.Response(200, json=GENERATE))
    b, a = backend(server, api_key="hf_key_A", endpoint_id="a")
    c = b.create_endpoint("c", base_url="http://tgi2.test", api_key="hf_key_B")
    n = b.create_endpoint("n", base_url="http://tgi3.test")
    b.generate("p", endpoint_id=a)
    b.generate("p", endpoint_id=c)
    b.generate("p", endpoint_id=n)
    assert server.requests[0].headers["authorization"] == "Bearer hf_key_A"
    assert server.requests[1].headers["authorization"] == "Bearer hf_key_B"
    assert str(server.requests[1].url).startswith("http://tgi2.test/")
    assert "authorization" not in server.requests[2].headers


def test_key_from_env() -> None:
    """HF_TOKEN (then HF_API_TOKEN) is the key when none is given."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server, environ={"HF_API_TOKEN": "hf_env"})
    b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid)
    assert server.requests[0].headers["authorization"] == "Bearer hf_env"


def test_key_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """The key is in no repr, log line or error text, even when the server echoes it."""
    caplog.set_level(logging.DEBUG)
    secret = "hf_super_secret_value"
    server = Server(httpx2.Response(422, json={"error": f"bad token {secret}",
                                               "error_type": "validation"}))
    b, eid = backend(server, api_key=secret)
    with pytest.raises(Exception) as info:
        b.generate("p", endpoint_id=eid)
    err = info.value
    assert secret not in str(err) and secret not in repr(err)
    assert secret not in json.dumps(getattr(err, "body", None))
    assert secret not in repr(b.get_endpoint(eid)) and secret not in repr(b)
    assert secret not in caplog.text

"""The openai plugin's operations: requests as the spec says, results read back."""

from __future__ import annotations

import base64
import struct

import httpx2
import ipfs_accel_openai
import pytest
from _openai_fixtures import (
    CHAT,
    COMPLETION,
    EMBEDDINGS,
    KEY,
    STREAM_USAGE,
    Server,
    backend,
    chunk,
    sse,
    stream_response,
)
from ipfs_accel import ConfigurationError, Registry, Usage

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(autouse=True)
def _no_org_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)


def test_chat_request_and_result() -> None:
    """chat posts /chat/completions (Bearer key, max_completion_tokens) and reads it all back."""
    server = Server(httpx2.Response(200, json=CHAT, headers={"x-request-id": "req_srv_1"}))
    b, eid = backend(server)
    result = b.chat(HI, endpoint_id=eid, request_id="abc-1", max_tokens=64, temperature=0.2)
    req = server.requests[0]
    assert req.method == "POST"
    assert str(req.url) == "https://api.openai.com/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["x-client-request-id"] == "abc-1"
    assert server.body() == {"model": "gpt-4o-mini", "messages": HI,
                             "max_completion_tokens": 64, "temperature": 0.2}
    assert result.text == "Hello! How can I assist you today?"
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "stop")
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.usage == Usage(input_tokens=19, output_tokens=10)
    assert result.request_id == "abc-1"
    assert result.server_request_id == "req_srv_1"
    stats = b.get_stats(eid)
    assert (stats.total_requests, stats.successful_requests) == (1, 1)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (19, 10, 29)


def test_chat_model_per_call_and_endpoint() -> None:
    """A call's model= wins over the endpoint's, which wins over gpt-4o-mini."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server, model="gpt-5.4")
    b.chat(HI, endpoint_id=eid)
    b.chat(HI, endpoint_id=eid, model="gpt-4o")
    assert [server.body(i)["model"] for i in (0, 1)] == ["gpt-5.4", "gpt-4o"]


def test_generate_posts_completions() -> None:
    """generate posts /completions with the prompt; max_tokens keeps its name there."""
    server = Server(httpx2.Response(200, json=COMPLETION))
    b, eid = backend(server)
    result = b.generate("Say this is a test", endpoint_id=eid, max_tokens=7, temperature=0)
    assert server.requests[0].url.path == "/v1/completions"
    assert server.body() == {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test",
                             "max_tokens": 7, "temperature": 0}
    assert result.text == "\n\nThis is indeed a test"
    assert (result.finish_reason, result.native_finish_reason) == ("length", "length")
    assert result.usage == Usage(input_tokens=5, output_tokens=7)


def test_generate_keeps_a_chosen_model() -> None:
    """A chosen model is sent to /completions as given."""
    server = Server(httpx2.Response(200, json=COMPLETION))
    b, eid = backend(server)
    b.generate("x", endpoint_id=eid, model="davinci-002")
    assert server.body()["model"] == "davinci-002"


@pytest.mark.parametrize("where", ["call", "endpoint"])
def test_explicit_model_sent_as_given_by_every_operation(where: str) -> None:
    """A model named by the call or the endpoint goes out as given, whatever the operation:
    generate never swaps gpt-4o-mini for gpt-3.5-turbo-instruct, nor embed an alias for
    text-embedding-3-small (a proxy's aliases would be refused)."""
    usage = {"object": "text_completion", "created": 1, "model": "m", "choices": [],
             "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}}
    server = Server(httpx2.Response(200, json=COMPLETION),
                    stream_response(sse(COMPLETION, usage)),
                    httpx2.Response(200, json=EMBEDDINGS))
    b, eid = backend(server, **({"model": "gpt-4o-mini"} if where == "endpoint" else {}))
    named = {"model": "gpt-4o-mini"} if where == "call" else {}
    b.generate("Say this is a test", endpoint_id=eid, **named)
    list(b.stream_generate("Say this is a test", endpoint_id=eid, **named))
    b.embed(["a", "b"], endpoint_id=eid, **named)
    assert [server.body(i)["model"] for i in range(3)] == ["gpt-4o-mini"] * 3


def test_embed_request_and_vectors_in_input_order() -> None:
    """embed posts /embeddings with text-embedding-3-small and sorts vectors by index."""
    server = Server(httpx2.Response(200, json=EMBEDDINGS, headers={"x-request-id": "req_e"}))
    b, eid = backend(server)
    result = b.embed(["a", "b"], endpoint_id=eid, dimensions=2)
    assert server.requests[0].url.path == "/v1/embeddings"
    assert server.body() == {"model": "text-embedding-3-small", "input": ["a", "b"],
                             "dimensions": 2}
    assert result.vectors == [[0.0023064255, -0.009327292], [0.5, 0.25]]
    assert result.model == "text-embedding-3-small"
    assert result.usage == Usage(input_tokens=8)
    assert result.server_request_id == "req_e"
    assert b.get_stats(eid).input_tokens == 8


def test_embed_base64_vectors() -> None:
    """encoding_format=base64 answers are decoded into floats."""
    b64 = base64.b64encode(struct.pack("<2f", 0.5, -2.0)).decode()
    body = {**EMBEDDINGS, "data": [{"object": "embedding", "embedding": b64, "index": 0}]}
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    result = b.embed("a", endpoint_id=eid, encoding_format="base64", model="text-embedding-3-large")
    assert server.body()["encoding_format"] == "base64"
    assert server.body()["model"] == "text-embedding-3-large"
    assert result.vectors == [[0.5, -2.0]]


def test_stream_chat_chunks_and_usage_counted() -> None:
    """stream_chat asks for include_usage, yields the text, and counts the final usage."""
    body = sse(chunk(""), chunk("Hel"), chunk("lo"), chunk(None, "stop"),
               chunk(usage=STREAM_USAGE))
    server = Server(stream_response(body))
    b, eid = backend(server)
    chunks = list(b.stream_chat(HI, endpoint_id=eid, request_id="s-1", max_tokens=5))
    assert server.body() == {"model": "gpt-4o-mini", "messages": HI, "max_completion_tokens": 5,
                             "stream": True, "stream_options": {"include_usage": True}}
    assert "".join(c.delta for c in chunks) == "Hello"
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("stop", "stop")
    assert last.usage == Usage(input_tokens=9, output_tokens=3)
    assert {c.request_id for c in chunks} == {"s-1"}
    assert {c.server_request_id for c in chunks} == {"req_stream"}
    stats = b.get_stats(eid)
    assert (stats.successful_requests, stats.total_tokens) == (1, 12)


def test_stream_include_usage_can_be_turned_off() -> None:
    """A caller's own stream_options win over the plugin's include_usage."""
    server = Server(stream_response(sse(chunk("x", "stop"))))
    b, eid = backend(server)
    list(b.stream_chat(HI, endpoint_id=eid, stream_options={"include_usage": False}))
    assert server.body()["stream_options"] == {"include_usage": False}


def test_stream_generate_uses_completions() -> None:
    """stream_generate streams /completions text chunks with include_usage."""
    event = {"id": "cmpl-7iA7", "object": "text_completion", "created": 1690759702,
             "model": "gpt-3.5-turbo-instruct",
             "choices": [{"text": "This", "index": 0, "logprobs": None, "finish_reason": None}]}
    usage = {**event, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1,
                                               "total_tokens": 5}}
    server = Server(stream_response(sse(event, usage)))
    b, eid = backend(server)
    chunks = list(b.stream_generate("Say this", endpoint_id=eid))
    assert server.requests[0].url.path == "/v1/completions"
    assert server.body()["stream_options"] == {"include_usage": True}
    assert "".join(c.delta for c in chunks) == "This"
    assert chunks[-1].usage == Usage(input_tokens=4, output_tokens=1)


@pytest.mark.asyncio
async def test_async_chat_and_stream() -> None:
    """achat and astream_chat go through the same plugin code on the event loop."""
    server = Server(httpx2.Response(200, json=CHAT),
                    stream_response(sse(chunk("Hi", "stop"), chunk(usage=STREAM_USAGE))))
    b, eid = backend(server)
    assert (await b.achat(HI, endpoint_id=eid)).text.startswith("Hello")
    text = [c.delta async for c in b.astream_chat(HI, endpoint_id=eid)]
    assert "".join(text) == "Hi"
    assert b.get_stats(eid).total_tokens == 29 + 12
    await b.aclose()


def test_organization_and_project_headers_from_options() -> None:
    """organization/project options become OpenAI-Organization/OpenAI-Project."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server, organization="org-1", project="proj_1")
    b.chat(HI, endpoint_id=eid)
    headers = server.requests[0].headers
    assert headers["openai-organization"] == "org-1"
    assert headers["openai-project"] == "proj_1"


def test_organization_and_project_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the options, OPENAI_ORG_ID/OPENAI_PROJECT_ID are read; options still win."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_env")
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    other = b.create_endpoint(api_key="sk-2", project="proj_opt")
    b.chat(HI, endpoint_id=eid)
    b.chat(HI, endpoint_id=other)
    first, second = (r.headers for r in server.requests)
    assert (first["openai-organization"], first["openai-project"]) == ("org-env", "proj_env")
    assert (second["openai-organization"], second["openai-project"]) == ("org-env", "proj_opt")


def test_each_endpoint_keeps_its_own_headers_call_after_call() -> None:
    """The headers made at an endpoint's first request are its own: two endpoints called
    in turn, several times each, never send each other's key or organization."""
    server = Server(*[httpx2.Response(200, json=CHAT)] * 6)
    b, one = backend(server, api_key="sk-one-" + "a" * 20, organization="org-1")
    two = b.create_endpoint(api_key="sk-two-" + "b" * 20, organization="org-2")
    for _ in range(3):
        b.chat(HI, endpoint_id=one)
        b.chat(HI, endpoint_id=two)
    sent = [(r.headers["authorization"][:13], r.headers["openai-organization"])
            for r in server.requests]
    assert sent == [("Bearer sk-one", "org-1"), ("Bearer sk-two", "org-2")] * 3


def test_no_organization_headers_by_default() -> None:
    """Neither header is sent when nothing sets them."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, eid = backend(server)
    b.chat(HI, endpoint_id=eid)
    assert "openai-organization" not in server.requests[0].headers
    assert "openai-project" not in server.requests[0].headers


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints, two keys: each request carries its endpoint's key and no other."""
    server = Server(httpx2.Response(200, json=CHAT))
    b, first = backend(server, api_key="sk-first")
    second = b.create_endpoint(api_key="sk-second")
    b.chat(HI, endpoint_id=second)
    b.chat(HI, endpoint_id=first)
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer sk-second", "Bearer sk-first"]
    for request, other in zip(server.requests, ("sk-first", "sk-second"), strict=True):
        assert other not in " ".join(request.headers.values())
        assert other.encode() not in request.content


def test_key_and_base_url_from_env() -> None:
    """OPENAI_API_KEY and OPENAI_BASE_URL configure an endpoint made without them."""
    server = Server(httpx2.Response(200, json=CHAT))
    registry = Registry(plugins=[ipfs_accel_openai], entry_points=False,
                        transport=httpx2.MockTransport(server),
                        environ={"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://gw:8080/v1"})
    b = registry.get("openai")
    b.chat(HI)
    assert str(server.requests[0].url) == "http://gw:8080/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer sk-env"


def test_key_is_required() -> None:
    """No api_key= and no OPENAI_API_KEY is a configuration error naming the variable."""
    registry = Registry(plugins=[ipfs_accel_openai], entry_points=False, environ={})
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        registry.get("openai").create_endpoint()


def test_unknown_option_rejected() -> None:
    """A misspelt option is refused when the endpoint is created."""
    registry = Registry(plugins=[ipfs_accel_openai], entry_points=False, environ={})
    with pytest.raises(ConfigurationError, match="organisation"):
        registry.get("openai").create_endpoint(api_key="sk", organisation="org-1")

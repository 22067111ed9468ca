"""The ollama plugin against a fake Ollama: routes, bodies, results, streams, errors, keys."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import httpx2
import ipfs_accel_ollama
import pytest
from _ollama_fixtures import (
    CHAT_RESPONSE,
    EMBED_RESPONSE,
    FINAL_COUNTS,
    GENERATE_RESPONSE,
    TAGS_RESPONSE,
    Recorder,
    backend,
    chat_line,
    endpoint,
    gen_line,
    ndjson,
)
from ipfs_accel import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    ResponseError,
    ServerError,
    StreamInterruptedError,
    UnsupportedOperationError,
)

HI = [{"role": "user", "content": "why is the sky blue?"}]
PLUGIN_DIR = Path(__file__).resolve().parent.parent


def _error(status: int, message: str, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": message}, headers=headers)


# -- declaration --------------------------------------------------------------------


def test_entry_point_declared() -> None:
    """pyproject.toml declares the ollama entry point on the ipfs_accel_ollama module."""
    data = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    assert data["project"]["name"] == "ipfs-accel-plugin-ollama"
    assert data["project"]["entry-points"]["ipfs_accel.backends"] == {"ollama": "ipfs_accel_ollama"}


def test_public_surface() -> None:
    """The package exports exactly its hooks and its options type, sorted."""
    assert ipfs_accel_ollama.__all__ == sorted(ipfs_accel_ollama.__all__)
    assert set(ipfs_accel_ollama.__all__) == {
        "OllamaOptions", "backend_info", "classify_error", "parse_usage", "send",
    }


def test_backend_info() -> None:
    """The backend declares its defaults, env vars and operations."""
    info = ipfs_accel_ollama.backend_info()
    assert info.name == "ollama"
    assert info.default_base_url == "http://localhost:11434"
    assert info.base_url_env == ("OLLAMA_HOST",)
    assert info.api_key_env == ("OLLAMA_API_KEY",)
    assert {"chat", "generate", "embed", "stream_chat", "stream_generate", "list_models"} == set(
        info.operations
    )


def test_ollama_host_without_scheme() -> None:
    """OLLAMA_HOST=host:port (no scheme) becomes an http:// base URL."""
    rec = Recorder(httpx2.Response(200, json=TAGS_RESPONSE))
    b = backend(rec, environ={"OLLAMA_HOST": "gpu-7:11434"})
    b.invoke("list_models")
    assert str(rec.requests[0].url) == "http://gpu-7:11434/api/tags"


def test_default_base_url() -> None:
    """With no base_url and no OLLAMA_HOST the local default is used."""
    rec = Recorder(httpx2.Response(200, json=TAGS_RESPONSE))
    backend(rec).invoke("list_models")
    assert str(rec.requests[0].url) == "http://localhost:11434/api/tags"


# -- operations ---------------------------------------------------------------------


def test_chat_request_and_result() -> None:
    """chat POSTs /api/chat with stream false, options mapped, and reads text and usage."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    r = b.chat(
        HI, model="llama3.2", endpoint_id=eid, request_id="rid-1",
        max_tokens=64, temperature=0.2, top_p=0.9, stop=["\n"], format="json", seed_me=1,
    )
    req = rec.requests[0]
    assert req.method == "POST"
    assert req.url.path == "/api/chat"
    assert req.headers["x-request-id"] == "rid-1"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    assert rec.body() == {
        "model": "llama3.2",
        "messages": HI,
        "stream": False,
        "format": "json",
        "seed_me": 1,
        "options": {"num_predict": 64, "temperature": 0.2, "top_p": 0.9, "stop": ["\n"]},
    }
    assert r.text == "Hello! How are you today?"
    assert (r.finish_reason, r.native_finish_reason) == ("stop", "stop")
    assert r.model == "llama3.2"
    assert r.request_id == "rid-1"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (26, 298, 324)
    assert r.usage.details["eval_duration"] == 4799921000
    assert r.tool_calls is None


def test_chat_merges_given_options_and_keep_alive_option() -> None:
    """A caller's options dict is kept and merged; the endpoint's keep_alive is sent."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    eid = endpoint(b, keep_alive="10m")
    b.chat(HI, model="m", endpoint_id=eid, options={"seed": 42, "num_ctx": 4096}, temperature=0)
    body = rec.body()
    assert body["options"] == {"seed": 42, "num_ctx": 4096, "temperature": 0}
    assert body["keep_alive"] == "10m"


def test_chat_needs_model() -> None:
    """A chat without a model fails before anything is sent."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    with pytest.raises(ConfigurationError):
        b.chat(HI, endpoint_id=endpoint(b))
    assert rec.requests == []


def test_generate_request_and_result() -> None:
    """generate POSTs /api/generate with the prompt and reads response and usage."""
    rec = Recorder(httpx2.Response(200, json=GENERATE_RESPONSE))
    b = backend(rec)
    r = b.generate("Why is the sky blue?", model="llama3.2", endpoint_id=endpoint(b),
                   request_id="rid-g", max_tokens=10)
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("POST", "/api/generate")
    assert req.headers["x-request-id"] == "rid-g"
    assert rec.body() == {
        "model": "llama3.2", "prompt": "Why is the sky blue?", "stream": False,
        "options": {"num_predict": 10},
    }
    assert r.text.startswith("The sky is blue")
    assert (r.finish_reason, r.native_finish_reason) == ("stop", "stop")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (26, 290)


def test_embed_request_and_result() -> None:
    """embed POSTs /api/embed with input and returns one vector per input, with usage."""
    rec = Recorder(httpx2.Response(200, json=EMBED_RESPONSE))
    b = backend(rec)
    r = b.embed(["Why is the sky blue?", "Why is the grass green?"], model="all-minilm",
                endpoint_id=endpoint(b), request_id="rid-e", dimensions=3)
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("POST", "/api/embed")
    assert req.headers["x-request-id"] == "rid-e"
    assert rec.body() == {
        "model": "all-minilm", "input": ["Why is the sky blue?", "Why is the grass green?"],
        "dimensions": 3,
    }
    assert r.vectors == EMBED_RESPONSE["embeddings"]
    assert r.model == "all-minilm"
    assert r.usage.input_tokens == 8
    assert r.request_id == "rid-e"


def test_embed_single_string() -> None:
    """A single string is sent as a one-element input list."""
    rec = Recorder(httpx2.Response(200, json={**EMBED_RESPONSE, "embeddings": [[0.1, 0.2]]}))
    b = backend(rec)
    r = b.embed("hello", model="all-minilm", endpoint_id=endpoint(b))
    assert rec.body()["input"] == ["hello"]
    assert r.vectors == [[0.1, 0.2]]


def test_list_models() -> None:
    """invoke('list_models') GETs /api/tags and returns the models list."""
    rec = Recorder(httpx2.Response(200, json=TAGS_RESPONSE))
    b = backend(rec)
    r = b.invoke("list_models", endpoint_id=endpoint(b), request_id="rid-t")
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("GET", "/api/tags")
    assert req.headers["x-request-id"] == "rid-t"
    assert req.content == b""
    assert r.data == TAGS_RESPONSE["models"]
    assert r.request_id == "rid-t"


def test_unknown_operation() -> None:
    """An operation Ollama does not have is refused before sending."""
    rec = Recorder(httpx2.Response(200, json={}))
    b = backend(rec)
    with pytest.raises(UnsupportedOperationError):
        b.invoke("rerank", endpoint_id=endpoint(b))
    assert rec.requests == []


def test_unreadable_body_is_a_response_error() -> None:
    """A 200 whose body is not an Ollama object raises a ResponseError, not a crash."""
    b = backend(Recorder(httpx2.Response(200, content=b"<html>proxy</html>")))
    with pytest.raises(ResponseError):
        b.chat(HI, model="m", endpoint_id=endpoint(b))


@pytest.mark.asyncio
async def test_achat_and_aembed() -> None:
    """The async entry points send the same requests and read the same results."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE),
                   httpx2.Response(200, json=EMBED_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    r = await b.achat(HI, model="llama3.2", endpoint_id=eid)
    e = await b.aembed(["a", "b"], model="all-minilm", endpoint_id=eid)
    assert r.text == "Hello! How are you today?"
    assert len(e.vectors) == 2
    assert [q.url.path for q in rec.requests] == ["/api/chat", "/api/embed"]
    await b.aclose()


# -- streaming ----------------------------------------------------------------------


def test_stream_chat() -> None:
    """stream_chat reads NDJSON lines into deltas; the done line ends it with usage."""
    rec = Recorder(ndjson([
        chat_line("The"), chat_line(" sky"), chat_line(" is blue."),
        chat_line("", done=True, **FINAL_COUNTS),
    ]))
    b = backend(rec)
    eid = endpoint(b)
    chunks = list(b.stream_chat(HI, model="gemma4", endpoint_id=eid, request_id="rid-s",
                                temperature=0.5))
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("POST", "/api/chat")
    assert req.headers["accept"] == "application/x-ndjson"
    assert req.headers["x-request-id"] == "rid-s"
    assert rec.body() == {"model": "gemma4", "messages": HI, "stream": True,
                          "options": {"temperature": 0.5}}
    assert "".join(c.delta for c in chunks) == "The sky is blue."
    last = chunks[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == ("stop", "stop")
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (26, 282)
    assert all(c.request_id == "rid-s" for c in chunks)
    stats = b.get_stats()
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (26, 282, 308)
    assert stats.successful_requests == 1


def test_stream_generate() -> None:
    """stream_generate reads the 'response' field of each line; done_reason is the finish."""
    rec = Recorder(ndjson([
        gen_line("That"), gen_line("'s"), gen_line(" a fantastic question!", done=True,
                                                   **{**FINAL_COUNTS, "done_reason": "length"}),
    ]))
    b = backend(rec)
    chunks = list(b.stream_generate("Why?", model="gemma4", endpoint_id=endpoint(b)))
    assert rec.requests[0].url.path == "/api/generate"
    assert rec.body() == {"model": "gemma4", "prompt": "Why?", "stream": True}
    assert "".join(c.delta for c in chunks) == "That's a fantastic question!"
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("length", "length")
    assert b.get_stats().output_tokens == 282


def test_stream_error_line_raises() -> None:
    """An {"error": ...} line inside a 200 stream raises; it is never yielded as text."""
    rec = Recorder(ndjson([
        gen_line(" Yes"), gen_line("."),
        {"error": "an error was encountered while running the model"},
    ]))
    b = backend(rec)
    seen: list[str] = []
    with pytest.raises(ServerError) as info:
        for chunk in b.stream_generate("Q", model="gemma4", endpoint_id=endpoint(b)):
            seen.append(chunk.delta)
    assert "an error was encountered" in info.value.message
    assert "error" not in "".join(seen)
    assert len(rec.requests) == 1  # text was already yielded: not retried
    assert b.get_stats().failed_requests == 1


def test_stream_error_first_line_raises() -> None:
    """An error as the first line of a stream raises too."""
    b = backend(Recorder(ndjson([{"error": "model runner has unexpectedly stopped"}])))
    with pytest.raises(ServerError):
        list(b.stream_chat(HI, model="gemma4", endpoint_id=endpoint(b, max_retries=0)))


def test_stream_truncated() -> None:
    """A stream that ends without a done line raises StreamInterruptedError."""
    rec = Recorder(ndjson([chat_line("The"), chat_line(" sky"), '{"model":"gemma4","mess']))
    b = backend(rec)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError):
        for chunk in b.stream_chat(HI, model="gemma4", endpoint_id=endpoint(b)):
            seen.append(chunk.delta)
    assert seen == ["The", " sky"]


@pytest.mark.asyncio
async def test_astream_chat() -> None:
    """The async stream yields the same chunks and counts usage."""
    rec = Recorder(ndjson([chat_line("Hi"), chat_line("!", done=True, **FINAL_COUNTS)]))
    b = backend(rec)
    out = [c async for c in b.astream_chat(HI, model="gemma4", endpoint_id=endpoint(b))]
    assert "".join(c.delta for c in out) == "Hi!"
    assert b.get_stats().total_tokens == 308
    await b.aclose()


def test_stream_404_not_retried() -> None:
    """A 404 answer to a stream request raises NotFoundError after one attempt."""
    rec = Recorder(_error(404, 'model "nope" not found, try pulling it first'))
    b = backend(rec)
    with pytest.raises(NotFoundError) as info:
        list(b.stream_chat(HI, model="nope", endpoint_id=endpoint(b)))
    assert info.value.attempts == 1
    assert len(rec.requests) == 1


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(400, BadRequestError), (401, AuthenticationError), (403, AuthenticationError),
     (404, NotFoundError)],
)
def test_final_errors_not_retried(status: int, exc_type: type[Exception]) -> None:
    """4xx errors (bad request, auth, model not found) raise at once with attempts == 1."""
    rec = Recorder(_error(status, 'model "llama9" not found, try pulling it first'))
    b = backend(rec)
    with pytest.raises(exc_type) as info:
        b.chat(HI, model="llama9", endpoint_id=endpoint(b), request_id="rid-x")
    err = info.value
    assert err.attempts == 1  # type: ignore[attr-defined]
    assert err.status == status  # type: ignore[attr-defined]
    assert err.request_id == "rid-x"  # type: ignore[attr-defined]
    assert "not found, try pulling it first" in err.message  # type: ignore[attr-defined]
    assert len(rec.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_retried_then_success(status: int) -> None:
    """500, 502 and 503 are retried; the call succeeds when the server recovers."""
    rec = Recorder(_error(status, "the model failed to generate a response"),
                   _error(status, "the model failed to generate a response"),
                   httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    r = b.chat(HI, model="llama3.2", endpoint_id=endpoint(b), request_id="rid-r")
    assert r.text == "Hello! How are you today?"
    assert len(rec.requests) == 3
    assert {q.headers["x-request-id"] for q in rec.requests} == {"rid-r"}
    assert b.get_stats().retries == 2


def test_rate_limit_retried_then_success() -> None:
    """429 (with Retry-After) is retried, then the call succeeds."""
    rec = Recorder(_error(429, "too many requests", **{"retry-after": "0"}),
                   httpx2.Response(200, json=GENERATE_RESPONSE))
    b = backend(rec)
    r = b.generate("x", model="m", endpoint_id=endpoint(b))
    assert r.usage.output_tokens == 290
    assert len(rec.requests) == 2


def test_errors_exhaust_retries() -> None:
    """A 503 that never recovers raises OverloadedError after max_retries + 1 attempts."""
    rec = Recorder(_error(503, "server busy, please try again.  maximum pending requests exceeded"))
    b = backend(rec)
    with pytest.raises(OverloadedError) as info:
        b.chat(HI, model="m", endpoint_id=endpoint(b, max_retries=2))
    assert info.value.attempts == 3
    assert len(rec.requests) == 3


def test_429_exhausted_is_rate_limit_error() -> None:
    """A 429 that persists raises RateLimitError."""
    b = backend(Recorder(_error(429, "rate limited")))
    with pytest.raises(RateLimitError):
        b.embed("x", model="m", endpoint_id=endpoint(b, max_retries=1))


# -- keys ---------------------------------------------------------------------------


def test_keys_per_endpoint() -> None:
    """Each endpoint sends only its own Bearer key; an endpoint without key sends none."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    one = endpoint(b, base_url="https://ollama.com", api_key="key-one-secret")
    two = endpoint(b, base_url="https://ollama.com", api_key="key-two-secret")
    local = endpoint(b)
    b.chat(HI, model="m", endpoint_id=one)
    b.chat(HI, model="m", endpoint_id=two)
    b.chat(HI, model="m", endpoint_id=local)
    assert rec.requests[0].headers["authorization"] == "Bearer key-one-secret"
    assert rec.requests[1].headers["authorization"] == "Bearer key-two-secret"
    assert "authorization" not in rec.requests[2].headers


def test_key_from_env() -> None:
    """OLLAMA_API_KEY is used when the endpoint has no key."""
    rec = Recorder(httpx2.Response(200, json=TAGS_RESPONSE))
    b = backend(rec, environ={"OLLAMA_API_KEY": "env-secret-key"})
    b.invoke("list_models")
    assert rec.requests[0].headers["authorization"] == "Bearer env-secret-key"


def test_key_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    """The key appears in no repr, no exception text, no error body, even when echoed."""
    secret = "sk-ollama-very-secret"
    rec = Recorder(_error(401, f"invalid key {secret}"))
    b = backend(rec)
    eid = endpoint(b, api_key=secret)
    with pytest.raises(AuthenticationError) as info:
        b.chat(HI, model="m", endpoint_id=eid)
    err = info.value
    for text in (str(err), repr(err), repr(b), repr(b.get_endpoint(eid)), repr(err.body)):
        assert secret not in text
    print(err, repr(b.get_endpoint(eid)))
    assert secret not in capsys.readouterr().out


def test_stream_request_is_json() -> None:
    """Stream requests carry a JSON body the server can read (sanity of the encoding)."""
    rec = Recorder(ndjson([chat_line("x", done=True)]))
    b = backend(rec)
    list(b.stream_chat(HI, model="m", endpoint_id=endpoint(b)))
    assert json.loads(rec.requests[0].content)["stream"] is True

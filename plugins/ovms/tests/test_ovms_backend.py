"""The ovms plugin against a fake OVMS: /v3, rerank, KServe v2, TF-Serving, streams, errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx2
import ipfs_accel_ovms
import pytest
from _ovms_fixtures import (
    CHAT_RESPONSE,
    COMPLETION_RESPONSE,
    EMBED_RESPONSE,
    INFER_RESPONSE,
    METADATA_RESPONSE,
    RERANK_RESPONSE,
    Recorder,
    backend,
    endpoint,
    sse,
)
from ipfs_accel import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OverloadedError,
    ServerError,
    StreamInterruptedError,
)

HI = [{"role": "user", "content": "What is OpenVINO?"}]
PLUGIN_DIR = Path(__file__).resolve().parent.parent
TENSOR = {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]}


def _error(status: int, message: str, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": message}, headers=headers)


def _chunk(content: str | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "logprobs": None, "delta": {"content": content},
                     "finish_reason": finish}],
        "created": 1772634283, "model": "llama3", "object": "chat.completion.chunk",
        "usage": None, **extra,
    }


# -- declaration --------------------------------------------------------------------


def test_entry_point_declared() -> None:
    """pyproject.toml declares the ovms entry point on the ipfs_accel_ovms module."""
    data = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    assert data["project"]["name"] == "ipfs-accel-plugin-ovms"
    assert data["project"]["entry-points"]["ipfs_accel.backends"] == {"ovms": "ipfs_accel_ovms"}


def test_public_surface() -> None:
    """The package exports exactly its hooks and its options type, sorted."""
    assert ipfs_accel_ovms.__all__ == sorted(ipfs_accel_ovms.__all__)
    assert set(ipfs_accel_ovms.__all__) == {
        "InferResponse", "OvmsOptions", "aready", "backend_info", "classify_error",
        "parse_usage", "ready", "send",
    }


def test_backend_info_and_env() -> None:
    """Defaults and env vars: OVMS_BASE_URL replaces the local default."""
    info = ipfs_accel_ovms.backend_info()
    assert (info.name, info.default_base_url) == ("ovms", "http://localhost:8000")
    assert info.api_key_env == ("OVMS_API_KEY",)
    rec = Recorder(httpx2.Response(200, content=b""))
    backend(rec, environ={"OVMS_BASE_URL": "http://ovms-3:9000/"}).invoke("ready")
    assert str(rec.requests[0].url) == "http://ovms-3:9000/v2/health/ready"


# -- /v3 OpenAI-compatible ----------------------------------------------------------


def test_chat() -> None:
    """chat POSTs /v3/chat/completions and reads text, finish reason and usage (no id)."""
    rec = Recorder(httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    r = b.chat(HI, model="llama3", endpoint_id=endpoint(b), request_id="rid-c",
               max_tokens=128, temperature=0.1)
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("POST", "/v3/chat/completions")
    assert req.headers["x-request-id"] == "rid-c"
    assert "authorization" not in req.headers
    assert rec.body() == {"model": "llama3", "messages": HI, "max_tokens": 128, "temperature": 0.1}
    assert r.text == "\n\nHow can I help you?"
    assert (r.finish_reason, r.native_finish_reason, r.model, r.request_id) == (
        "stop", "stop", "llama3", "rid-c")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (22, 38, 60)


def test_generate() -> None:
    """generate POSTs /v3/completions with the prompt."""
    rec = Recorder(httpx2.Response(200, json=COMPLETION_RESPONSE))
    b = backend(rec)
    r = b.generate("The sky is", model="llama3", endpoint_id=endpoint(b), request_id="rid-g")
    assert rec.requests[0].url.path == "/v3/completions"
    assert rec.requests[0].headers["x-request-id"] == "rid-g"
    assert rec.body() == {"model": "llama3", "prompt": "The sky is"}
    assert (r.text, r.finish_reason, r.native_finish_reason, r.usage.total_tokens) == (
        " a blue sky", "length", "length", 9)


def test_embed() -> None:
    """embed POSTs /v3/embeddings and returns vectors in input order."""
    rec = Recorder(httpx2.Response(200, json=EMBED_RESPONSE))
    b = backend(rec)
    r = b.embed(["a", "b"], model="Alibaba-NLP/gte-large-en-v1.5", endpoint_id=endpoint(b),
                request_id="rid-e")
    assert rec.requests[0].url.path == "/v3/embeddings"
    assert rec.requests[0].headers["x-request-id"] == "rid-e"
    assert rec.body() == {"model": "Alibaba-NLP/gte-large-en-v1.5", "input": ["a", "b"]}
    assert r.vectors == [[-0.0344, -0.0255], [0.5, 0.6]]
    assert r.usage.input_tokens == 6


def test_rerank() -> None:
    """invoke('rerank') POSTs /v3/rerank and returns the results, though OVMS sends no id."""
    rec = Recorder(httpx2.Response(200, json=RERANK_RESPONSE))
    b = backend(rec)
    r = b.invoke("rerank", model="BAAI/bge-reranker-large", endpoint_id=endpoint(b),
                 request_id="rid-r", query="Hello", documents=["Welcome", "Farewell"], top_n=2)
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("POST", "/v3/rerank")
    assert req.headers["x-request-id"] == "rid-r"
    assert rec.body() == {"model": "BAAI/bge-reranker-large", "query": "Hello",
                          "documents": ["Welcome", "Farewell"], "top_n": 2}
    assert r.data == RERANK_RESPONSE["results"]
    assert r.request_id == "rid-r"


def test_rerank_needs_query_and_documents() -> None:
    """A rerank without query or documents fails before sending."""
    rec = Recorder(httpx2.Response(200, json=RERANK_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    with pytest.raises(ConfigurationError):
        b.invoke("rerank", model="m", endpoint_id=eid, documents=["a"])
    with pytest.raises(ConfigurationError):
        b.invoke("rerank", model="m", endpoint_id=eid, query="q")
    assert rec.requests == []


# -- streams ------------------------------------------------------------------------


def test_stream_chat_with_usage() -> None:
    """stream_chat asks for usage, reads deltas to [DONE] and counts the usage chunk."""
    rec = Recorder(sse([
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None},
                      "finish_reason": None}],
         "created": 1772634283, "model": "llama3", "object": "chat.completion.chunk"},
        _chunk("Hello"), _chunk("!", "stop"),
        {"choices": [], "created": 1772634283, "model": "llama3",
         "object": "chat.completion.chunk",
         "usage": {"completion_tokens": 2, "prompt_tokens": 9, "total_tokens": 11}},
    ]))
    b = backend(rec)
    chunks = list(b.stream_chat(HI, model="llama3", endpoint_id=endpoint(b), request_id="rid-s"))
    assert rec.requests[0].url.path == "/v3/chat/completions"
    assert rec.requests[0].headers["x-request-id"] == "rid-s"
    assert rec.requests[0].headers["accept"] == "text/event-stream"
    assert rec.body() == {"model": "llama3", "messages": HI, "stream": True,
                          "stream_options": {"include_usage": True}}
    assert "".join(c.delta for c in chunks) == "Hello!"
    assert chunks[-1].done
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("stop", "stop")
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 11
    stats = b.get_stats()
    assert (stats.input_tokens, stats.output_tokens) == (9, 2)


def test_stream_generate_without_usage_option() -> None:
    """stream_usage=False leaves stream_options out (servables without continuous batching)."""
    rec = Recorder(sse([{"choices": [{"index": 0, "text": "blue", "finish_reason": "stop"}],
                         "created": 1, "model": "llama3", "object": "text_completion"}]))
    b = backend(rec)
    chunks = list(b.stream_generate("The sky is", model="llama3",
                                    endpoint_id=endpoint(b, stream_usage=False)))
    assert rec.requests[0].url.path == "/v3/completions"
    assert rec.body() == {"model": "llama3", "prompt": "The sky is", "stream": True}
    assert "".join(c.delta for c in chunks) == "blue"


def test_stream_error_event_raises() -> None:
    """An {"error": ...} event mid-stream raises instead of being yielded as text."""
    b = backend(Recorder(sse([_chunk("Hel"), {"error": "Mediapipe execution failed"}],
                             done=False)))
    with pytest.raises(ServerError) as info:
        list(b.stream_chat(HI, model="llama3", endpoint_id=endpoint(b)))
    assert "Mediapipe execution failed" in info.value.message


def test_stream_truncated() -> None:
    """A stream that stops before [DONE] raises StreamInterruptedError."""
    b = backend(Recorder(sse([_chunk("Hel"), _chunk("lo")], done=False)))
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError):
        for c in b.stream_chat(HI, model="llama3", endpoint_id=endpoint(b)):
            seen.append(c.delta)
    assert seen == ["Hel", "lo"]


# -- KServe v2 and TF-Serving ---------------------------------------------------------


def test_infer() -> None:
    """infer POSTs the inputs to /v2/models/{m}/infer and returns the outputs."""
    rec = Recorder(httpx2.Response(200, json={**INFER_RESPONSE, "id": "rid-i"}))
    b = backend(rec)
    r = b.invoke("infer", model="mymodel", endpoint_id=endpoint(b), request_id="rid-i",
                 inputs=[TENSOR], outputs=[{"name": "output0"}])
    req = rec.requests[0]
    assert (req.method, req.url.path) == ("POST", "/v2/models/mymodel/infer")
    assert req.headers["x-request-id"] == "rid-i"
    assert rec.body() == {"inputs": [TENSOR], "outputs": [{"name": "output0"}], "id": "rid-i"}
    assert (r.data.outputs, r.data.id) == (INFER_RESPONSE["outputs"], "rid-i")
    assert r.usage.total_tokens == 0


def test_infer_version_and_own_id() -> None:
    """version= selects /versions/{v}; an id= given by the caller is kept."""
    rec = Recorder(httpx2.Response(200, json={**INFER_RESPONSE, "id": "42"}))
    b = backend(rec)
    b.invoke("infer", model="mymodel", version=2, id="42", endpoint_id=endpoint(b),
             inputs=[TENSOR])
    assert rec.requests[0].url.path == "/v2/models/mymodel/versions/2/infer"
    assert rec.body() == {"inputs": [TENSOR], "id": "42"}


def test_infer_needs_inputs_and_model() -> None:
    """infer without inputs or without a model fails before sending."""
    rec = Recorder(httpx2.Response(200, json=INFER_RESPONSE))
    b = backend(rec)
    eid = endpoint(b)
    with pytest.raises(ConfigurationError):
        b.invoke("infer", model="m", endpoint_id=eid)
    with pytest.raises(ConfigurationError):
        b.invoke("infer", endpoint_id=eid, inputs=[TENSOR])
    assert rec.requests == []


def test_health_and_metadata() -> None:
    """ready, live, model_ready, metadata and server_metadata GET their KServe routes."""
    server = {"name": "OpenVINO Model Server", "version": "2022.2.0.fd742507"}
    rec = Recorder(
        httpx2.Response(200, content=b""), httpx2.Response(200, content=b""),
        httpx2.Response(200, content=b""), httpx2.Response(200, json=METADATA_RESPONSE),
        httpx2.Response(200, json=server),
    )
    b = backend(rec)
    eid = endpoint(b)
    assert b.invoke("ready", endpoint_id=eid, request_id="rid-h").data is True
    assert b.invoke("live", endpoint_id=eid).data is True
    assert b.invoke("model_ready", model="resnet", version="1", endpoint_id=eid).data is True
    assert b.invoke("metadata", model="resnet", endpoint_id=eid).data == METADATA_RESPONSE
    assert b.invoke("server_metadata", endpoint_id=eid).data == server
    got = [(q.method, q.url.path) for q in rec.requests]
    assert got == [
        ("GET", "/v2/health/ready"), ("GET", "/v2/health/live"),
        ("GET", "/v2/models/resnet/versions/1/ready"), ("GET", "/v2/models/resnet"),
        ("GET", "/v2"),
    ]
    assert rec.requests[0].headers["x-request-id"] == "rid-h"
    assert all(q.content == b"" for q in rec.requests)


def test_predict_rows_and_columns() -> None:
    """predict POSTs /v1/models/{m}:predict; instances -> predictions, inputs -> outputs."""
    rec = Recorder(httpx2.Response(200, json={"predictions": [[0.1, 0.9]]}),
                   httpx2.Response(200, json={"outputs": {"prob": [[0.1, 0.9]]}}))
    b = backend(rec)
    eid = endpoint(b)
    r1 = b.invoke("predict", model="resnet", endpoint_id=eid, instances=[[1.0, 2.0]])
    r2 = b.invoke("predict", model="resnet", version=3, endpoint_id=eid,
                  inputs={"x": [[1.0, 2.0]]}, signature_name="serving_default")
    assert [q.url.path for q in rec.requests] == [
        "/v1/models/resnet:predict", "/v1/models/resnet/versions/3:predict",
    ]
    assert rec.body(0) == {"instances": [[1.0, 2.0]]}
    assert rec.body(1) == {"inputs": {"x": [[1.0, 2.0]]}, "signature_name": "serving_default"}
    assert r1.data == [[0.1, 0.9]]
    assert r2.data == {"prob": [[0.1, 0.9]]}


def test_predict_needs_exactly_one_format() -> None:
    """predict with both or neither of instances/inputs fails before sending."""
    rec = Recorder(httpx2.Response(200, json={"predictions": []}))
    b = backend(rec)
    eid = endpoint(b)
    with pytest.raises(ConfigurationError):
        b.invoke("predict", model="m", endpoint_id=eid)
    with pytest.raises(ConfigurationError):
        b.invoke("predict", model="m", endpoint_id=eid, instances=[1], inputs=[1])
    assert rec.requests == []


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "exc_type"),
    [(400, "Invalid number of inputs", BadRequestError),
     (401, "Unauthorized", AuthenticationError),
     (404, "Model with requested name is not found", NotFoundError)],
)
def test_final_errors(status: int, message: str, exc_type: type[Exception]) -> None:
    """400, 401 and 404 raise at once with attempts == 1 and the server's message."""
    rec = Recorder(_error(status, message))
    b = backend(rec)
    with pytest.raises(exc_type) as info:
        b.invoke("infer", model="nope", endpoint_id=endpoint(b), inputs=[TENSOR])
    err: Any = info.value
    assert (err.attempts, err.status, err.message) == (1, status, message)
    assert len(rec.requests) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retried_then_success(status: int) -> None:
    """429, 500 and 503 (not ready) are retried; the call then succeeds."""
    rec = Recorder(_error(status, "Model is not loaded yet"),
                   httpx2.Response(200, json=CHAT_RESPONSE))
    b = backend(rec)
    r = b.chat(HI, model="llama3", endpoint_id=endpoint(b), request_id="rid-x")
    assert r.usage.total_tokens == 60
    assert len(rec.requests) == 2
    assert {q.headers["x-request-id"] for q in rec.requests} == {"rid-x"}


def test_503_exhausted() -> None:
    """A 503 that lasts raises OverloadedError after max_retries + 1 attempts."""
    rec = Recorder(_error(503, "Server not ready"))
    b = backend(rec)
    with pytest.raises(OverloadedError) as info:
        b.invoke("rerank", model="m", endpoint_id=endpoint(b, max_retries=1), query="q",
                 documents=["a"])
    assert info.value.attempts == 2


# -- keys ---------------------------------------------------------------------------


def test_keys_per_endpoint() -> None:
    """Each endpoint sends only its own Bearer key; none without a key."""
    rec = Recorder(httpx2.Response(200, json=INFER_RESPONSE))
    b = backend(rec)
    one = endpoint(b, base_url="http://ovms-1:8000", api_key="ovms-key-one")
    two = endpoint(b, base_url="http://ovms-2:8000", api_key="ovms-key-two")
    plain = endpoint(b)
    for eid in (one, two, plain):
        b.invoke("infer", model="m", endpoint_id=eid, inputs=[TENSOR])
    assert rec.requests[0].headers["authorization"] == "Bearer ovms-key-one"
    assert rec.requests[0].url.host == "ovms-1"
    assert rec.requests[1].headers["authorization"] == "Bearer ovms-key-two"
    assert "authorization" not in rec.requests[2].headers


def test_key_from_env_and_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    """OVMS_API_KEY is sent; it shows in no repr, exception text or error body."""
    secret = "ovms-env-very-secret"
    rec = Recorder(_error(403, f"key {secret} not allowed"))
    b = backend(rec, environ={"OVMS_API_KEY": secret})
    with pytest.raises(AuthenticationError) as info:
        b.chat(HI, model="llama3")
    assert rec.requests[0].headers["authorization"] == f"Bearer {secret}"
    err = info.value
    for text in (str(err), repr(err), repr(err.body), repr(b.get_endpoint())):
        assert secret not in text
    print(err, b.get_endpoint())
    assert secret not in capsys.readouterr().out


@pytest.mark.asyncio
async def test_async_invoke_and_stream() -> None:
    """ainvoke and astream_chat run on the event loop with the same results."""
    rec = Recorder(httpx2.Response(200, json=RERANK_RESPONSE),
                   sse([_chunk("Hi", "stop")]))
    b = backend(rec)
    eid = endpoint(b)
    r = await b.ainvoke("rerank", model="m", endpoint_id=eid, query="q", documents=["a", "b"])
    chunks = [c async for c in b.astream_chat(HI, model="llama3", endpoint_id=eid)]
    assert len(r.data) == 2
    assert "".join(c.delta for c in chunks) == "Hi"
    await b.aclose()

"""The llvm backend's operations: requests as the contract says, answers read back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
import ipfs_accel_llvm
import pytest
from ipfs_accel import (
    Backend,
    ChatResult,
    ConfigurationError,
    InvokeResult,
    ResponseError,
    UnsupportedOperationError,
)
from ipfs_accel.testing import FAST_RETRIES, Answer, mock_backend
from ipfs_accel.testing import Recorder as KitRecorder

Handler = Callable[[httpx2.Request], httpx2.Response]

INFER_ANSWER = {
    "result": "Hello from LLVM",
    "model": "default",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
}


class Recorder(KitRecorder):
    """The kit's scripted, recording handler; with no answers it answers an infer call."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__(*(answers or (httpx2.Response(200, json=INFER_ANSWER),)))


def make_backend(
    handler: Handler, *, environ: Mapping[str, str] | None = None, **settings: Any
) -> tuple[Backend, str]:
    backend = mock_backend(ipfs_accel_llvm, handler, environ=environ)
    eid = backend.create_endpoint(**{**FAST_RETRIES, "base_url": "http://llvm.test", **settings})
    return backend, eid


def test_backend_info_declares_the_contract() -> None:
    """backend_info names the backend, its env vars, default URL, model and operations."""
    info = ipfs_accel_llvm.backend_info()
    assert info.name == "llvm"
    assert info.default_base_url == "http://localhost:8090"
    assert info.base_url_env == ("LLVM_API_URL", "LLVM_BASE_URL")
    assert info.api_key_env == ("LLVM_API_KEY",)
    assert info.api_key_required is False
    assert info.default_model is None
    assert info.default_models == {
        op: "default" for op in ("chat", "generate", "infer", "batch_infer", "model_info", "reload")
    }
    assert info.operations == {
        "chat", "generate", "infer", "batch_infer", "list_models", "model_info", "status",
        "reload",
    }


def test_generate_posts_the_prompt_as_input() -> None:
    """generate POSTs {input, parameters} to /models/default/infer and reads result and usage."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    out = backend.generate(
        "int main() {", endpoint_id=eid, request_id="req-gen-1", max_tokens=16,
        temperature=0.2, top_p=0.9, stop=["}"], seed=7,
    )
    req = rec.last
    assert req.method == "POST"
    assert req.url == "http://llvm.test/models/default/infer"
    assert req.headers["X-Request-ID"] == "req-gen-1"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    assert rec.body() == {
        "input": "int main() {",
        "parameters": {
            "max_tokens": 16, "temperature": 0.2, "top_p": 0.9, "stop": ["}"], "seed": 7,
        },
    }
    assert isinstance(out, ChatResult)
    assert out.text == "Hello from LLVM"
    assert (out.finish_reason, out.native_finish_reason) == ("stop", "stop")
    assert out.model == "default"
    assert out.request_id == "req-gen-1"
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.total_tokens) == (5, 4, 9)
    assert out.raw == INFER_ANSWER


def test_generate_without_params_sends_no_parameters() -> None:
    """With no keyword params the body is just {input}; None common params are dropped."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    backend.generate("hi", endpoint_id=eid, temperature=None)
    assert rec.body() == {"input": "hi"}


def test_explicit_parameters_dict_is_merged() -> None:
    """An explicit parameters= dict is sent, with keyword params added over it."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    backend.generate("hi", endpoint_id=eid, parameters={"opt_level": "O2", "max_tokens": 1},
                     max_tokens=8)
    assert rec.body() == {"input": "hi", "parameters": {"opt_level": "O2", "max_tokens": 8}}


def test_model_id_goes_into_the_path_percent_encoded() -> None:
    """A named model is used in the path, percent-encoded, and reported when the server omits it."""
    rec = Recorder(lambda r: httpx2.Response(200, json={"result": "ok"}))
    backend, eid = make_backend(rec)
    out = backend.generate("hi", model="org/clang 17", endpoint_id=eid)
    assert rec.last.url.raw_path == b"/models/org%2Fclang%2017/infer"
    assert out.model == "org/clang 17"


def test_endpoint_model_is_the_default_model() -> None:
    """The endpoint's model= replaces 'default' in the path."""
    rec = Recorder()
    backend, eid = make_backend(rec, model="jit-small")
    backend.generate("hi", endpoint_id=eid)
    assert rec.last.url.path == "/models/jit-small/infer"


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        ({"result": "r"}, "r"),
        ({"outputs": "o"}, "o"),
        ({"outputs": ["first", "second"]}, "first"),
        ({"output": "out"}, "out"),
        ({"result": None, "outputs": [{"text": "t"}]}, "t"),
        ({"result": 42, "output": "fallback"}, "fallback"),
        ({"result": ""}, ""),
        ("bare string", "bare string"),
    ],
)
def test_generate_reads_result_outputs_or_output(answer: Any, text: str) -> None:
    """The text is the first of result, outputs, output that holds text."""
    backend, eid = make_backend(Recorder(lambda r: httpx2.Response(200, json=answer)))
    assert backend.generate("hi", endpoint_id=eid).text == text


@pytest.mark.parametrize("answer", [{}, {"result": 3}, {"outputs": []}, [1, 2], None])
def test_generate_without_text_is_a_response_error(answer: Any) -> None:
    """An answer with no text in result/outputs/output raises ResponseError, not retried."""
    rec = Recorder(lambda r: httpx2.Response(200, json=answer))
    backend, eid = make_backend(rec)
    with pytest.raises(ResponseError) as info:
        backend.generate("hi", endpoint_id=eid)
    assert info.value.attempts == 1
    assert len(rec.requests) == 1


def test_usage_is_optional() -> None:
    """An answer without usage gives zero tokens, not an error."""
    backend, eid = make_backend(Recorder(lambda r: httpx2.Response(200, json={"result": "x"})))
    out = backend.generate("hi", endpoint_id=eid)
    assert out.usage.total_tokens == 0
    assert backend.get_stats(eid).successful_requests == 1


def test_usage_input_output_names_are_read_and_counted_in_stats() -> None:
    """usage.input_tokens/output_tokens are read too, and the stats add them up."""
    answer = {"result": "x", "usage": {"input_tokens": 3, "output_tokens": 2}}
    backend, eid = make_backend(Recorder(lambda r: httpx2.Response(200, json=answer)))
    backend.generate("a", endpoint_id=eid)
    backend.generate("b", endpoint_id=eid)
    stats = backend.get_stats(eid)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (6, 4, 10)


def test_chat_renders_messages_into_one_prompt() -> None:
    """chat sends the messages as '<role>: <content>' lines plus 'assistant:' to /infer."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    out = backend.chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, "there"]},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "Compile this."},
        ],
        endpoint_id=eid, request_id="req-chat-1", max_tokens=4,
    )
    assert rec.last.url.path == "/models/default/infer"
    assert rec.last.headers["X-Request-ID"] == "req-chat-1"
    assert rec.body() == {
        "input": "system: Be brief.\nuser: Hi\nthere\nassistant: \nuser: Compile this.\nassistant:",
        "parameters": {"max_tokens": 4},
    }
    assert out.text == "Hello from LLVM"
    assert out.usage.total_tokens == 9


def test_chat_continues_a_trailing_assistant_message() -> None:
    """When the last message is the assistant's, no extra 'assistant:' line is added."""
    assert ipfs_accel_llvm.render_chat(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
    ) == "user: Hi\nassistant: Hel"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        ["not a dict"],
        [{"content": "no role"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "user", "content": 5}],
    ],
)
def test_chat_refuses_what_it_cannot_render(messages: list[Any]) -> None:
    """Messages that cannot be rendered as text raise ConfigurationError before sending."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError):
        backend.chat(messages, endpoint_id=eid)
    assert rec.requests == []


def test_infer_sends_any_json_input() -> None:
    """invoke('infer') POSTs arbitrary input and returns the body as it is."""
    answer = {"result": {"ir": "define i32 @main()"}, "execution_time": 0.5}
    rec = Recorder(lambda r: httpx2.Response(200, json=answer))
    backend, eid = make_backend(rec)
    out = backend.invoke(
        "infer", model="jit", endpoint_id=eid, request_id="req-inf",
        input={"code": "int main(){}", "lang": "c"}, temperature=0.0,
    )
    assert rec.last.method == "POST"
    assert rec.last.url.path == "/models/jit/infer"
    assert rec.last.headers["X-Request-ID"] == "req-inf"
    assert rec.body() == {
        "input": {"code": "int main(){}", "lang": "c"}, "parameters": {"temperature": 0.0}
    }
    assert isinstance(out, InvokeResult)
    assert out.data == answer
    assert out.request_id == "req-inf"


def test_infer_needs_input() -> None:
    """invoke('infer') without input= raises ConfigurationError and sends nothing."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError):
        backend.invoke("infer", endpoint_id=eid)
    assert rec.requests == []


def test_batch_infer_sends_inputs_and_returns_results() -> None:
    """invoke('batch_infer') POSTs {inputs, parameters} and returns the results list."""
    answer = {"results": ["a!", "b!"], "usage": {"prompt_tokens": 2, "completion_tokens": 2}}
    rec = Recorder(lambda r: httpx2.Response(200, json=answer))
    backend, eid = make_backend(rec)
    out = backend.invoke("batch_infer", endpoint_id=eid, request_id="req-b",
                         inputs=["a", "b"], max_tokens=3)
    assert rec.last.method == "POST"
    assert rec.last.url.path == "/models/default/batch_infer"
    assert rec.last.headers["X-Request-ID"] == "req-b"
    assert rec.body() == {"inputs": ["a", "b"], "parameters": {"max_tokens": 3}}
    assert out.data == ["a!", "b!"]
    assert out.usage.total_tokens == 4


def test_batch_infer_needs_a_list_and_a_results_list() -> None:
    """batch_infer refuses non-list inputs, and an answer without results is a ResponseError."""
    rec = Recorder(lambda r: httpx2.Response(200, json={"outputs": ["x"]}))
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError):
        backend.invoke("batch_infer", endpoint_id=eid, inputs="a")
    with pytest.raises(ResponseError):
        backend.invoke("batch_infer", endpoint_id=eid, inputs=["a"])


@pytest.mark.parametrize(
    ("operation", "method", "path", "answer"),
    [
        ("list_models", "GET", "/models", {"models": [{"id": "default"}]}),
        ("model_info", "GET", "/models/default", {"id": "default", "status": "loaded"}),
        ("status", "GET", "/status", {"status": "ok", "models_loaded": 1}),
        ("reload", "POST", "/models/default/reload", {"status": "reloaded"}),
    ],
)
def test_bodyless_operations(operation: str, method: str, path: str, answer: Any) -> None:
    """list_models, model_info, status and reload send no body and return the answer as it is."""
    rec = Recorder(lambda r: httpx2.Response(200, json=answer))
    backend, eid = make_backend(rec)
    out = backend.invoke(operation, endpoint_id=eid, request_id=f"req-{operation}")
    assert rec.last.method == method
    assert rec.last.url.path == path
    assert rec.last.content == b""
    assert rec.last.headers["X-Request-ID"] == f"req-{operation}"
    assert out.data == answer


def test_reload_with_empty_body_succeeds() -> None:
    """A reload answered 204 with no body succeeds with data None."""
    backend, eid = make_backend(Recorder(lambda r: httpx2.Response(204)))
    assert backend.invoke("reload", model="m1", endpoint_id=eid).data is None


def test_raw_json_operations_refuse_non_json() -> None:
    """A 2xx that is not JSON is a ResponseError for the raw-JSON operations."""
    backend, eid = make_backend(Recorder(lambda r: httpx2.Response(200, text="<html>")))
    with pytest.raises(ResponseError):
        backend.invoke("status", endpoint_id=eid)


def test_bodyless_operations_refuse_parameters() -> None:
    """Parameters given to an operation that has nowhere to put them raise ConfigurationError."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError, match="verbose"):
        backend.invoke("status", endpoint_id=eid, verbose=True)
    assert rec.requests == []


def test_embed_and_streams_are_not_offered() -> None:
    """The contract has no embeddings or streams: those raise UnsupportedOperationError."""
    backend, eid = make_backend(Recorder())
    with pytest.raises(UnsupportedOperationError):
        backend.embed("x", endpoint_id=eid)
    with pytest.raises(UnsupportedOperationError):
        backend.stream_generate("x", endpoint_id=eid)


def test_base_url_from_env_llvm_api_url_first() -> None:
    """LLVM_API_URL wins over LLVM_BASE_URL; without either the default is localhost:8090."""
    rec = Recorder()
    env = {"LLVM_API_URL": "http://api-url.test/", "LLVM_BASE_URL": "http://base-url.test"}
    backend, eid = make_backend(rec, environ=env, base_url=None)
    backend.generate("x", endpoint_id=eid)
    assert str(rec.last.url) == "http://api-url.test/models/default/infer"
    backend, eid = make_backend(rec, environ={"LLVM_BASE_URL": "http://base.test"}, base_url=None)
    backend.generate("x", endpoint_id=eid)
    assert rec.last.url.host == "base.test"
    backend, eid = make_backend(rec, environ={}, base_url=None)
    backend.generate("x", endpoint_id=eid)
    assert str(rec.last.url) == "http://localhost:8090/models/default/infer"


def test_api_key_from_env() -> None:
    """LLVM_API_KEY becomes the Bearer key when the endpoint has none of its own."""
    rec = Recorder()
    backend, eid = make_backend(rec, environ={"LLVM_API_KEY": "env-key"})
    backend.generate("x", endpoint_id=eid)
    assert rec.last.headers["authorization"] == "Bearer env-key"


def test_single_generate_returns_promptly_without_other_requests() -> None:
    """A lone generate is sent on its own: no client-side batch gathers it with others."""
    rec = Recorder()
    backend, eid = make_backend(rec, max_concurrent_requests=8)
    out = backend.generate("lonely", endpoint_id=eid)
    assert out.text == "Hello from LLVM"
    assert len(rec.requests) == 1
    assert backend.get_stats(eid).total_requests == 1


@pytest.mark.asyncio
async def test_single_agenerate_returns_promptly_without_other_requests() -> None:
    """A lone async generate completes well within a second with nothing else in flight."""
    rec = Recorder()
    backend, eid = make_backend(rec, max_concurrent_requests=8)
    out = await asyncio.wait_for(backend.agenerate("lonely", endpoint_id=eid), timeout=2.0)
    assert out.text == "Hello from LLVM"
    assert len(rec.requests) == 1
    await backend.aclose()


@pytest.mark.asyncio
async def test_concurrent_generates_are_separate_requests() -> None:
    """Concurrent calls, for one model or several, each become their own /infer request."""
    rec = Recorder(lambda r: httpx2.Response(200, json={"result": json.loads(r.content)["input"]}))
    backend, eid = make_backend(rec, max_concurrent_requests=8)
    prompts = [f"p{i}" for i in range(6)]
    outs = await asyncio.gather(*(
        backend.agenerate(p, model=f"m{i % 2}", endpoint_id=eid) for i, p in enumerate(prompts)
    ))
    assert [o.text for o in outs] == prompts
    assert len(rec.requests) == 6
    assert all(r.url.path.endswith("/infer") for r in rec.requests)
    await backend.aclose()


@pytest.mark.asyncio
async def test_async_invoke_and_achat() -> None:
    """ainvoke and achat send the same requests as their sync forms."""
    rec = Recorder()
    backend, eid = make_backend(rec)
    out = await backend.achat([{"role": "user", "content": "Hi"}], endpoint_id=eid)
    assert rec.body() == {"input": "user: Hi\nassistant:"}
    assert out.text == "Hello from LLVM"
    info = await backend.ainvoke("infer", endpoint_id=eid, input=[1, 2, 3])
    assert rec.body() == {"input": [1, 2, 3]}
    assert info.data == INFER_ANSWER
    await backend.aclose()

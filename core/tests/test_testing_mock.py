"""The kit's unit-test helpers: Recorder, mock_backend, FAST_RETRIES and openai_chat_case."""

from __future__ import annotations

import threading

import _echo_plugin
import httpx2
import pytest
from ipfs_accel import RateLimitError, TransportError
from ipfs_accel.testing import (
    FAST_RETRIES,
    BackendConformance,
    Recorder,
    Reply,
    chat_call,
    mock_backend,
    openai_chat_case,
    openai_sse,
)

OK = {
    "model": "echo-1",
    "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def _client(recorder: Recorder) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(recorder))


def test_recorder_answers_in_turn_and_the_last_repeats() -> None:
    """Answers go out in order; once they run out the last one repeats (readable each time)."""
    recorder = Recorder(httpx2.Response(500, text="first"), httpx2.Response(200, json={"n": 2}))
    with _client(recorder) as client:
        got = [client.get("http://x.test/") for _ in range(4)]
    assert [r.status_code for r in got] == [500, 200, 200, 200]
    assert got[0].text == "first"
    assert [r.json() for r in got[1:]] == [{"n": 2}] * 3
    assert len(recorder.requests) == 4


def test_recorder_records_requests_and_json_bodies() -> None:
    """Each request is kept in order; ``body`` decodes one, ``last`` is the latest."""
    recorder = Recorder(httpx2.Response(204))
    with _client(recorder) as client:
        client.post("http://x.test/a", json={"i": 0})
        client.post("http://x.test/b", json={"i": 1}, headers={"x-k": "v"})
    assert [r.url.path for r in recorder.requests] == ["/a", "/b"]
    assert recorder.body(0) == {"i": 0}
    assert recorder.body() == {"i": 1}
    assert recorder.last.headers["x-k"] == "v"


def test_recorder_calls_handlers_and_raises_exceptions() -> None:
    """A callable answer is called with the request; an exception answer is raised."""
    boom = httpx2.ConnectError("refused")
    recorder = Recorder(boom, lambda request: httpx2.Response(200, text=request.url.path))
    with _client(recorder) as client:
        with pytest.raises(httpx2.ConnectError):
            client.get("http://x.test/one")
        assert client.get("http://x.test/two").text == "/two"
        assert client.get("http://x.test/three").text == "/three"
    assert len(recorder.requests) == 3


def test_recorder_passes_an_unread_stream_through() -> None:
    """A response whose body is a stream is sent as it is, not read into a copy first."""
    def chunks() -> object:
        yield b"data: 1\n\n"
        raise httpx2.ReadError("cut")
    response = httpx2.Response(200, content=chunks())  # type: ignore[arg-type]  # a generator
    recorder = Recorder(response)
    with _client(recorder) as client, client.stream("GET", "http://x.test/") as got:
        assert got is response
        with pytest.raises(httpx2.ReadError):
            got.read()


def test_recorder_is_thread_safe() -> None:
    """Concurrent calls are all recorded and each gets its own answer."""
    recorder = Recorder(*[httpx2.Response(200, text=str(i)) for i in range(50)])
    with _client(recorder) as client:
        threads = [threading.Thread(target=client.get, args=("http://x.test/",))
                   for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(recorder.requests) == 50


def test_recorder_without_answers_fails_a_request_it_gets() -> None:
    """A Recorder with no answers (no request expected) records one and then refuses it."""
    recorder = Recorder()
    with _client(recorder) as client, pytest.raises(LookupError, match="no answer for GET"):
        client.get("http://x.test/")
    assert len(recorder.requests) == 1


def test_mock_backend_routes_http_to_the_handler_with_fast_retries() -> None:
    """The plugin's backend sends through the handler; FAST_RETRIES keeps 429 retries quick."""
    recorder = Recorder(
        httpx2.Response(429, json={"error": {"message": "slow"}}, headers={"retry-after": "0"}),
        httpx2.Response(200, json=OK),
    )
    backend = mock_backend(_echo_plugin, recorder)
    assert backend.info.name == "echo"
    eid = backend.create_endpoint(api_key="k1", **FAST_RETRIES)
    result = chat_call(backend, eid, "req-1")
    assert result.request_id == "req-1"
    assert len(recorder.requests) == 2
    assert recorder.last.headers["authorization"] == "Bearer k1"
    assert FAST_RETRIES == {"initial_retry_delay": 0.001, "max_retry_delay": 0.01}


def test_mock_backend_reads_only_the_given_environ() -> None:
    """The process environment never reaches the backend; ``environ`` replaces it."""
    recorder = Recorder(httpx2.Response(200, json=OK))
    backend = mock_backend(_echo_plugin, recorder, environ={})
    eid = backend.create_endpoint(api_key="only-this", **FAST_RETRIES)
    chat_call(backend, eid, "req-2")
    assert recorder.last.headers["authorization"] == "Bearer only-this"


def test_mock_backend_applies_endpoint_defaults() -> None:
    """Keyword defaults reach every endpoint of the backend, as with Registry.get."""
    recorder = Recorder(httpx2.Response(200, json=OK))
    backend = mock_backend(_echo_plugin, recorder, api_key="from-defaults", **FAST_RETRIES)
    chat_call(backend, backend.create_endpoint(), "req-5")
    assert recorder.last.headers["authorization"] == "Bearer from-defaults"


def test_mock_backend_surfaces_a_transport_failure() -> None:
    """An exception answer becomes the core's TransportError after the retries."""
    recorder = Recorder(httpx2.ConnectError("refused"))
    backend = mock_backend(_echo_plugin, recorder)
    eid = backend.create_endpoint(api_key="k", max_retries=1, **FAST_RETRIES)
    with pytest.raises(TransportError):
        chat_call(backend, eid, "req-3")
    assert len(recorder.requests) == 2


def test_mock_backend_honours_rate_limit_classification() -> None:
    """A 429 that never clears raises RateLimitError once the retries are spent."""
    recorder = Recorder(httpx2.Response(429, json={"error": {"message": "slow"}}))
    backend = mock_backend(_echo_plugin, recorder)
    eid = backend.create_endpoint(api_key="k", max_retries=2, **FAST_RETRIES)
    with pytest.raises(RateLimitError):
        chat_call(backend, eid, "req-4")
    assert len(recorder.requests) == 3


def test_openai_chat_case_builds_a_chat_completion() -> None:
    """The canned success is a chat.completion naming the model, usage 9/3, plus extras."""
    case = openai_chat_case(backend="b", plugin="p", model="m-1", extra={"x_groq": {"id": "r"}})
    assert case.backend == "b"
    assert case.plugin == "p"
    assert case.tokens == (9, 3)
    assert case.auth == ("authorization", "Bearer {key}")
    assert case.request_id_header == "x-request-id"
    assert case.call is chat_call
    assert isinstance(case.success, Reply)
    assert case.success.status == 200
    body = case.success.json
    assert body["object"] == "chat.completion"
    assert body["model"] == "m-1"
    assert body["choices"] == [{
        "index": 0, "message": {"role": "assistant", "content": "pong"},
        "logprobs": None, "finish_reason": "stop",
    }]
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    assert body["x_groq"] == {"id": "r"}


def test_openai_chat_case_passes_the_case_fields_through() -> None:
    """auth, call, request_id_header and settings reach the Case unchanged."""
    def call(backend: object, endpoint_id: str, request_id: str) -> None:
        return None
    case = openai_chat_case(
        backend="b", model="m", auth=("x-api-key", "{key}"), call=call,
        request_id_header="x-client-request-id", settings={"model": "m"},
    )
    assert case.plugin is None
    assert case.auth == ("x-api-key", "{key}")
    assert case.call is call
    assert case.request_id_header == "x-client-request-id"
    assert dict(case.settings) == {"model": "m"}


def test_openai_sse_encodes_events_and_ends_with_done() -> None:
    """JSON events each on a data: line, a str as it is, then data: [DONE] unless cut."""
    assert openai_sse({"a": 1}, "{not json") == (
        b'data: {"a": 1}\n\ndata: {not json\n\ndata: [DONE]\n\n'
    )
    assert openai_sse({"a": 1}, done=False) == b'data: {"a": 1}\n\n'
    assert openai_sse(done=False) == b""


class TestOpenAIChatCaseConformance(BackendConformance):
    """An openai_chat_case drives a real backend through the whole suite (echo reads OpenAI)."""

    case = openai_chat_case(backend="echo", plugin=_echo_plugin, model="echo-1")

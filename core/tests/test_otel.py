"""OpenTelemetry: the spans, events and metric points of a chat, a stream, an embed, a
retried call, a failed call and a pool's failover, read back from the SDK's in-memory
exporter and metric reader; ``traceparent`` on the wire; no key in anything exported;
nothing at all without a provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import _echo_plugin
import httpx2
import pytest
from ipfs_accel import AuthenticationError, BadRequestError, Registry
from ipfs_accel.testing import import_or_skip

import_or_skip("opentelemetry.sdk")  # the SDK the tests read back with: skip, or fail under CI

from ipfs_accel import _otel  # noqa: E402
from ipfs_accel.otel import OtelObserver  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

KEY = "sk-canary-" + "c" * 30
MSG = [{"role": "user", "content": "secret prompt text"}]
OK = {"id": "chatcmpl-42", "model": "echo-1-0601",
      "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
SSE = (b'data: {"model": "echo-1-0601", "choices": [{"delta": {"content": "h"}, '
       b'"finish_reason": null}]}\n\n'
       b'data: {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}], '
       b'"usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}\n\n'
       b"data: [DONE]\n\n")
Handler = Callable[[httpx2.Request], httpx2.Response]


class Telemetry:
    """A tracer and a meter provider of the SDK's, read back in memory."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.seen: list[httpx2.Request] = []

    def backend(self, handler: Handler, *, capture: bool | None = None, **settings: Any) -> Any:
        def seen(request: httpx2.Request) -> httpx2.Response:
            self.seen.append(request)
            return handler(request)

        observer = OtelObserver(tracer_provider=self.tracer_provider,
                                meter_provider=self.meter_provider, capture_content=capture)
        registry = Registry(plugins=[_echo_plugin], entry_points=False, telemetry=False,
                            observers=[observer], transport=httpx2.MockTransport(seen),
                            async_transport=httpx2.MockTransport(seen))
        backend = registry.get("echo")
        backend.create_endpoint("e", base_url="https://echo.test:8443/v1", api_key=KEY,
                                max_retries=2, initial_retry_delay=0.001, retry_jitter=0,
                                **settings)
        return backend

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def call_span(self) -> ReadableSpan:
        calls = [s for s in self.spans() if s.kind is SpanKind.CLIENT]
        assert len(calls) == 1, [s.name for s in self.spans()]
        return calls[0]

    def attempts(self) -> list[ReadableSpan]:
        return sorted((s for s in self.spans() if s.name.startswith("attempt ")),
                      key=lambda s: s.attributes["ipfs_accel.attempt"])

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def _ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json=OK)


def _answers(*replies: httpx2.Response) -> Handler:
    left = list(replies)
    return lambda request: left.pop(0) if len(left) > 1 else left[0]


# -- one call, one span ------------------------------------------------------------------


def test_a_chat_is_one_client_span_with_the_conventions_attributes(otel: Telemetry) -> None:
    backend = otel.backend(_ok)
    backend.chat(MSG, max_tokens=50, temperature=0.2, top_p=0.9, stop=["\n"])
    span = otel.call_span()
    assert span.name == "chat echo-1"
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "echo"  # BackendInfo.provider
    assert a["gen_ai.request.model"] == "echo-1"
    assert (a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"],
            a["gen_ai.request.top_p"]) == (50, 0.2, 0.9)
    assert list(a["gen_ai.request.stop_sequences"]) == ["\n"]
    assert (a["server.address"], a["server.port"]) == ("echo.test", 8443)
    assert a["gen_ai.response.model"] == "echo-1-0601"
    assert a["gen_ai.response.id"] == "chatcmpl-42"
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (7, 3)
    assert span.status.status_code is not StatusCode.ERROR
    [attempt] = otel.attempts()
    assert attempt.parent is not None and attempt.parent.span_id == span.context.span_id
    assert attempt.attributes["ipfs_accel.endpoint_id"] == "e"
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.attributes["gen_ai.response.model"] == "echo-1-0601"
    assert "error.type" not in duration.attributes
    tokens = {p.attributes["gen_ai.token.type"]: p.sum
              for p in otel.points("gen_ai.client.token.usage")}
    assert tokens == {"input": 7, "output": 3}


def test_the_attempt_carries_its_span_as_traceparent_unless_told_not_to(otel: Telemetry) -> None:
    otel.backend(_ok).chat(MSG)
    [attempt] = otel.attempts()
    header = otel.seen[-1].headers["traceparent"]
    _, trace_id, span_id, _ = header.split("-")
    assert int(trace_id, 16) == attempt.context.trace_id
    assert int(span_id, 16) == attempt.context.span_id
    otel.backend(_ok, propagate_trace=False).chat(MSG)
    assert "traceparent" not in otel.seen[-1].headers


def test_an_embed_is_an_embeddings_span(otel: Telemetry) -> None:
    def embeddings(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"model": "echo-embed", "data": [
            {"index": 0, "embedding": [0.1, 0.2]}], "usage": {"prompt_tokens": 2,
                                                               "total_tokens": 2}})

    asyncio.run(otel.backend(embeddings).aembed(["a"], model="echo-embed"))
    span = otel.call_span()
    assert span.name == "embeddings echo-embed"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == 2


# -- streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_ends_its_span_with_the_stream(otel: Telemetry, mode: str) -> None:
    backend = otel.backend(lambda r: httpx2.Response(200, content=SSE))
    if mode == "sync":
        stream = backend.stream_chat(MSG)
        assert next(iter(stream)).delta == "h"
        # the attempt (opening the stream) is over; the call is open while the stream is
        assert [s.name for s in otel.spans()] == ["attempt 1"]
        assert "".join(c.delta for c in stream) == "i"
    else:
        async def read() -> str:
            return "".join([c.delta async for c in backend.astream_chat(MSG)])
        assert asyncio.run(read()) == "hi"
    span = otel.call_span()
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.output_tokens"] == 2
    [first] = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1


# -- retries, failures, failover --------------------------------------------------------------


def test_a_retried_call_shows_each_attempt_and_why_the_next_waited(otel: Telemetry) -> None:
    backend = otel.backend(_answers(
        httpx2.Response(500, json={"error": {"message": "boom"}}),
        httpx2.Response(429, headers={"retry-after": "0.01"}, json={"error": {"message": "x"}}),
        httpx2.Response(200, json=OK)))
    assert backend.chat(MSG).text == "hi"
    span = otel.call_span()
    first, second, third = otel.attempts()
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["error.type"] == "ServerError"
    assert second.attributes["error.type"] == "RateLimitError"
    assert "error.type" not in third.attributes
    waits = [e.attributes for e in span.events if e.name == "ipfs_accel.wait"]
    assert [w["ipfs_accel.wait.reason"] for w in waits] == ["backoff", "retry-after"]
    assert span.attributes["ipfs_accel.attempts"] == 3
    reasons = {p.attributes["ipfs_accel.wait.reason"]: p.value
               for p in otel.points("ipfs_accel.waits")}
    assert reasons == {"backoff": 1, "retry-after": 1}


def test_a_failed_call_is_an_error_span_and_a_duration_with_its_type(otel: Telemetry) -> None:
    backend = otel.backend(lambda r: httpx2.Response(400, json={"error": {"message": "bad"}}))
    with pytest.raises(BadRequestError):
        backend.chat(MSG)
    span = otel.call_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "BadRequestError"
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "BadRequestError"


def test_a_pool_call_is_one_span_whose_attempts_name_their_members(otel: Telemetry) -> None:
    def by_host(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "down.test":
            return httpx2.Response(503, json={"error": {"message": "overloaded"}})
        return httpx2.Response(200, json=OK)

    backend = otel.backend(by_host)
    backend.create_endpoint("down", base_url="http://down.test", api_key=KEY)
    backend.create_endpoint("up", base_url="http://up.test", api_key=KEY)
    pool = Registry(plugins=[], entry_points=False, telemetry=False).pool(
        [(backend, "down"), (backend, "up")], strategy="ordered")
    assert pool.chat(MSG).text == "hi"
    span = otel.call_span()
    attempts = otel.attempts()
    assert [a.attributes["ipfs_accel.endpoint_id"] for a in attempts] == ["down", "up"]
    assert all(a.parent.span_id == span.context.span_id for a in attempts)
    assert attempts[0].attributes["error.type"] == "OverloadedError"
    assert span.attributes["ipfs_accel.endpoint_id"] == "up"
    assert span.attributes["ipfs_accel.attempts"] == 2
    [moved] = [e.attributes for e in span.events if e.name == "ipfs_accel.failover"]
    assert (moved["ipfs_accel.failover.from"], moved["ipfs_accel.failover.to"]) == ("down", "up")
    [failovers] = otel.points("ipfs_accel.failovers")
    assert failovers.value == 1


# -- what is never exported --------------------------------------------------------------------


def test_no_key_and_no_message_in_anything_exported(otel: Telemetry) -> None:
    backend = otel.backend(_answers(httpx2.Response(401, json={"error": {"message": KEY}}),
                                    httpx2.Response(200, content=SSE)))
    with pytest.raises(AuthenticationError):  # the server echoes the key in its message
        backend.chat(MSG)
    assert "".join(c.delta for c in backend.stream_chat(MSG)) == "hi"
    exported = json.dumps([json.loads(s.to_json()) for s in otel.spans()])
    exported += otel.reader.get_metrics_data().to_json()
    assert otel.spans()
    assert KEY not in exported
    assert "secret prompt text" not in exported


def test_nothing_without_a_provider() -> None:
    """The API alone (no provider set): the observer follows no call."""
    from ipfs_accel._observe import CallStart  # noqa: PLC0415
    from ipfs_accel._types import Call  # noqa: PLC0415
    from opentelemetry import metrics, trace  # noqa: PLC0415

    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider" or \
            type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider":
        pytest.skip("a global provider was set in this process")
    start = CallStart(Call(operation="chat"), backend="echo", provider="echo", endpoint_id="e",
                      server=None, stream=False, pooled=False)
    assert OtelObserver().start(start) is None
    registry = Registry(plugins=[_echo_plugin], entry_points=False)
    assert any(isinstance(o, OtelObserver) for o in registry._observers)
    assert not Registry(plugins=[_echo_plugin], entry_points=False, telemetry=False)._observers


def test_message_contents_only_when_the_application_opts_in(
        otel: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conventions' switch: off by default; on (by argument or by the environment),
    the input messages and the answer's message ride on the call's span, as JSON."""
    otel.backend(_ok).chat(MSG)
    assert "gen_ai.input.messages" not in otel.call_span().attributes
    otel.spans_out.clear()
    otel.backend(_ok, capture=True).chat(MSG)
    a = otel.call_span().attributes
    assert json.loads(a["gen_ai.input.messages"]) == MSG
    assert json.loads(a["gen_ai.output.messages"])[0]["content"] == "hi"
    otel.spans_out.clear()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    otel.backend(_ok).chat(MSG)
    assert "secret prompt text" in otel.call_span().attributes["gen_ai.input.messages"]


@pytest.mark.parametrize("mode", ["sync", "async", "pool"])
def test_a_streamed_answer_is_captured_only_when_opted_in(otel: Telemetry, mode: str) -> None:
    """With content opted in, a chat stream's answer, gathered from its chunks as they pass,
    rides on its span as the output message (a pool's stream too); without, no chunk is
    even told to the observer."""
    def read(backend: Any) -> str:
        if mode == "sync":
            return "".join(c.delta for c in backend.stream_chat(MSG))
        if mode == "async":
            async def chunks() -> str:
                return "".join([c.delta async for c in backend.astream_chat(MSG)])
            return asyncio.run(chunks())
        pool = Registry(plugins=[], entry_points=False, telemetry=False).pool([(backend, "e")])
        return "".join(c.delta for c in pool.stream_chat(MSG))

    told: list[Any] = []
    real_chunk = _otel._Call.chunk

    def chunk(self: Any, c: Any) -> None:
        told.append(c)
        real_chunk(self, c)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_otel._Call, "chunk", chunk)
        assert read(otel.backend(lambda r: httpx2.Response(200, content=SSE))) == "hi"
        assert "gen_ai.output.messages" not in otel.call_span().attributes
        assert told == []
        otel.spans_out.clear()
        assert read(otel.backend(lambda r: httpx2.Response(200, content=SSE),
                                 capture=True)) == "hi"
    [message] = json.loads(otel.call_span().attributes["gen_ai.output.messages"])
    assert message == {"role": "assistant", "content": "hi"}
    assert "".join(c.delta for c in told) == "hi" and told[-1].done

"""OpenTelemetry: spans and metrics of every call, per the GenAI semantic conventions.

Needs only ``opentelemetry-api`` (``pip install 'ipfs-accel-core[otel]'``); the application
brings the SDK and its exporters and sets a tracer and/or meter provider. Until it does,
:meth:`OtelObserver.start` answers ``None`` and the core skips every event of the call.

A call is one CLIENT span ``{gen_ai.operation.name} {gen_ai.request.model}`` with the
conventions' attributes; each attempt is a child span (the endpoint it ran on, its status,
its error) whose context the attempt's request carries as W3C ``traceparent``; the call's
waits are events on the call's span (``ipfs_accel.queued``, ``ipfs_accel.wait`` with its
reason and seconds, ``ipfs_accel.failover`` when a pool's call moves to another member).
Message contents are not recorded unless the application opts in (``capture_content=True``
or the conventions' ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``: the input
messages and the answer, a unary result's message or a chat stream's gathered from its
chunks, as ``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON); a key never is:
the server is known by host and port only, an error by its type.

Metrics: ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for
streams, ``gen_ai.client.operation.time_to_first_chunk``; and the core's own, under
``ipfs_accel.``: attempts in flight and calls queued per endpoint, queue wait, waits by
reason (retries, pauses, pacing), failovers and calls rejected with the queue full.
Attribute sets stay bounded: backend, endpoint, model, reason; never a request ID.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from ._chatstream import _Answer
from ._errors import CallError, QueueFullError
from ._observe import CallStart, Observation, Observer

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["OtelObserver"]

_monotonic = time.monotonic
_SCOPE = "ipfs_accel"
_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_RECHECK = 1.0  # seconds between asking OpenTelemetry whether a provider was set
_OPERATIONS = {"chat": "chat", "stream_chat": "chat", "generate": "text_completion",
               "stream_generate": "text_completion", "embed": "embeddings"}
_PARAMS = (("max_tokens", "gen_ai.request.max_tokens"),
           ("temperature", "gen_ai.request.temperature"),
           ("top_p", "gen_ai.request.top_p"))
# the conventions' advice for the buckets of their histograms
_SECONDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
            81.92]
_TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
           67108864]


def _version() -> str:
    from . import __version__  # noqa: PLC0415 - the package imports this module's importer

    return __version__


def _noop(provider: object) -> bool:
    """A provider that records nothing: the API's stand-in until one is set, or a no-op."""
    return type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider",
                                       "_ProxyMeterProvider", "NoOpMeterProvider")


class _Instruments:
    """The metric instruments, made once per meter provider."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_SECONDS)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKENS)
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=_SECONDS)
        self.in_flight = meter.create_up_down_counter(
            "ipfs_accel.attempts.in_flight", unit="{attempt}",
            description="Attempts sent to an endpoint and not yet answered")
        self.queued = meter.create_up_down_counter(
            "ipfs_accel.calls.queued", unit="{call}",
            description="Calls waiting in an endpoint's queue")
        self.queue_wait = meter.create_histogram(
            "ipfs_accel.queue.wait", unit="s", description="Time calls waited in the queue",
            explicit_bucket_boundaries_advisory=_SECONDS)
        self.waits = meter.create_counter(
            "ipfs_accel.waits", unit="{wait}",
            description="Waits before an attempt, by reason (backoff, retry-after, pause, "
                        "pace, spent, shared, no member ready)")
        self.wait_time = meter.create_histogram(
            "ipfs_accel.wait.duration", unit="s", description="Time waited before attempts",
            explicit_bucket_boundaries_advisory=_SECONDS)
        self.failovers = meter.create_counter(
            "ipfs_accel.failovers", unit="{attempt}",
            description="Attempts of a pool's call moved to another member")
        self.rejected = meter.create_counter(
            "ipfs_accel.calls.rejected", unit="{call}",
            description="Calls refused at once, their endpoint's queue full")


class OtelObserver(Observer):
    """Traces and measures calls through the global tracer and meter providers, or the
    ones given (a Registry has one on the global providers when the API is installed;
    give ``Registry(observers=[OtelObserver(tracer_provider=...)])`` for others)."""

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None,
                 capture_content: bool | None = None) -> None:
        self._given = (tracer_provider, meter_provider)
        # the conventions' opt-in: messages on the spans (None: the environment says)
        self.capture_content = (os.environ.get(_CAPTURE, "").strip().lower() in ("true", "1")
                                if capture_content is None else capture_content)
        self._tracer_provider: object = None
        self._tracer: trace.Tracer | None = None
        self._meter_provider: object = None
        self._instruments: _Instruments | None = None
        self._on = False
        self._checked_until = 0.0

    def _now(self) -> tuple[trace.Tracer | None, _Instruments | None]:
        """The tracer and instruments of the providers set now (``None``: none set)."""
        provider = self._given[0] or trace.get_tracer_provider()
        if provider is not self._tracer_provider:
            self._tracer = (None if _noop(provider)
                            else provider.get_tracer(_SCOPE, _version()))
            self._tracer_provider = provider
        meters = self._given[1] or metrics.get_meter_provider()
        if meters is not self._meter_provider:
            self._instruments = (None if _noop(meters)
                                 else _Instruments(meters.get_meter(_SCOPE, _version())))
            self._meter_provider = meters
        return self._tracer, self._instruments

    def following(self) -> bool:
        """Whether a provider is set; asked of OpenTelemetry at most every ``_RECHECK``
        seconds (a provider set after the first calls is seen that much later)."""
        now = _monotonic()
        if now >= self._checked_until:
            tracer, instruments = self._now()
            self._on = tracer is not None or instruments is not None
            self._checked_until = now + _RECHECK
        return self._on

    def start(self, info: CallStart) -> Observation | None:
        if not self.following():
            return None
        return _Call(info, self._tracer, self._instruments, capture=self.capture_content)


def _server(server: tuple[str, int | None] | None) -> dict[str, Any]:
    if server is None:
        return {}
    host, port = server
    return {"server.address": host} if port is None else {"server.address": host,
                                                          "server.port": port}


class _Call(Observation):
    """One call: its span, its attempts' spans, its metrics."""

    def __init__(self, info: CallStart, tracer: trace.Tracer | None,
                 instruments: _Instruments | None, *, capture: bool = False) -> None:
        self.started = _monotonic()
        self.tracer = tracer
        self.m = instruments
        call = info.call
        operation = _OPERATIONS.get(call.operation, call.operation)
        self.metric_attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.provider.name": info.provider,
            **_server(info.server)}
        if call.model:
            self.metric_attrs["gen_ai.request.model"] = call.model
        self.backend = info.backend
        self.endpoint_id = info.endpoint_id
        self.attempts = 0
        self.summary: Any = None
        self.capture = capture
        # with content opted in, a chat stream's answer gathered from its chunks
        self.answer = _Answer() if capture and info.stream and operation == "chat" else None
        self.wants_chunks = self.answer is not None
        self.attempt_span: trace.Span | None = None
        self.span: trace.Span | None = None
        if tracer is not None:
            attrs = dict(self.metric_attrs)
            attrs.update(_requested(call.params))
            attrs["ipfs_accel.backend"] = info.backend
            attrs["ipfs_accel.request_id"] = call.request_id
            if info.stream:
                attrs["gen_ai.request.stream"] = True  # not in the conventions' registry yet
            if capture:
                attrs.update(_input(call))
            name = f"{operation} {call.model}" if call.model else operation
            self.span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
            self.context = trace.set_span_in_context(self.span)

    def _labels(self, endpoint_id: str | None = None) -> dict[str, Any]:
        return {"ipfs_accel.backend": self.backend,
                "ipfs_accel.endpoint_id": endpoint_id or self.endpoint_id}

    # -- the queue -----------------------------------------------------------------------

    def queued(self) -> None:
        if self.span is not None:
            self.span.add_event("ipfs_accel.queued", {"ipfs_accel.endpoint_id": self.endpoint_id})
        if self.m is not None:
            self.m.queued.add(1, self._labels())

    def dequeued(self, waited: float) -> None:
        if self.span is not None:
            self.span.add_event("ipfs_accel.dequeued", {"ipfs_accel.wait.seconds": waited})
            self.span.set_attribute("ipfs_accel.queue.wait", waited)
        if self.m is not None:
            self.m.queued.add(-1, self._labels())
            self.m.queue_wait.record(waited, self._labels())

    # -- attempts ------------------------------------------------------------------------

    def attempt(self, endpoint_id: str, server: tuple[str, int | None] | None,
                ) -> dict[str, str] | None:
        self.attempts += 1
        moved = self.attempts > 1 and endpoint_id != self.endpoint_id
        if moved:  # a pool's call goes on on another member
            if self.span is not None:
                self.span.add_event("ipfs_accel.failover", {
                    "ipfs_accel.failover.from": self.endpoint_id,
                    "ipfs_accel.failover.to": endpoint_id})
            if self.m is not None:
                self.m.failovers.add(1, {"ipfs_accel.backend": self.backend})
        self.endpoint_id = endpoint_id
        if self.m is not None:
            self.m.in_flight.add(1, self._labels(endpoint_id))
        if self.tracer is None:
            return None
        self._close_attempt(None, None)
        span = self.attempt_span = self.tracer.start_span(
            f"attempt {self.attempts}", context=self.context, kind=SpanKind.INTERNAL,
            attributes={"ipfs_accel.attempt": self.attempts,
                        "ipfs_accel.endpoint_id": endpoint_id, **_server(server)})
        headers: dict[str, str] = {}
        propagate.inject(headers, context=trace.set_span_in_context(span))
        return headers or None

    def attempt_end(self, error: BaseException | None, status: int | None = None) -> None:
        if self.m is not None:
            self.m.in_flight.add(-1, self._labels())
        self._close_attempt(error, status)

    def _close_attempt(self, error: BaseException | None, status: int | None) -> None:
        span, self.attempt_span = self.attempt_span, None
        if span is None:
            return
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if error is not None:
            span.set_attribute("error.type", _error_type(error))
            span.set_status(StatusCode.ERROR, _error_type(error))
        span.end()

    def wait(self, seconds: float, reason: str) -> None:
        if self.span is not None:  # told when over: the event is dated when it began
            self.span.add_event("ipfs_accel.wait", {"ipfs_accel.wait.reason": reason,
                                                    "ipfs_accel.wait.seconds": seconds},
                                timestamp=time.time_ns() - int(seconds * 1e9))
        if self.m is not None:
            labels = {"ipfs_accel.backend": self.backend, "ipfs_accel.wait.reason": reason}
            self.m.waits.add(1, labels)
            self.m.wait_time.record(seconds, labels)

    # -- the end -------------------------------------------------------------------------

    def first_chunk(self) -> None:
        took = _monotonic() - self.started
        if self.span is not None:
            self.span.set_attribute("gen_ai.response.time_to_first_chunk", took)
        if self.m is not None:
            self.m.first_chunk.record(took, self.metric_attrs)

    def chunk(self, chunk: Any) -> None:
        if self.answer is not None:
            self.answer.add(chunk)

    def streamed(self, summary: Any) -> None:
        self.summary = summary

    def end(self, result: Any, error: BaseException | None) -> None:
        took = _monotonic() - self.started
        if self.attempt_span is not None:  # the call ended between attempts' events
            self._close_attempt(error, None)
        found = _response(result if result is not None else self.summary)
        attrs = dict(self.metric_attrs)
        if "gen_ai.response.model" in found:
            attrs["gen_ai.response.model"] = found["gen_ai.response.model"]
        if error is not None:
            attrs["error.type"] = _error_type(error)
        if self.m is not None:
            self.m.duration.record(took, attrs)
            for kind, key in (("input", "gen_ai.usage.input_tokens"),
                              ("output", "gen_ai.usage.output_tokens")):
                if key in found:
                    self.m.tokens.record(found[key], {**attrs, "gen_ai.token.type": kind})
            if isinstance(error, QueueFullError):
                self.m.rejected.add(1, self._labels())
        span = self.span
        if span is None:
            return
        span.set_attributes(found)
        if self.capture and error is None:
            answer = self.answer
            message = (answer.result().message if answer is not None and answer.done
                       else getattr(result, "message", None))
            if isinstance(message, dict):
                span.set_attribute("gen_ai.output.messages", _json([message]))
        span.set_attribute("ipfs_accel.attempts", self.attempts)
        span.set_attribute("ipfs_accel.endpoint_id", self.endpoint_id)
        if error is not None:
            span.set_attribute("error.type", attrs["error.type"])
            span.set_status(StatusCode.ERROR, attrs["error.type"])
        span.end()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _input(call: Any) -> dict[str, Any]:
    """The call's input as the conventions' opt-in attributes: its messages (a prompt as
    one user message), or the texts to embed."""
    if call.messages is not None:
        return {"gen_ai.input.messages": _json(call.messages)}
    if call.prompt is not None:
        return {"gen_ai.input.messages": _json([{"role": "user", "content": call.prompt}])}
    if call.inputs is not None:
        return {"gen_ai.input.messages": _json([{"role": "user", "content": text}
                                                for text in call.inputs])}
    return {}


def _requested(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, key in _PARAMS:
        value = params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    stop = params.get("stop")
    if isinstance(stop, str):
        out["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        out["gen_ai.request.stop_sequences"] = list(stop)
    return out


def _response(result: Any) -> dict[str, Any]:
    """What a result (or a stream's reader) says of the response, as span attributes."""
    out: dict[str, Any] = {}
    if result is None:
        return out
    model = getattr(result, "model", None)
    if isinstance(model, str) and model:
        out["gen_ai.response.model"] = model
    raw = getattr(result, "raw", None)
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        out["gen_ai.response.id"] = raw["id"]
    finish = getattr(result, "finish_reason", None)
    if isinstance(finish, str):
        out["gen_ai.response.finish_reasons"] = [finish]
    usage = getattr(result, "usage", None)
    if usage is not None:
        if usage.input_tokens:
            out["gen_ai.usage.input_tokens"] = usage.input_tokens
        if usage.output_tokens:
            out["gen_ai.usage.output_tokens"] = usage.output_tokens
    return out


def _error_type(error: BaseException) -> str:
    """The error's class name (low-cardinality, never its message); a call abandoned by its
    caller (cancelled, a stream closed early) is ``cancelled``."""
    if not isinstance(error, Exception):
        return "cancelled"
    return type(error).__name__ if isinstance(error, CallError) else type(error).__qualname__

"""The telemetry check's recordings, and its calls that are retried and that fail.

A :class:`Recording` is a backend followed by an ``OtelObserver`` on in-memory providers of
its own: what one part of the check exported (spans, metrics), read back once its calls
are over, and searched for the run's keys before anything else is compared.

:func:`retried_call` makes the case's call answered with its ``rate_limited`` reply
(``Retry-After: 0``) and then its success: one CLIENT span, not an error, with
``ipfs_accel.attempts`` 2; two attempt spans, the first an error (``error.type``, the 429's
``http.response.status_code``), the second not, each named by its request's
``traceparent``; an ``ipfs_accel.wait`` event for the wait between them, with its reason,
counted in ``ipfs_accel.waits``. :func:`failed_call` makes it answered with the case's
``bad_request``: the CLIENT span an ERROR whose ``error.type`` is the core's error class,
its attempt span too, and a ``gen_ai.client.operation.duration`` point carrying that
``error.type``.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

from .._backend import Backend
from .._http import HTTP
from ._run import CheckFailed, CheckRun, expect, serving, skip, with_retry_after

__all__ = ["RETRY_REASONS", "Recording", "call_span", "failed_call", "retried_call"]

RETRY_REASONS = ("retry-after", "backoff")
"""The reasons ``ipfs_accel.wait`` gives for the wait before a retry."""

# a retry's wait, as short as it can be: the check never sleeps for long
_TINY: dict[str, Any] = {"initial_retry_delay": 0.001, "max_retry_delay": 0.001,
                         "backoff_factor": 1.0, "retry_jitter": 0.0}


def _sdk() -> Any:
    try:
        from opentelemetry.sdk import metrics, trace  # noqa: PLC0415 - an optional extra
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
            InMemorySpanExporter,
        )
    except ImportError:
        skip("needs OpenTelemetry's SDK to read spans back: pip install opentelemetry-sdk "
             "'ipfs-accel-core[otel]'")
    spans = InMemorySpanExporter()
    tracer_provider = trace.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    return spans, tracer_provider, reader, metrics.MeterProvider(metric_readers=[reader])


class Recording:
    """``with Recording(run, hooks) as rec:`` calls through ``rec.backend``; after the block,
    ``rec.finished`` (the spans), ``rec.exported`` (everything as exported, as text) and
    :meth:`points`. Skips the check without OpenTelemetry's SDK."""

    def __init__(self, run: CheckRun, hooks: Any) -> None:
        self._spans, self._tracer_provider, self._reader, self._meter_provider = _sdk()
        from .._otel import OtelObserver  # noqa: PLC0415 - needs opentelemetry-api

        observer = OtelObserver(tracer_provider=self._tracer_provider,
                                meter_provider=self._meter_provider, capture_content=False)
        self.backend = Backend(hooks, http=HTTP(), observers=[observer])
        run.backends.append(self.backend)
        self.finished: list[Any] = []
        self.exported = ""
        self._data: Any = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.finished = list(self._spans.get_finished_spans())
            self.exported = json.dumps([json.loads(s.to_json()) for s in self.finished])
            self._data = self._reader.get_metrics_data()
            self.exported += self._data.to_json() if self._data is not None else ""
        finally:
            self._tracer_provider.shutdown()
            self._meter_provider.shutdown()

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name``."""
        data = self._data
        return [p for r in (data.resource_metrics if data else ()) for s in r.scope_metrics
                for m in s.metrics if m.name == name for p in m.data.data_points]

    def calls(self) -> list[Any]:
        """The CLIENT spans (one per call), in the order the calls started."""
        spans = [s for s in self.finished if s.kind.name == "CLIENT"]
        return sorted(spans, key=lambda span: span.start_time or 0)

    def attempts(self, span: Any) -> list[Any]:
        """The attempt spans under ``span``, in the order they ran."""
        children = [s for s in self.finished if s.parent is not None
                    and s.parent.span_id == span.context.span_id]
        return sorted(children, key=lambda s: (s.attributes.get("ipfs_accel.attempt") or 0,
                                               s.start_time or 0))

    def no_key(self, run: CheckRun, what: str) -> None:
        """Fail unless none of the run's keys is in what was exported."""
        for key in run.keys:
            expect(key not in self.exported,
                   f"the endpoint's API key is in the exported telemetry ({what})")


def call_span(span: Any, provider: str, tokens: tuple[int, int], base_url: str, *,
              error: str | None = None, what: str = "") -> None:
    """A call's span has the conventions' name and attributes, and is an error exactly when
    the call raised (``error``: the error's class name, its ``error.type``); ``what`` is
    which call, for the reasons."""
    a = span.attributes
    name = f"{what}: {span.name}" if what else span.name
    expect(a.get("gen_ai.provider.name") == provider,
           f"{name}: gen_ai.provider.name {a.get('gen_ai.provider.name')!r}, not {provider!r}")
    operation = a.get("gen_ai.operation.name")
    model = a.get("gen_ai.request.model")
    expect(bool(operation), f"{name}: no gen_ai.operation.name")
    expect(span.name == (f"{operation} {model}" if model else operation),
           f"{what + ': ' if what else ''}span named {span.name!r}, not "
           "'{gen_ai.operation.name} {gen_ai.request.model}'")
    expect(a.get("server.address") in base_url and str(a.get("server.port")) in base_url,
           f"{name}: server.address/port {a.get('server.address')}:{a.get('server.port')} "
           f"is not the endpoint's {base_url}")
    status = span.status.status_code.name
    if error is None:
        expect(status != "ERROR", f"{name}: the call's span is an error")
    else:
        expect(status == "ERROR", f"{name}: the call raised {error}, its span's status is "
                                  f"{status}, not ERROR")
        expect(a.get("error.type") == error, f"{name}: error.type {a.get('error.type')!r}, "
                                             f"not the error's class {error!r}")
    for value, key in zip(tokens, ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"),
                          strict=True):
        if value:
            expect(a.get(key) == value, f"{name}: {key} {a.get(key)!r}, expected {value} "
                                        "(Case.tokens)")


def _traced(what: str, attempts: list[Any], received: list[Any]) -> None:
    for n, (attempt, request) in enumerate(zip(attempts, received, strict=False), 1):
        parent = request.header("traceparent") or ""
        expect(f"{attempt.context.span_id:016x}" in parent,
               f"{what}: request {n}'s traceparent {parent!r} does not name attempt span {n}")


def _one_call(rec: Recording, what: str) -> Any:
    calls = rec.calls()
    expect(len(calls) == 1, f"{what}: {len(calls)} CLIENT spans, expected 1")
    return calls[0]


def retried_call(run: CheckRun, hooks: Any, provider: str) -> str:
    """The case's call answered with its ``rate_limited`` reply, ``Retry-After: 0``, then
    its success: one span, two attempts, the wait between them. What was seen."""
    case = run.case
    first = with_retry_after(case.rate_limited, "0")
    what = f"the retried call ({first.status} with Retry-After: 0, then the case's success)"
    with Recording(run, hooks) as rec, serving(first, case.success) as server:
        eid = run.endpoint(rec.backend, server, max_retries=1, **_TINY)
        try:
            run.call(rec.backend, eid)
        except CheckFailed as exc:
            raise CheckFailed(f"{what}: {exc}; the case's rate_limited reply must be "
                              "retried") from exc
        received, base_url = list(server.requests), server.base_url
    rec.no_key(run, what)
    expect(len(received) == 2, f"{what}: the server received {len(received)} requests, "
                               "expected 2 (one retry)")
    span = _one_call(rec, what)
    call_span(span, provider, case.tokens, base_url, what=what)
    said = span.attributes.get("ipfs_accel.attempts")
    expect(said == 2, f"{what}: the span says ipfs_accel.attempts={said!r}, expected 2")
    attempts = rec.attempts(span)
    expect(len(attempts) == 2, f"{what}: {len(attempts)} attempt spans, expected 2")
    failed, ok = attempts
    kind = failed.attributes.get("error.type")
    expect(failed.status.status_code.name == "ERROR" and bool(kind),
           f"{what}: attempt 1, answered {first.status}, is not an error with an error.type "
           f"(status {failed.status.status_code.name}, error.type {kind!r})")
    code = failed.attributes.get("http.response.status_code")
    expect(code == first.status, f"{what}: attempt 1 says http.response.status_code "
                                 f"{code!r}, the server answered {first.status}")
    expect(ok.status.status_code.name != "ERROR" and "error.type" not in ok.attributes,
           f"{what}: attempt 2, which succeeded, is an error")
    _traced(what, attempts, received)
    waits = [e.attributes or {} for e in span.events if e.name == "ipfs_accel.wait"]
    reasons = [w.get("ipfs_accel.wait.reason") for w in waits]
    retry = [w for w in waits if w.get("ipfs_accel.wait.reason") in RETRY_REASONS]
    expect(bool(retry), f"{what}: no ipfs_accel.wait event with reason "
                        f"{' or '.join(map(repr, RETRY_REASONS))} on the call's span for the "
                        f"wait before attempt 2 (wait reasons: {reasons})")
    reason, seconds = retry[0].get("ipfs_accel.wait.reason"), retry[0].get("ipfs_accel.wait.seconds")
    expect(isinstance(seconds, float | int) and seconds >= 0,
           f"{what}: the ipfs_accel.wait event says ipfs_accel.wait.seconds={seconds!r}")
    counted = [p for p in rec.points("ipfs_accel.waits")
               if p.attributes.get("ipfs_accel.wait.reason") == reason]
    expect(bool(counted), f"{what}: no ipfs_accel.waits point with reason {reason!r}")
    return f"retried: 2 attempts, the first {kind} ({code}), wait {reason!r}"


def failed_call(run: CheckRun, hooks: Any, provider: str) -> str:
    """The case's call answered with its ``bad_request``: an ERROR span with the error's
    class as ``error.type``, on its attempt and its duration point too. What was seen."""
    case = run.case
    reply = case.bad_request
    what = f"the failed call ({reply.status}, the case's bad_request)"
    with Recording(run, hooks) as rec, serving(reply) as server:
        eid = run.endpoint(rec.backend, server, max_retries=0)
        try:
            err = run.fail_call(rec.backend, eid)
        except CheckFailed as exc:
            raise CheckFailed(f"{what}: {exc}") from exc
        received, base_url = list(server.requests), server.base_url
    rec.no_key(run, what)
    kind = type(err).__name__
    span = _one_call(rec, what)
    call_span(span, provider, (0, 0), base_url, error=kind, what=what)
    attempts = rec.attempts(span)
    expect(len(attempts) == 1, f"{what}: {len(attempts)} attempt spans, expected 1")
    attempt = attempts[0].attributes
    expect(attempts[0].status.status_code.name == "ERROR" and attempt.get("error.type") == kind,
           f"{what}: its attempt is not an error with error.type {kind!r} "
           f"(error.type {attempt.get('error.type')!r})")
    code = attempt.get("http.response.status_code")
    expect(code == reply.status, f"{what}: its attempt says http.response.status_code "
                                 f"{code!r}, the server answered {reply.status}")
    _traced(what, attempts, received)
    points = [p for p in rec.points("gen_ai.client.operation.duration")
              if p.attributes.get("error.type") == kind]
    expect(bool(points), f"{what}: no gen_ai.client.operation.duration point with "
                         f"error.type {kind!r}")
    return f"failed: {kind} on the span, its attempt and its duration"

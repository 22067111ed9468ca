"""The telemetry check: a call through the plugin is traced as the GenAI conventions say.

With OpenTelemetry's SDK installed, the kit makes the case's call (and the stream and the
embed it declares) through a backend followed by an ``OtelObserver`` on in-memory providers,
and reads back: one CLIENT span per call (a stream's with its time to first chunk, an
embed's an ``embeddings`` span), named ``{operation} {model}``, with
``gen_ai.operation.name``, the plugin's own ``gen_ai.provider.name``
(``BackendInfo.provider``: a backend must declare it), the request's model,
``server.address`` and ``server.port``, the usage the plugin read (``Case.tokens``) and no
error; one attempt span under each whose context reached the server as ``traceparent``; a
duration metric point; and the case's key nowhere in anything exported.
"""

from __future__ import annotations

import json
from typing import Any

from .._backend import Backend
from .._http import HTTP
from ._drive import MESSAGES, reply_for
from ._run import CheckRun, conformance_id, expect, serving, skip

__all__ = ["check_telemetry"]


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


def _points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [p for r in (data.resource_metrics if data else ()) for s in r.scope_metrics
            for m in s.metrics if m.name == name for p in m.data.data_points]


def _calls(run: CheckRun, backend: Backend, info: Any) -> tuple[list[str], Any]:
    """Make the case's call, and the stream and embed the case declares; what each was and
    the requests the server received."""
    case = run.case
    made = ["call"]
    replies: list[Any] = [case.success]
    if case.stream is not None and "stream_chat" in info.operations:
        made.append("stream")
        replies.append(reply_for(case, "stream_chat"))
    if case.embed is not None and "embed" in info.operations:
        made.append("embed")
        replies.append(reply_for(case, "embed"))
    with serving(*replies) as server:
        eid = run.endpoint(backend, server, max_retries=0)
        run.call(backend, eid)
        if "stream" in made:
            stream = backend.stream_chat(MESSAGES, endpoint_id=eid, request_id=conformance_id())
            for _ in stream:
                pass
        if "embed" in made:
            backend.embed(list(case.inputs), endpoint_id=eid, request_id=conformance_id())
        return made, (server.requests, server.base_url)


def check_telemetry(run: CheckRun) -> str:
    """A call is one CLIENT span with the conventions' attributes and an attempt span whose
    context the server received; a stream's span carries its time to first chunk; metrics
    recorded; no key exported."""
    case = run.case
    spans, tracer_provider, reader, meter_provider = _sdk()  # skipped without it
    from .._otel import OtelObserver  # noqa: PLC0415 - needs opentelemetry-api

    hooks = run.registry.hooks(case.backend)
    info = hooks.info
    provider = info.provider
    expect(bool(provider), "BackendInfo.provider is empty: declare the API's "
                           "gen_ai.provider.name (the GenAI conventions' value, e.g. 'openai', "
                           "or the server software's lowercase name)")
    observer = OtelObserver(tracer_provider=tracer_provider, meter_provider=meter_provider,
                            capture_content=False)
    backend = Backend(hooks, http=HTTP(), observers=[observer])
    run.backends.append(backend)
    try:
        made, (received, base_url) = _calls(run, backend, info)
        finished = list(spans.get_finished_spans())
        exported = json.dumps([json.loads(s.to_json()) for s in finished])
        data = reader.get_metrics_data()
        exported += data.to_json() if data is not None else ""
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
    calls = [s for s in finished if s.kind.name == "CLIENT"]
    expect(len(calls) == len(made), f"{len(made)} calls ({', '.join(made)}) made "
                                    f"{len(calls)} CLIENT spans")
    expect(len(received) == len(made), f"{len(made)} calls sent {len(received)} requests")
    calls.sort(key=lambda span: span.start_time or 0)
    for what, span, request in zip(made, calls, received, strict=True):
        _call_span(span, provider, case.tokens if what != "embed" else (0, 0), base_url)
        attempts = [s for s in finished if s.parent is not None
                    and s.parent.span_id == span.context.span_id]
        expect(len(attempts) == 1, f"{span.name}: {len(attempts)} attempt spans, expected 1")
        parent = request.header("traceparent") or ""
        expect(f"{attempts[0].context.span_id:016x}" in parent,
               f"{span.name}: the request's traceparent {parent!r} does not name its attempt "
               "span (a plugin that replaces the request's headers drops it)")
        if what == "stream":
            expect("gen_ai.response.time_to_first_chunk" in span.attributes,
                   f"{span.name} (stream): no gen_ai.response.time_to_first_chunk")
        if what == "embed":
            expect(span.attributes.get("gen_ai.operation.name") == "embeddings",
                   f"embed's span says gen_ai.operation.name "
                   f"{span.attributes.get('gen_ai.operation.name')!r}, not 'embeddings'")
    for key in run.keys:
        expect(key not in exported, "the endpoint's API key is in the exported telemetry")
    expect(len(_points(reader, "gen_ai.client.operation.duration")) >= 1,
           "no gen_ai.client.operation.duration point")
    return (f"{', '.join(made)}: spans {', '.join(repr(c.name) for c in calls)}, provider "
            f"{provider!r}, traceparent sent")


def _call_span(span: Any, provider: str, tokens: tuple[int, int], base_url: str) -> None:
    a = span.attributes
    name = span.name
    expect(a.get("gen_ai.provider.name") == provider,
           f"{name}: gen_ai.provider.name {a.get('gen_ai.provider.name')!r}, not {provider!r}")
    operation = a.get("gen_ai.operation.name")
    model = a.get("gen_ai.request.model")
    expect(bool(operation), f"{name}: no gen_ai.operation.name")
    expect(name == (f"{operation} {model}" if model else operation),
           f"span named {name!r}, not '{{gen_ai.operation.name}} {{gen_ai.request.model}}'")
    expect(a.get("server.address") in base_url and str(a.get("server.port")) in base_url,
           f"{name}: server.address/port {a.get('server.address')}:{a.get('server.port')} "
           f"is not the endpoint's {base_url}")
    expect(span.status.status_code.name != "ERROR", f"{name}: the call's span is an error")
    for value, key in zip(tokens, ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"),
                          strict=True):
        if value:
            expect(a.get(key) == value, f"{name}: {key} {a.get(key)!r}, expected {value} "
                                        "(Case.tokens)")

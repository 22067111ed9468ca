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

Then the same call retried and failed (``_checks_telemetry_more``): answered with the
case's ``rate_limited`` reply (``Retry-After: 0``) and then its success, it is one span, not
an error, with ``ipfs_accel.attempts`` 2, two attempt spans (the first an error with the
429's status) and an ``ipfs_accel.wait`` event for the retry; answered with the case's
``bad_request``, its span is an ERROR whose ``error.type`` is the core's error class, as is
its duration point's. Each recording is searched for the keys too.
"""

from __future__ import annotations

from typing import Any

from .._backend import Backend
from ._checks_telemetry_more import Recording, call_span, failed_call, retried_call
from ._drive import MESSAGES, reply_for
from ._run import CheckRun, conformance_id, expect, serving

__all__ = ["check_telemetry"]


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
        return made, (list(server.requests), server.base_url)


def check_telemetry(run: CheckRun) -> str:
    """A call is one CLIENT span with the conventions' attributes and an attempt span whose
    context the server received; a stream's span carries its time to first chunk; metrics
    recorded; a retried call is one span over two attempts and the wait between them; a
    failed call's span is an error of the error's type; no key exported."""
    case = run.case
    hooks = run.registry.hooks(case.backend)
    info = hooks.info
    provider = info.provider
    with Recording(run, hooks) as rec:  # skipped without OpenTelemetry's SDK
        expect(bool(provider), "BackendInfo.provider is empty: declare the API's "
                               "gen_ai.provider.name (the GenAI conventions' value, e.g. "
                               "'openai', or the server software's lowercase name)")
        made, (received, base_url) = _calls(run, rec.backend, info)
    rec.no_key(run, "successful calls")
    calls = rec.calls()
    expect(len(calls) == len(made), f"{len(made)} calls ({', '.join(made)}) made "
                                    f"{len(calls)} CLIENT spans")
    expect(len(received) == len(made), f"{len(made)} calls sent {len(received)} requests")
    for what, span, request in zip(made, calls, received, strict=True):
        call_span(span, provider, case.tokens if what != "embed" else (0, 0), base_url)
        attempts = rec.attempts(span)
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
    expect(len(rec.points("gen_ai.client.operation.duration")) >= 1,
           "no gen_ai.client.operation.duration point")
    retried = retried_call(run, hooks, provider)
    failed = failed_call(run, hooks, provider)
    return (f"{', '.join(made)}: spans {', '.join(repr(c.name) for c in calls)}, provider "
            f"{provider!r}, traceparent sent; {retried}; {failed}")

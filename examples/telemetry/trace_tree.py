"""Print the trace of one pool call that is retried and fails over, as a text tree.

Two loopback servers stand for two GPUs behind the OpenAI API: ``gpu-1`` is overloaded
(503) and ``gpu-2`` first asks to slow down (429, Retry-After 1 s), then answers. A pool
of both takes one chat; OpenTelemetry's SDK keeps its spans in memory and this prints them:
the call's CLIENT span with the GenAI conventions' attributes, each attempt under it with
its endpoint and status, and the waits between attempts with their reasons.

    pip install ./core'[otel]' ./plugins/openai opentelemetry-sdk
    python examples/telemetry/trace_tree.py
"""

from __future__ import annotations

from typing import Any

from ipfs_accel import Registry
from ipfs_accel.otel import OtelObserver
from ipfs_accel.testing import FaultServer, Reply
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ANSWER = {"id": "chatcmpl-7", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16}}
SHOWN = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
         "gen_ai.request.max_tokens", "gen_ai.response.model", "gen_ai.response.id",
         "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens",
         "gen_ai.usage.output_tokens", "server.address", "ipfs_accel.attempts",
         "ipfs_accel.endpoint_id", "http.response.status_code", "error.type")


def _ms(ns: int) -> str:
    return f"{ns / 1e6:7.1f} ms"


def _attrs(attributes: Any) -> str:
    parts = []
    for key in SHOWN:
        if key in attributes:
            value = attributes[key]
            value = list(value) if isinstance(value, tuple) else value
            parts.append(f"{key}={value}")
    return "  ".join(parts)


def render(spans: list[ReadableSpan]) -> str:
    [call] = [s for s in spans if s.parent is None]
    t0 = call.start_time or 0
    lines = [f"{call.name}  [{call.kind.name}, {_ms((call.end_time or t0) - t0).strip()}, "
             f"{call.status.status_code.name}]", f"    {_attrs(call.attributes)}"]
    rows: list[tuple[int, str]] = []
    for span in spans:
        if span.parent is not None and span.parent.span_id == call.context.span_id:
            took = _ms((span.end_time or 0) - (span.start_time or 0)).strip()
            rows.append((span.start_time or 0,
                         f"{span.name} ({took})  {_attrs(span.attributes)}"))
    for event in call.events:
        detail = "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (event.attributes or {}).items())
        rows.append((event.timestamp, f"event {event.name}  {detail}"))
    rows.sort()
    for i, (at, text) in enumerate(rows):
        branch = "└─" if i == len(rows) - 1 else "├─"
        lines.append(f"{_ms(at - t0)}  {branch} {text}")
    return "\n".join(lines)


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = Registry(observers=[OtelObserver(tracer_provider=provider)], telemetry=False)
    openai = registry.get("openai")
    with FaultServer() as gpu1, FaultServer() as gpu2:
        gpu1.script([Reply(503, json={"error": {"message": "overloaded"}})] * 3)
        gpu2.script([Reply(429, headers={"retry-after": "1"},
                           json={"error": {"message": "slow down"}}), Reply(200, json=ANSWER)])
        for name, server in (("gpu-1", gpu1), ("gpu-2", gpu2)):
            openai.create_endpoint(name, base_url=server.base_url + "/v1", api_key="sk-demo",
                                   model="gpt-4o-mini", initial_retry_delay=0.05)
        pool = registry.pool([("openai", "gpu-1"), ("openai", "gpu-2")], strategy="ordered",
                             max_retries=4, initial_retry_delay=0.05)
        result = pool.chat([{"role": "user", "content": "Capital of France?"}], max_tokens=20)
    provider.shutdown()
    print(f"answer: {result.text!r}\n")
    print(render(list(exporter.get_finished_spans())))


if __name__ == "__main__":
    main()

"""`ipfs-accel run --otel`: the batch's traces and metrics go to an OTLP collector (here a
loopback server standing for one) over OTLP/HTTP, flushed before the command exits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _cli_fixtures import FakeAPI, cli_env, make_site, script
from ipfs_accel.testing import FaultServer, Reply, import_or_skip

import_or_skip("opentelemetry.exporter.otlp.proto.http")  # what --otel exports with
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: E402
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

KEY = "sk-cli-otel-" + "o" * 20


def _batch(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "messages": [
        {"role": "user", "content": f"line {i}"}]}) + "\n" for i in range(1, n + 1)))
    return path


def _spans(collector: FaultServer) -> list[object]:
    out: list[object] = []
    for request in collector.requests:
        if request.path == "/v1/traces":
            message = ExportTraceServiceRequest()
            message.ParseFromString(request.body)
            out += [span for rs in message.resource_spans for ss in rs.scope_spans
                    for span in ss.spans]
    return out


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_run_exports_one_span_per_call_and_its_metrics(tmp_path: Path, how: str) -> None:
    env = cli_env(make_site(tmp_path), CLITEST_API_KEY=KEY, OTEL_SERVICE_NAME="batch-7")
    batch = _batch(tmp_path / "calls.jsonl", 3)
    with FaultServer() as collector, FakeAPI() as api:
        collector.script([Reply(200, body=b"")] * 20)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.base_url
        args = [script(), "run", str(batch), "-b", "clitest", "-u", api.url, "-q"]
        if how == "flag":
            args.append("--otel")
        else:
            env.pop("OTEL_SDK_DISABLED", None)
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr
        spans = _spans(collector)
        paths = {r.path for r in collector.requests}
        metric_bodies = [r.body for r in collector.requests if r.path == "/v1/metrics"]
        sent = [r["headers"].get("traceparent") for r in api.requests]
    assert paths == {"/v1/traces", "/v1/metrics"}
    calls = [s for s in spans if s.kind == s.SPAN_KIND_CLIENT]  # type: ignore[attr-defined]
    assert len(calls) == 3
    assert all(s.name.startswith("chat") for s in calls)  # type: ignore[attr-defined]
    names = set()
    for body in metric_bodies:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(body)
        names |= {m.name for rm in message.resource_metrics for sm in rm.scope_metrics
                  for m in sm.metrics}
    assert "gen_ai.client.operation.duration" in names
    assert all(sent) and len(sent) == 3  # each request carried its attempt's traceparent
    exported = b"".join(r.body for r in collector.requests)
    assert KEY.encode() not in exported and b"line 1" not in exported
    assert b"batch-7" in exported  # the service's name, from the standard variable


def test_otel_without_the_sdk_names_what_to_install(tmp_path: Path) -> None:
    """--otel where the SDK cannot be imported: one clear error, nothing sent."""
    site = make_site(tmp_path)
    # run at the command's start: the SDK cannot be imported there
    (Path(site) / "sitecustomize.py").write_text(
        "import sys\nsys.modules['opentelemetry.sdk'] = None\n")
    env = cli_env(site, CLITEST_API_KEY=KEY)
    batch = _batch(tmp_path / "calls.jsonl", 1)
    with FakeAPI() as api:
        done = subprocess.run([script(), "run", str(batch), "-b", "clitest", "-u", api.url,
                               "--otel", "-q"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert not api.requests
    assert done.returncode != 0
    assert "opentelemetry-sdk" in done.stderr and "Traceback" not in done.stderr

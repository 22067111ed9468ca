"""``run --otel``: export the run's traces and metrics through OTLP.

The command sets OpenTelemetry's global tracer and meter providers (the SDK's, exporting
over OTLP/HTTP), so the registry's telemetry observer traces every call, and shuts them down
at the end of the run, flushing what is left. Where to send, and with which headers, is the
standard environment: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``),
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME`` (default ``ipfs-accel``),
``OTEL_RESOURCE_ATTRIBUTES``. Without ``--otel``, setting ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or its traces variant) turns it on too, unless ``OTEL_SDK_DISABLED=true``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

__all__ = ["NEEDS", "start_otel", "wanted"]

NEEDS = ("pip install 'ipfs-accel-core[otel]' opentelemetry-sdk "
         "opentelemetry-exporter-otlp-proto-http")


def wanted(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the run exports telemetry: ``--otel``, or an OTLP endpoint in the
    environment (never with ``OTEL_SDK_DISABLED=true``)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return flag or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def start_otel() -> Callable[[], None]:
    """Set the global providers to export over OTLP/HTTP; returns the function that flushes
    and shuts them down. Raises ImportError naming what to install when the SDK or the
    exporter is missing."""
    try:
        from opentelemetry import metrics, trace  # noqa: PLC0415 - only with --otel
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(f"--otel needs OpenTelemetry's SDK and OTLP exporter ({exc.name} "
                          f"is missing): {NEEDS}") from None
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "ipfs-accel"}
    resource = Resource.create(attributes)  # reads OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def stop() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return stop

"""OpenTelemetry for ipfs-accel: :class:`OtelObserver` (needs ``ipfs-accel-core[otel]``).

Every :class:`~ipfs_accel.Registry` already has one on the global tracer and meter providers
when OpenTelemetry's API is installed; make one with providers of your own to trace a
registry's calls elsewhere: ``Registry(observers=[OtelObserver(tracer_provider=tp)],
telemetry=False)``.
"""

from ._otel import OtelObserver

__all__ = ["OtelObserver"]

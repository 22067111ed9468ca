"""Readiness as a yes or no: :func:`ready` and :func:`aready`.

KServe v2's health routes (``GET /v2/health/ready``, ``GET /v2/models/{m}[/versions/{v}]/ready``,
``GET /v2/health/live``) answer by status alone: 200 is true and a 4xx is false (the
protocol, required_api.md), and OVMS answers 404 for a model (or version) it does not serve
and 503 for one still loading. Such an answer is what the probe asked, so it is final: the
probes' 400, 404 and 503 are never retried (:func:`fit_probe`), and :func:`ready` turns them
into ``False``. What is no answer about readiness (a refused key, a 500, a server that cannot
be reached) still raises.

Through ``invoke("ready" | "model_ready" | "live")`` a not-ready answer stays an error
(``NotFoundError``, ``OverloadedError``, ``BadRequestError``, raised after one attempt): the
core hands a plugin only 2xx answers to parse. So it also counts as a failed request in the
endpoint's stats, and a 503 toward the endpoint's health as any 503 does.
"""

from __future__ import annotations

from typing import Any

from ipfs_accel import Backend, CallError, Classification, Failure

__all__ = ["NOT_READY_STATUSES", "PROBES", "aready", "fit_probe", "ready"]

PROBES = frozenset({"live", "ready", "model_ready"})
"""The operations whose status is their answer."""

NOT_READY_STATUSES = frozenset({400, 404, 503})
"""The statuses that say "not ready" (or "not live"): KServe's 4xx (OVMS's 404, the 400 other
KServe servers send) and OVMS's 503 for a model still loading."""


def fit_probe(failure: Failure, c: Classification) -> Classification:
    """A probe's not-ready answer is final: asking again at once would not change it, and a
    readiness check that waits through the retries answers too late to be of use."""
    if failure.operation in PROBES and failure.status in NOT_READY_STATUSES:
        c.retryable = False
    return c


def _probe(model: str | None, version: str | int | None) -> tuple[str, dict[str, Any]]:
    if model is None:
        return "ready", {}
    return "model_ready", {} if version is None else {"version": version}


def _not_ready(exc: CallError) -> bool:
    if exc.status in NOT_READY_STATUSES:
        return False
    raise exc


def ready(
    backend: Backend, model: str | None = None, *, version: str | int | None = None,
    endpoint_id: str | None = None, request_id: str | None = None,
) -> bool:
    """Whether the server (no ``model``) or a model (and ``version``) is ready for inference.

    ``False`` for a 400, 404 or 503 answer, after one request; an error that is not about
    readiness (401, 500, no connection after the retries...) raises as any call does.
    """
    operation, params = _probe(model, version)
    try:
        backend.invoke(operation, model=model, endpoint_id=endpoint_id, request_id=request_id,
                       **params)
    except CallError as exc:
        return _not_ready(exc)
    return True


async def aready(
    backend: Backend, model: str | None = None, *, version: str | int | None = None,
    endpoint_id: str | None = None, request_id: str | None = None,
) -> bool:
    """Async :func:`ready`."""
    operation, params = _probe(model, version)
    try:
        await backend.ainvoke(operation, model=model, endpoint_id=endpoint_id,
                              request_id=request_id, **params)
    except CallError as exc:
        return _not_ready(exc)
    return True

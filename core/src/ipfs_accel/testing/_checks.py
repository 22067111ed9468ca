"""The conformance checks: each runs one feature of one backend against a :class:`FaultServer`.

Every check builds a fresh backend from the case's registry, scripts the server, makes real
calls and compares what the server received and what the backend reports with what the
feature promises. A check returns a :class:`CheckResult`; it never raises. The checks live
by family: per-endpoint counters and keys (``_checks_endpoint``), backoff and request ID
(``_checks_retry``), the queue (``_checks_queue``), classify_error (``_checks_classify``),
the operations the kit drives itself: stream, finish_reason, every covered operation sync
and async (``_checks_ops``), the common parameters' request form (``_checks_params``),
the tool round trip (``_checks_tools``), OpenTelemetry spans (``_checks_telemetry``) and
the provider's batches (``_checks_batch``);
what they share is in ``_run`` (and, for driving operations, ``_drive``). A check that has
nothing to check for the case is *skipped*: shown as such, never as a pass.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from .._registry import Registry
from ._case import Case, CheckResult
from ._checks_batch import check_batch
from ._checks_classify import check_classify
from ._checks_endpoint import check_counters, check_keys
from ._checks_ops import check_finish_reason, check_operations, check_stream
from ._checks_params import check_params
from ._checks_queue import check_queue
from ._checks_retry import check_backoff, check_request_id
from ._checks_telemetry import check_telemetry
from ._checks_tools import check_tools
from ._run import CheckFailed, CheckRun, CheckSkipped

__all__ = ["CHECKS", "Check", "run_check", "run_checks"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One conformance check: its name, the feature it proves, and the function."""

    name: str
    feature: str
    run: Callable[[CheckRun], str]


CHECKS: tuple[Check, ...] = (
    Check("counters", "per-endpoint counters", check_counters),
    Check("keys", "per-endpoint API key", check_keys),
    Check("backoff", "backoff", check_backoff),
    Check("queue", "queue", check_queue),
    Check("request_id", "request ID", check_request_id),
    Check("classify_error", "classify_error total", check_classify),
    Check("stream", "stream", check_stream),
    Check("params", "common parameters", check_params),
    Check("operations", "operations sync+async", check_operations),
    Check("finish_reason", "finish_reason", check_finish_reason),
    Check("tools", "tool calls round trip", check_tools),
    Check("telemetry", "OpenTelemetry spans", check_telemetry),
    Check("batch", "provider batches", check_batch),
)
"""The checks, in report order. ``stream``, ``params``, ``operations``, ``finish_reason`` and
``tools`` drive what the case's optional parts declare, each skipped, saying so, for a case
that declares nothing for it; ``telemetry`` reads spans back with OpenTelemetry's SDK,
skipped without it; ``batch`` runs a batch job through a backend that declares
``BackendInfo.batch`` and a case that declares ``Case.batch`` (n/a for one without
batches, skipped for a case that declares no batch answers)."""


def run_check(check: Check | str, case: Case, registry: Registry) -> CheckResult:
    """Run one check (or the one named) for ``case``; never raises."""
    if isinstance(check, str):
        check = next(c for c in CHECKS if c.name == check)
    run = CheckRun(case, registry)
    start = time.monotonic()
    passed, skipped, reason, detail = False, False, "", ""
    try:
        detail = check.run(run)
        passed = True
    except CheckSkipped as exc:
        skipped, reason = True, str(exc)
    except CheckFailed as exc:
        reason = str(exc)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        run.close()
    return CheckResult(
        check=check.name, feature=check.feature, passed=passed, skipped=skipped,
        reason=run.scrub(reason),
        detail=run.scrub(detail), seconds=round(time.monotonic() - start, 3),
    )


def run_checks(case: Case, registry: Registry) -> list[CheckResult]:
    """Every check for ``case``, in order."""
    return [run_check(check, case, registry) for check in CHECKS]

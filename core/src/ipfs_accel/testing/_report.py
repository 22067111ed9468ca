"""The Implementation Report: every installed backend by feature, each cell a check run now.

A tick means the check passed in this run, against a loopback :class:`FaultServer`; a
cross carries the failing check's reason; a dash is a check skipped, with why (the backend
lacks the operation, or its case declares nothing for the check to compare). Plugins
without a ``conformance_case`` hook show as "no case" (not checked); plugins that fail to
load show their load error. The report passes only when every backend in it was checked,
passed at least one check and failed none: a row nothing was checked for, or a report with
no rows, is not a pass. Nothing here ever
prints an API key (the checks use throwaway keys and scrub them from every reason).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import msgspec

from .. import __version__
from .._errors import PluginLoadError
from .._registry import Registry
from ._case import CheckResult
from ._checks import CHECKS, run_checks

__all__ = ["BackendReport", "Report", "build_report", "render_markdown", "run_report"]

Status = Literal["checked", "no case", "load error", "case error"]


class BackendReport(msgspec.Struct, kw_only=True, frozen=True):
    """One backend's row: where it comes from, and its checks (empty unless ``checked``)."""

    name: str
    status: Status
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    checks: list[CheckResult] = []
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Checked, no check failed and one passed at least (skips are neither)."""
        return self.status == "checked" and any(c.passed for c in self.checks) and all(
            c.passed or c.skipped for c in self.checks)


class Report(msgspec.Struct, kw_only=True, frozen=True):
    """The whole report: one :class:`BackendReport` per installed backend, by name."""

    core_version: str
    features: list[str]
    backends: list[BackendReport]

    @property
    def passed(self) -> bool:
        """At least one backend, and every backend checked and passing every check.

        A backend with no case was not checked, so it is not a pass: the report says what
        was verified, never what was merely installed.
        """
        return bool(self.backends) and all(b.passed for b in self.backends)


def _one(registry: Registry, name: str, dist: str | None, version: str | None) -> BackendReport:
    start = time.monotonic()
    try:
        hooks = registry.hooks(name)
    except PluginLoadError as exc:
        return BackendReport(name=name, status="load error", distribution=dist, version=version,
                             error=str(exc))
    try:
        case = hooks.conformance_case()
    except Exception as exc:
        return BackendReport(name=name, status="case error", distribution=dist, version=version,
                             error=f"conformance_case() raised {type(exc).__name__}: {exc}")
    if case is None:
        return BackendReport(name=name, status="no case", distribution=dist, version=version)
    if case.backend != name:
        return BackendReport(name=name, status="case error", distribution=dist, version=version,
                             error=f"conformance_case() is for backend {case.backend!r}")
    checks = run_checks(case, registry)
    return BackendReport(name=name, status="checked", distribution=dist, version=version,
                         checks=checks, seconds=round(time.monotonic() - start, 2))


def build_report(
    registry: Registry | None = None, *, backends: Iterable[str] | None = None, jobs: int = 4
) -> Report:
    """Run the checks for every backend in ``registry`` (default: the installed ones).

    ``backends`` limits the run to those names; ``jobs`` backends are checked at once
    (each check has its own server and endpoints, so they do not interfere).
    """
    registry = Registry() if registry is None else registry
    wanted = None if backends is None else set(backends)
    rows = [s for s in registry.status() if wanted is None or s.name in wanted]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reports = list(pool.map(
            lambda s: _one(registry, s.name, s.distribution, s.version), rows
        ))
    return Report(
        core_version=__version__,
        features=[c.feature for c in CHECKS],
        backends=sorted(reports, key=lambda r: r.name),
    )


_NOT_CHECKED = {"no case": "no case (not checked)"}


def _verdict(report: Report) -> str:
    if report.passed:
        skipped = sum(c.skipped for b in report.backends for c in b.checks)
        return (f"**Passed**: all {len(report.backends)} backends were checked and passed "
                "every check" + (f" that applies ({skipped} skipped, each with why)."
                                 if skipped else "."))
    if not report.backends:
        return "**Not passed**: no backend was checked."
    failing = [b.name for b in report.backends if b.status == "checked" and not b.passed]
    unchecked = [b.name for b in report.backends if b.status != "checked"]
    parts = []
    if failing:
        parts.append("checks failed for " + ", ".join(failing))
    if unchecked:
        parts.append("not checked: " + ", ".join(unchecked))
    return "**Not passed**: " + "; ".join(parts) + "."


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _mark(c: CheckResult) -> str:
    if c.passed:
        return "✅"
    return ("⏭ " if c.skipped else "❌ ") + _cell(c.reason)


def _heading(feature: str) -> str:
    return f"`{feature}`" if "_" in feature else feature[:1].upper() + feature[1:]


def render_markdown(report: Report) -> str:
    """The report as Markdown: the summary table, then one section per backend."""
    head = ["Backend", *[_heading(f) for f in report.features]]
    lines = [
        "# Implementation Report",
        "",
        f"Generated by `ipfs-accel report` (ipfs-accel-core {report.core_version}). Every cell "
        "is a check that ran for this report against a fault-injecting loopback HTTP server "
        "(`ipfs_accel.testing.FaultServer`): ✅ means it passed in this run; ❌ carries the "
        "reason it failed; ⏭ is a check skipped, with why (the backend lacks the operation, "
        "or its case declares nothing for the check to compare).",
        "",
        _verdict(report),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for b in report.backends:
        if b.status != "checked":
            note = _NOT_CHECKED.get(b.status, b.status)
            note = note if b.error is None else f"{note}: {b.error}"
            cells = [_cell(note)] + [""] * (len(report.features) - 1)
        else:
            by_feature = {c.feature: c for c in b.checks}
            cells = []
            for feature in report.features:
                c = by_feature.get(feature)
                if c is None:
                    cells.append("not run")
                else:
                    cells.append(_mark(c))
        lines.append(f"| {b.name} | " + " | ".join(cells) + " |")
    for b in report.backends:
        lines += ["", f"## {b.name}", ""]
        origin = f"{b.distribution} {b.version}" if b.distribution else "registered directly"
        if b.status != "checked":
            note = _NOT_CHECKED.get(b.status, b.status)
            lines.append(f"{origin}: {note}" + (f" ({_cell(b.error)})" if b.error else "."))
            continue
        ok = sum(c.passed for c in b.checks)
        skipped = sum(c.skipped for c in b.checks)
        also = f" ({skipped} skipped)" if skipped else ""
        lines += [
            f"{origin}: {ok} of {len(b.checks)} checks passed{also} in {b.seconds:.1f} s.",
            "",
            "| Check | Feature | Result | Time | What ran |",
            "|---|---|---|---|---|",
        ]
        for c in b.checks:
            lines.append(f"| `{c.check}` | {c.feature} | {_mark(c)} | {c.seconds:.2f} s "
                         f"| {_cell(c.detail)} |")
    return "\n".join(lines) + "\n"


def run_report(
    registry: Registry | None = None, *, json: bool = False,
    backends: Iterable[str] | None = None, jobs: int = 4,
) -> str:
    """Build the report and render it: Markdown, or JSON with ``json=True`` (for the CLI)."""
    report = build_report(registry, backends=backends, jobs=jobs)
    if json:
        return msgspec.json.format(msgspec.json.encode(report).decode(), indent=2) + "\n"
    return render_markdown(report)

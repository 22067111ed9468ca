"""The Implementation Report: ticks only for checks that passed now, crosses with reasons."""

from __future__ import annotations

import json
import types
from typing import Any

import _echo_plugin
import importlib_metadata
import ipfs_accel.cli._app as cli_app
import msgspec
import pytest
import test_testing_operations as ops
from ipfs_accel import BackendInfo, Registry, hookimpl
from ipfs_accel._registry import _Entry
from ipfs_accel.cli._app import run_app
from ipfs_accel.testing import (
    BackendReport,
    Case,
    Reply,
    Report,
    build_report,
    render_markdown,
    run_report,
)

OK = {
    "model": "echo-1",
    "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def _plugin(name: str, *, case: bool = True, rid_header: str = "X-Request-ID",
            full: bool = True) -> Any:
    """The echo plugin renamed, with or without a case (full: with a stream, embed, params
    and finish; else as cases were written before those), its request-ID header changeable."""
    @hookimpl
    def backend_info() -> BackendInfo:
        info = _echo_plugin.backend_info()
        return msgspec.structs.replace(info, name=name, request_id_header=rid_header)

    @hookimpl
    def conformance_case() -> Case:
        parts = {f: getattr(ops.FULL_CASE, f) for f in (
            "text", "finish", "stream", "embed", "inputs", "params", "tools")} if full else {}
        return Case(backend=name, success=Reply(200, json=OK), tokens=(3, 2),
                    auth=("authorization", "Bearer {key}"), **parts)

    hooks = {"backend_info": backend_info, "send": _echo_plugin.send,
             "parse_usage": _echo_plugin.parse_usage,
             "classify_error": _echo_plugin.classify_error}
    if case:
        hooks["conformance_case"] = conformance_case
    return types.SimpleNamespace(**hooks)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(entry_points=False, plugins=[
        _plugin("good"), _plugin("nocase", case=False), _plugin("badrid", rid_header="X-Other"),
        _plugin("legacy", full=False),
    ])


def test_report_ticks_crosses_and_no_case(registry: Registry) -> None:
    """Good backend all ticks; a broken feature a cross with the reason; no hook, no case."""
    report = build_report(registry, backends=["badrid", "good", "nocase"])
    by = {b.name: b for b in report.backends}
    assert [b.name for b in report.backends] == ["badrid", "good", "nocase"]
    assert by["good"].passed and len(by["good"].checks) == 13
    # every check passes but batch, which does not apply: echo declares no batches
    assert all(c.passed for c in by["good"].checks if c.check != "batch")
    assert by["good"].checks[-1].reason == "n/a: the backend declares no batches"
    assert by["nocase"].status == "no case" and not by["nocase"].checks
    failed = [c for c in by["badrid"].checks if not c.passed and not c.skipped]
    assert [c.check for c in failed] == ["request_id"]
    assert "'x-request-id' on the 3 attempts was [None, None, None]" in failed[0].reason
    assert not report.passed
    md = render_markdown(report)
    assert "| good | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ |" in md
    assert "| `classify_error total` | Stream | Common parameters | Operations sync+async " \
        "| `finish_reason` |" in md
    assert "| badrid | ✅ | ✅ | ✅ | ✅ | ❌ 'x-request-id' on the 3 attempts" in md
    assert "| nocase | no case (not checked) |" in md
    assert "**Not passed**: checks failed for badrid; not checked: nocase." in md
    assert "## good" in md and "`backoff`" in md
    assert "sk-conformance-" not in md


def test_report_passes_only_when_everything_was_checked(registry: Registry) -> None:
    """A backend without a case, or no backend at all, makes the report not pass."""
    good = build_report(registry, backends=["good"])
    assert good.passed
    assert "**Passed**: all 1 backends were checked and passed every check that applies " \
        "(1 skipped, each with why)." in render_markdown(good)
    legacy = build_report(registry, backends=["legacy"])
    assert legacy.passed  # skips are not failures...
    row = by_name(legacy)["legacy"]
    assert [c.check for c in row.checks if c.skipped] == [
        "stream", "params", "operations", "finish_reason", "tools", "batch"]
    assert not any(c.passed for c in row.checks if c.skipped)  # ...nor passes
    md = render_markdown(legacy)
    assert "passed every check that applies (6 skipped, each with why)." in md
    assert "| legacy | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ | ⏭ the backend offers stream_chat but" in md
    assert "7 of 13 checks passed (6 skipped)" in md
    skipped_only = BackendReport(name="x", status="checked", checks=[
        row.checks[6]])  # nothing passed: not a pass
    assert not skipped_only.passed
    unchecked = build_report(registry, backends=["good", "nocase"])
    assert by_name(unchecked)["good"].passed and not unchecked.passed
    assert "**Not passed**: not checked: nocase." in render_markdown(unchecked)
    empty = build_report(registry, backends=[])
    assert empty.backends == [] and not empty.passed
    assert "**Not passed**: no backend was checked." in render_markdown(empty)
    row = BackendReport(name="x", status="checked")  # checked, yet no check ran
    assert not row.passed


def by_name(report: Report) -> dict[str, BackendReport]:
    return {b.name: b for b in report.backends}


def test_report_json_and_filter(registry: Registry) -> None:
    """--json gives the same facts for machines; backends= limits the run."""
    data = json.loads(run_report(registry, json=True, backends=["good", "nocase"]))
    assert [b["name"] for b in data["backends"]] == ["good", "nocase"]
    assert all(c["passed"] and not c["skipped"] for c in data["backends"][0]["checks"]
               if c["check"] != "batch")  # echo declares no batches: n/a
    assert data["features"][:5] == ["per-endpoint counters", "per-endpoint API key", "backoff",
                                    "queue", "request ID"]
    assert "sk-conformance-" not in json.dumps(data)


def test_load_error_is_a_row_not_a_crash() -> None:
    """A plugin that fails to load shows its error in its row."""
    reg = Registry(entry_points=False)
    entries = reg._scan()
    entry = _Entry("broken")  # what a bad install leaves behind
    entry.entry_point = importlib_metadata.EntryPoint(
        name="broken", value="ipfs_accel_no_such_module_x", group="ipfs_accel.backends")
    entries["broken"] = entry
    report = build_report(reg)
    row = report.backends[0]
    assert row.status == "load error" and "ipfs_accel_no_such_module_x" in (row.error or "")
    assert not report.passed


def test_cli_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`ipfs-accel report` prints the kit's Markdown report, or JSON with --json."""
    monkeypatch.setattr(cli_app, "_registry", lambda: Registry(
        entry_points=False, plugins=[_plugin("good"), _plugin("badrid", rid_header="X-Other")]))
    run_app(["report", "-b", "good"])
    out = capsys.readouterr().out
    assert "| good | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ |" in out and "badrid" not in out
    run_app(["report", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert {b["name"] for b in data["backends"]} == {"good", "badrid"}

"""The Implementation Report over the nine built-in plugins, run live: every cell a tick."""

from __future__ import annotations

import pytest
from ipfs_accel import Registry
from ipfs_accel.testing import build_report, render_markdown

BUILTIN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]

pytestmark = pytest.mark.slow


def test_builtin_plugins_pass_every_check() -> None:
    """Each built-in plugin has a case and passes all six checks against the FaultServer."""
    report = build_report(Registry(), backends=BUILTIN)
    assert [b.name for b in report.backends] == BUILTIN
    failures = {
        b.name: b.error or [f"{c.check}: {c.reason}" for c in b.checks if not c.passed]
        for b in report.backends if not b.passed
    }
    assert not failures, failures
    md = render_markdown(report)
    for name in BUILTIN:
        assert f"| {name} | ✅ | ✅ | ✅ | ✅ | ✅ | ✅ |" in md

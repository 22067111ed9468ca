"""The Implementation Report over the nine built-in plugins, run live: every cell a tick."""

from __future__ import annotations

import pytest
from ipfs_accel import Registry
from ipfs_accel.testing import build_report, render_markdown

BUILTIN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]

pytestmark = pytest.mark.slow


SKIPPED = {"hf_tei": {"stream", "params", "finish_reason", "tools", "batch"},
           "llvm": {"stream", "tools", "batch"}, "hf_tgi": {"batch"}, "ollama": {"batch"},
           "ovms": {"batch"}}
"""The checks that do not apply: TEI neither chats nor streams, the llvm server neither streams
nor takes tools, and only OpenAI, Groq, Anthropic and Gemini have provider batches."""


def test_builtin_plugins_pass_every_check() -> None:
    """Each built-in plugin has a case and passes every check that applies to it against the
    FaultServer; the others are skipped as not applicable (the backend lacks the operation)."""
    report = build_report(Registry(), backends=BUILTIN)
    assert [b.name for b in report.backends] == BUILTIN
    failures = {
        b.name: b.error or [f"{c.check}: {c.reason}" for c in b.checks if not c.passed]
        for b in report.backends if not b.passed
    }
    assert not failures, failures
    for b in report.backends:
        skipped = {c.check for c in b.checks if c.skipped}
        assert skipped == SKIPPED.get(b.name, set()), (b.name, skipped)
        assert all(c.reason.startswith("n/a") for c in b.checks if c.skipped), b.name
    md = render_markdown(report)
    for name in BUILTIN:
        if name not in SKIPPED:
            assert f"| {name} |{' ✅ |' * 11}" in md

"""`ipfs-accel demo` end to end, and the library import staying free of the CLI's deps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _cli_fixtures import cli, cli_env
from ipfs_accel import Registry
from ipfs_accel.testing import require_or_skip

_INSTALLED = set(Registry().names())


def _env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "empty"
    site.mkdir()
    return cli_env(site)


def test_import_ipfs_accel_does_not_import_typer_or_rich() -> None:
    """`import ipfs_accel` stays light: no typer, rich or the cli package."""
    code = ("import sys, ipfs_accel; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('typer', 'rich', 'click') or m == 'ipfs_accel.cli'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert r.stdout.strip() == "[]"


def test_demo_finishes_every_call_exactly_once(tmp_path: Path) -> None:
    """The demo runs offline through every installed backend and proves nothing was lost."""
    if not _INSTALLED:
        require_or_skip("no backend plugin installed")
    stats = tmp_path / "demo-stats.json"
    r = cli(["demo", "--calls", "90", "--seed", "3", "--stats-file", str(stats)],
            env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "every call finished exactly once" in r.stdout
    assert "FAIL" not in r.stdout and "Traceback" not in r.stderr
    assert "demo-key" not in r.stdout + r.stderr  # fake keys are keys too: never printed
    document = json.loads(stats.read_text())
    agg = document["aggregate"]
    assert agg["total_requests"] == 90
    assert agg["total_requests"] == agg["successful_requests"] + agg["failed_requests"]
    assert agg["retries"] > 0  # faults were injected and retried


def test_demo_backend_option_narrows(tmp_path: Path) -> None:
    """`demo --backend ollama` uses only ollama endpoints."""
    if "ollama" not in _INSTALLED:
        require_or_skip("ollama plugin not installed")
    r = cli(["demo", "--backend", "ollama", "--calls", "20"], env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ollama-1" in r.stdout
    assert "openai" not in r.stdout and "claude" not in r.stdout


def test_demo_unknown_backend_is_one_line(tmp_path: Path) -> None:
    """A backend the demo cannot serve: exit 2 with the choices."""
    r = cli(["demo", "--backend", "nosuch"], env=_env(tmp_path))
    assert r.returncode == 2
    assert "nosuch" in r.stderr and "ollama" in r.stderr
    assert "Traceback" not in r.stderr

"""A third-party plugin, proven: built as a wheel, installed in a fresh venv, discovered, conformant."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ipfs-accel-plugin-example"

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False, env={**os.environ, "PYTHONNOUSERSITE": "1"})
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def fresh_venv_with(example: Path, wheel_glob: str, tmp_path: Path) -> tuple[Path, Path]:
    """Build ``example`` as a wheel and install it with the core (and pytest, and the
    OpenTelemetry SDK the kit's telemetry check reads spans back with) into a new venv under
    ``tmp_path``; return the venv and its python."""
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, example)
    (wheel,) = dist.glob(wheel_glob)
    venv = tmp_path / "venv"
    uv = shutil.which("uv")
    if uv:
        _run(uv, "venv", "-q", "--python", sys.executable, venv)
    else:
        _run(sys.executable, "-m", "venv", venv)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    install = ([uv, "pip", "install", "-q", "--python", python] if uv
               else [python, "-m", "pip", "install", "-q"])
    # the venv inherits IPFS_ACCEL_HTTP: under aiohttp, the example runs on aiohttp there too
    extras = "otel,aiohttp" if os.environ.get("IPFS_ACCEL_HTTP") == "aiohttp" else "otel"
    _run(*install, f"{ROOT / 'core'}[{extras}]", wheel, "pytest>=8", "opentelemetry-sdk>=1.27")
    return venv, python


def test_example_plugin_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    """Wheel -> fresh venv with the core -> Registry() finds it -> the conformance suite passes."""
    venv, python = fresh_venv_with(EXAMPLE, "ipfs_accel_plugin_example-*.whl", tmp_path)

    # The venv holds only the core and the example: nothing from this checkout is importable.
    found = _run(python, "-c", "import ipfs_accel; from ipfs_accel import Registry; "
                 "r = Registry(); print(r.names(), r.hooks('example').plugin.__file__, "
                 "ipfs_accel.__file__)", cwd=tmp_path)
    assert "['example']" in found
    assert str(venv) in found and str(ROOT / "core" / "src") not in found

    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests)
    out = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests, cwd=tmp_path)
    assert "8 passed" in out, out  # the kit's checks, telemetry among them

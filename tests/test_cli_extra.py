"""The command is the ``cli`` extra: without typer and rich it says what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

_BLOCKED = """
import sys
sys.modules[{name!r}] = None  # as if the extra were not installed
from ipfs_accel.cli import main
sys.exit(main(["backends"]))
"""


@pytest.mark.parametrize("name", ["typer", "rich"])
def test_without_the_cli_extra_the_command_prints_one_line_and_exits_2(name: str) -> None:
    """No typer (or no rich): one line on stderr naming the extra, exit code 2, no traceback."""
    r = subprocess.run([sys.executable, "-c", _BLOCKED.format(name=name)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "pip install 'ipfs-accel-core[cli]'" in lines[0]
    assert name in lines[0]
    assert "Traceback" not in r.stderr


def test_the_extra_is_checked_without_importing_it() -> None:
    """Checking for the extra loads neither typer nor rich; the app loads them when it runs."""
    code = ("import sys; from ipfs_accel import cli; assert cli._missing_extra() == []; "
            "print(sorted(m for m in ('typer', 'rich') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=True)
    assert r.stdout.strip() == "[]"

"""The README's rendering of a trace comes from a script anyone can run: it prints the pool
call's span with each attempt under it and the waits and failovers between them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ipfs_accel.testing import import_or_skip

import_or_skip("opentelemetry.sdk")  # the script reads the spans back with it
import_or_skip("ipfs_accel_openai")

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "telemetry" / "trace_tree.py"


def test_the_trace_tree_example_prints_a_failed_over_call() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "answer: 'Paris.'" in out
    assert "chat gpt-4o-mini  [CLIENT" in out and "gen_ai.provider.name=openai" in out
    attempts = [line for line in out.splitlines() if "attempt " in line]
    assert len(attempts) >= 3
    assert "endpoint_id=gpu-1" in attempts[0] and "error.type=OverloadedError" in attempts[0]
    assert "endpoint_id=gpu-2" in attempts[1] and "error.type=RateLimitError" in attempts[1]
    assert "endpoint_id=gpu-2" in attempts[-1] and "error.type" not in attempts[-1]
    assert out.count("event ipfs_accel.failover ") >= 2
    assert "event ipfs_accel.wait " in out  # gpu-2 paused, gpu-1 failing: the call waited

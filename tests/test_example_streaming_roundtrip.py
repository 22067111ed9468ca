"""The second example plugin (brook: chat, streams, tool calls, embed), proven as the first one
is: built as a wheel, installed with the core in a fresh venv, found through its entry point,
conformant."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_example_plugin_roundtrip import ROOT, _run, fresh_venv_with

EXAMPLE = ROOT / "examples" / "ipfs-accel-plugin-streaming"
KIT_TESTS = ("test_counters", "test_keys", "test_backoff", "test_queue", "test_request_id",
             "test_classify_error", "test_stream", "test_params", "test_operations",
             "test_finish_reason", "test_tools", "test_telemetry")
# the last five drive what the case's optional parts declare (tools: its ToolCase)
TOOL_TESTS = ("test_round_trip", "test_round_trip_async", "test_a_streamed_call_is_joined",
              "test_tools_on_generate_are_refused_before_sending")
"""brook's own tests of the tool loop a third-party plugin should have."""

pytestmark = pytest.mark.slow


def test_streaming_example_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    """Wheel -> fresh venv with the core -> Registry() finds brook -> its tests and the kit pass."""
    venv, python = fresh_venv_with(EXAMPLE, "ipfs_accel_plugin_brook-*.whl", tmp_path)

    # The venv holds only the core and brook: nothing from this checkout is importable.
    found = _run(python, "-c", "import ipfs_accel; from ipfs_accel import Registry; "
                 "r = Registry(); b = r.get('brook'); print(r.names(), "
                 "r.hooks('brook').plugin.__file__, ipfs_accel.__file__, "
                 "sorted(b.info.operations))", cwd=tmp_path)
    assert "['brook']" in found
    assert str(venv) in found and str(ROOT / "core" / "src") not in found
    assert "['chat', 'embed', 'generate', 'stream_chat', 'stream_generate']" in found

    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests)
    out = _run(python, "-m", "pytest", "-v", "-p", "no:cacheprovider", tests, cwd=tmp_path)
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, out
    # the case covers every check but batch (brook has no provider batches: n/a)
    assert "skipped" not in summary.replace("1 skipped", ""), out
    assert re.search(r"::test_batch SKIPPED", out), out
    for name in (*KIT_TESTS, *TOOL_TESTS, "test_async_stream", "test_embed_rows_by_index",
                 "test_discovered_through_its_entry_point"):
        assert re.search(rf"::{name} PASSED", out), f"{name} did not pass:\n{out}"

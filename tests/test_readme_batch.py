"""The README's provider batch example runs as written, and so does the batch script in
examples/, against the kit's loopback server answering as OpenAI's Batch API does (the
openai plugin's own conformance answers)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ipfs_accel import BadRequestError, ChatResult
from ipfs_accel.testing import FaultServer, import_or_skip

import_or_skip("ipfs_accel_openai")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCRIPT = ROOT / "examples" / "batch" / "batch_openai.py"
KEY = "sk-readme-batch"
# the README goes on from its first example, which made `openai` so
PREAMBLE = 'from ipfs_accel import Registry\nopenai = Registry().get("openai")\n'


def _snippet() -> str:
    section = README.read_text().split("## Provider batches", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "no python example under '## Provider batches'"
    return found.group(1)


def test_readme_batch_runs_against_the_loopback_provider(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    """Both calls go as one batch; wait reports the end, results print each key once (q1's
    answer, q2's 400), and get_batch follows the same job to the same typed outcomes."""
    from ipfs_accel_openai import conformance_case  # noqa: PLC0415

    answers = conformance_case().batch
    assert answers is not None
    outcomes = [("q1", "completed"), ("q2", "failed")]
    ended = answers.described("batch_readme", "completed", outcomes)
    downloads = answers.results("batch_readme", outcomes)
    with FaultServer() as server:
        # the snippet's job, then get_batch's: one poll and the downloads each
        server.script([*answers.submitted("batch_readme"), ended, *downloads,
                       ended, *downloads])
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        scope: dict[str, Any] = {}
        exec(compile(PREAMBLE + _snippet(), str(README), "exec"), scope)
        printed = capsys.readouterr().out.splitlines()
        openai, job, again = scope["openai"], scope["job"], scope["again"]
        stats = openai.get_stats()
        assert again.id == job.id and again.status() == "completed"
        reread = list(again.results())
        requests = server.requests
        left = server.pending()
    assert left == 0
    assert printed[0] == "completed 1 of 2"  # the provider's counts at the one poll
    by_key = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in printed[1:]}
    assert len(printed) == 3 and sorted(by_key) == ["q1", "q2"]  # each key once
    assert by_key["q1"] == answers.text
    assert by_key["q2"].startswith("conformance: bad request") and "status=400" in by_key["q2"]
    assert [key for key, _ in reread] == ["q1", "q2"]
    got = dict(reread)
    assert isinstance(got["q1"], ChatResult) and got["q1"].text == answers.text
    assert isinstance(got["q2"], BadRequestError) and got["q2"].status == 400
    assert (stats.batch_input_tokens, stats.batch_output_tokens) == answers.tokens
    lines = [json.loads(line) for line in requests[0].body.splitlines()
             if line.startswith(b'{"custom_id"')]
    assert [line["custom_id"] for line in lines] == ["q1", "q2"]
    assert lines[1]["body"]["messages"] == [{"role": "user", "content": "Say hi"}]
    for request in requests:  # the key in the auth header only
        assert request.header("authorization") == f"Bearer {KEY}"
        assert KEY not in request.path and KEY.encode() not in request.body


def test_the_batch_example_prints_a_batch_end_to_end() -> None:
    """The script submits three calls as one batch, shows each poll, prints each key's
    outcome (one a BadRequestError), follows the job again and prints the batch stats."""
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("submitted 3 calls as batch batch_demo_1 (job ipfsb1.")
    polls = [line.split()[0] for line in out.splitlines() if " done (" in line]
    assert polls == ["validating", "in_progress", "finalizing", "completed"]
    assert "completed    3 of 3 done (2 completed, 1 failed)" in out
    results = out.split("results:\n", 1)[1].split("get_batch(", 1)[0].splitlines()
    assert [line.split()[0] for line in results] == ["greet", "joke", "bad"]  # each once
    assert "greet  'pong'  (9 in, 3 out)" in results[0]
    assert results[2].startswith("  bad    BadRequestError: ") and "status=400" in results[2]
    assert re.search(r"^get_batch\(ipfsb1\.\S+\): completed, 3 of 3 done$", out, re.MULTILINE)
    assert "batch_input_tokens=18 batch_output_tokens=6" in out and "retries=1" in out
    assert "GET /v1/batches/batch_demo_1 -> 429" in out
    uploaded = json.loads(out.rsplit("the uploaded line for 'joke':\n", 1)[1])
    assert uploaded["body"]["max_completion_tokens"] == 40
    assert "sk-demo" not in out + done.stderr

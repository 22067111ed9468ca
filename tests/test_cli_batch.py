"""`ipfs-accel run --batch` through its real console script, on a fake OpenAI batch provider.

The resume guarantee, end to end: the run is SIGKILLed while the provider holds one of its
requests (the upload, the create, a poll, a download), then resumed; every input line ends
with exactly one result, and no line is ever part of two batches (the provider records
every custom_id of every batch it created). No test sleeps: each waits for the provider to
report that it holds the request, kills the run, then releases the request. After every
test, the API key is in no output of any run and in no file the runs left.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _batch_provider import FakeBatchProvider, Hold
from _cli_fixtures import read_jsonl, script

KEY = "sk-canary-batch-5f1e9c0d7a"
SAFETY = 120  # seconds: only so a broken run cannot hang the suite
LINES = [
    {"id": "u1", "messages": [{"role": "user", "content": "hello one"}]},
    {"id": "u2", "messages": [{"role": "user", "content": "please fail"}]},
    {"id": "u3", "messages": [{"role": "user", "content": "expire me"}]},
    {"id": "u4", "messages": "not a list"},  # a bad line: answered, never sent
    {"id": 5, "messages": [{"role": "user", "content": "hello five"}]},
    {"messages": [{"role": "user", "content": "hello six"}]},
    {"id": "u7", "messages": [{"role": "user", "content": "hello seven"}],
     "params": {"temperature": 0}},
]
SENT = ["L1", "L2", "L3", "L5", "L6", "L7"]  # the custom_ids of the lines sent
IDS = {1: "u1", 2: "u2", 3: "u3", 4: "u4", 5: 5, 6: None, 7: "u7"}
TYPES = {2: "BadRequestError", 3: "BatchExpiredError", 4: "BadLine"}


class Runs:
    """Runs the CLI; keeps every run's stdout and stderr (none may show the key)."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.url = url
        self.input = tmp / "calls.jsonl"
        self.input.write_text("".join(json.dumps(line) + "\n" for line in LINES))
        self.output = tmp / "calls.results.jsonl"
        self.ledger = tmp / "calls.results.jsonl.batches.jsonl"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(
            ("OPENAI_", "IPFS_ACCEL_", "OTEL_EXPORTER_"))}
        self.env.update(OPENAI_API_KEY=KEY, COLUMNS="200")
        self.texts: list[str] = []

    def args(self, *extra: str, output: Path | None = None) -> list[str]:
        return [script(), "run", str(self.input), "-b", "openai", "-u", self.url, "--batch",
                "--poll-every", "0", "-o", str(output or self.output), *extra]

    def run(self, *extra: str, output: Path | None = None,
            quiet: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cli(self.args(*extra, *(["-q"] if quiet else []), output=output))

    def cli(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(args, env=self.env, capture_output=True, text=True,
                           timeout=SAFETY, check=False)
        self.texts += [r.stdout, r.stderr]
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def batch(self, command: str, *extra: str,
              output: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.cli([script(), "batch", command, str(output or self.output), *extra])

    def killed_at(self, hold: Hold, *extra: str) -> str:
        """Start a run, SIGKILL it once the provider holds ``hold``'s request, then
        release that request; the run's stderr."""
        proc = subprocess.Popen(self.args("-q", *extra), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

        def ended() -> None:  # a run that ends before the hold wakes the test too
            proc.wait()
            hold.reached.set()

        threading.Thread(target=ended, daemon=True).start()
        try:
            hold.reached.wait(SAFETY)
            alive = proc.returncode is None
        finally:
            proc.kill()
            proc.wait()
            hold.release()
        out, err = proc.communicate()
        self.texts += [out, err]
        assert alive, f"the run ended ({proc.returncode}) before the {hold.stage} was held: {err}"
        return err


@pytest.fixture
def provider() -> Iterator[FakeBatchProvider]:
    with FakeBatchProvider(KEY) as fake:
        yield fake
    assert fake.refused == [], fake.refused  # every request the CLI made was well formed


@pytest.fixture
def runs(tmp_path: Path, provider: FakeBatchProvider) -> Iterator[Runs]:
    runs = Runs(tmp_path, provider.url)
    yield runs
    # the key is in no output of any run, nor in any file the runs left
    for text in runs.texts:
        assert KEY not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def _ledger(runs: Runs) -> list[dict[str, Any]]:
    return read_jsonl(runs.ledger)


def _check_results(path: Path, types: dict[int, str] = TYPES) -> list[dict[str, Any]]:
    """Exactly one result per input line, each with its user id, the right outcome."""
    results = read_jsonl(path)
    assert sorted(r["line"] for r in results) == list(range(1, len(LINES) + 1)), results
    for r in results:
        assert r["id"] == IDS[r["line"]], r
        if r["line"] in types:
            assert r["ok"] is False and r["error"]["type"] == types[r["line"]], r
        else:
            assert r["ok"] is True, r
            said = LINES[r["line"] - 1]["messages"][-1]["content"]
            assert r["text"] == f"echo: {said}"
            assert r["usage"] == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
    return results


def _sent_once(provider: FakeBatchProvider) -> None:
    assert Counter(provider.submitted) == Counter(SENT), provider.submitted


def test_a_whole_batch_run_answers_every_line_once(runs: Runs,
                                                   provider: FakeBatchProvider) -> None:
    """Submitted, polled to its end, both files downloaded: one result per line (the bad
    one answered without being sent), the ledger saying submitting, submitted, written."""
    r = runs.run(quiet=False)  # with its progress bar
    assert r.returncode == 1, r.stderr  # a line failed
    assert "4 ok, 2 failed, 1 bad lines" in r.stderr
    results = _check_results(runs.output)
    assert {r["server_request_id"] for r in results if r["ok"]} == {"req_L1", "req_L5",
                                                                  "req_L6", "req_L7"}
    _sent_once(provider)
    [batch_id] = provider.batches
    records = _ledger(runs)
    assert [next(iter(r)) for r in records] == ["run", "submitting", "submitted", "written"]
    assert records[1]["items"] == [[n, IDS[n]] for n in (1, 2, 3, 5, 6, 7)]
    assert records[2]["batch"] == records[3]["written"] == batch_id
    assert records[2]["submitted"] == records[1]["submitting"]
    assert records[0]["run"]["backend"] == "openai"
    assert provider.status_of(batch_id) == "completed"
    # run again without --resume: refused, nothing sent
    r = runs.run()
    assert r.returncode == 2 and "already exists" in r.stderr
    assert provider.created == 1


def test_killed_while_uploading_resubmits_only_when_told(runs: Runs,
                                                         provider: FakeBatchProvider) -> None:
    """The upload held and the run killed: the batch is in doubt, --resume refuses and
    names it; --resume --resubmit sends its lines again and finishes, each line once."""
    runs.killed_at(provider.hold("upload"))
    assert provider.created == 0
    [intent] = [r for r in _ledger(runs) if "submitting" in r]
    label = intent["submitting"]
    r = runs.run("--resume")
    assert r.returncode == 2, r.stderr
    assert "in doubt" in r.stderr and label in r.stderr and "--resubmit" in r.stderr
    assert provider.created == 0
    r = runs.batch("status")
    assert r.returncode == 0 and f"{label}: in doubt" in r.stderr
    r = runs.run("--resume", "--resubmit")
    assert r.returncode == 1, r.stderr
    _check_results(runs.output)
    _sent_once(provider)  # the held upload never became a batch
    assert provider.created == 1
    assert {"abandoned": label} in _ledger(runs)


def test_killed_in_the_create_window_refuses_to_resend(runs: Runs,
                                                      provider: FakeBatchProvider) -> None:
    """The provider created the batch but the run died before hearing so: --resume refuses
    to send its lines again and names the label the provider's batch carries."""
    runs.killed_at(provider.hold("create"))
    assert provider.created == 1
    [batch_id] = provider.batches
    [intent] = [r for r in _ledger(runs) if "submitting" in r]
    assert not [r for r in _ledger(runs) if "submitted" in r]
    assert intent["submitting"] in json.dumps(provider.batches[batch_id].metadata)
    before = len(provider.requests)
    r = runs.run("--resume")
    assert r.returncode == 2, r.stderr
    assert "in doubt" in r.stderr and intent["submitting"] in r.stderr
    assert provider.created == 1 and len(provider.requests) == before  # nothing sent
    _sent_once(provider)


def test_killed_while_polling_resumes_the_same_batch(runs: Runs,
                                                     provider: FakeBatchProvider) -> None:
    """Killed at the second poll: --resume follows the recorded batch to its end, creates
    none, and answers every line once."""
    runs.killed_at(provider.hold("poll", nth=2))
    [batch_id] = provider.batches
    assert {"submitted": _ledger(runs)[1]["submitting"], "batch": batch_id,
            "operation": "chat"} in _ledger(runs)
    r = runs.run("--resume")
    assert r.returncode == 1, r.stderr
    _check_results(runs.output)
    assert provider.created == 1
    _sent_once(provider)
    assert {"written": batch_id} in _ledger(runs)


@pytest.mark.parametrize("resume", ["run", "results"])
@pytest.mark.parametrize("nth", [1, 2], ids=["first-file", "second-file"])
def test_killed_mid_download_writes_only_the_rest(runs: Runs, provider: FakeBatchProvider,
                                                  nth: int, resume: str) -> None:
    """Killed with half of the ``nth`` output file downloaded (with nth 2, every result of
    the first file is in OUTPUT before the kill, a failure among them): --resume (or
    `batch results`) writes the results not in OUTPUT yet, every line ends with exactly
    one, no batch is created."""
    provider.fail_in_output = True  # the 400 line in the output file, not the error file
    runs.killed_at(provider.hold("download", nth=nth))
    before = read_jsonl(runs.output)
    lines = [r["line"] for r in before]
    assert len(lines) == len(set(lines)) < len(LINES)
    if nth == 2:  # the first file was read whole before the second was asked for
        first = provider.downloaded[0]
        assert {f"L{n}" for n in lines} >= set(first), (first, lines)
        assert any(not r["ok"] and r["line"] != 4 for r in before), before
    r = runs.run("--resume") if resume == "run" else runs.batch("results", "--poll-every", "0")
    assert r.returncode == 1, r.stderr
    _check_results(runs.output)
    assert provider.created == 1
    _sent_once(provider)


def test_detach_then_status_results_and_cancel(runs: Runs, tmp_path: Path,
                                               provider: FakeBatchProvider) -> None:
    """--detach submits and exits; `batch status` shows the batch, `batch results` waits and
    writes the results; `batch cancel` cancels another detached run's batch, whose lines
    `batch results` then answers as cancelled."""
    r = runs.run("--detach")
    assert r.returncode == 0, r.stderr
    [batch_id] = provider.batches
    assert batch_id in r.stderr and "detached" in r.stderr
    r = runs.batch("status")
    assert r.returncode == 0, r.stderr
    assert batch_id in r.stderr and "results not written" in r.stderr
    r = runs.batch("results", "--poll-every", "0")
    assert r.returncode == 1, r.stderr
    _check_results(runs.output)
    r = runs.batch("status")
    assert "completed" in r.stderr and "results written" in r.stderr
    other = tmp_path / "other.results.jsonl"
    r = runs.run("--detach", output=other)
    assert r.returncode == 0, r.stderr
    [second] = [b for b in provider.batches if b != batch_id]
    r = runs.batch("cancel", output=other)
    assert r.returncode == 0, r.stderr
    assert second in r.stderr and "cancelling" in r.stderr
    assert provider.status_of(second) == "cancelling"
    r = runs.batch("results", "--poll-every", "0", output=other)
    assert r.returncode == 1, r.stderr
    assert provider.status_of(second) == "cancelled"
    cancelled = {n: "BatchCancelledError" for n in (1, 2, 3, 5, 6, 7)}
    _check_results(other, {**cancelled, 4: "BadLine"})
    assert provider.created == 2 and provider.batch_ids(second) == SENT


def test_retry_failed_sends_only_the_failed_lines_again(runs: Runs,
                                                        provider: FakeBatchProvider) -> None:
    """--retry-failed --batch: a new batch of only the lines that failed or expired (the bad
    line is answered again, not sent); their new results replace the old ones."""
    assert runs.run().returncode == 1
    [first] = provider.batches
    provider.failing = False  # this time they answer
    r = runs.run("--retry-failed")
    assert r.returncode == 1, r.stderr  # the bad line is still bad
    [second] = [b for b in provider.batches if b != first]
    assert sorted(provider.batch_ids(second)) == ["L2", "L3"]
    assert Counter(provider.submitted) == Counter([*SENT, "L2", "L3"])
    _check_results(runs.output, {4: "BadLine"})
    assert {"written": second} in _ledger(runs)


def test_a_refused_create_frees_its_lines_and_never_shows_the_key(
        runs: Runs, provider: FakeBatchProvider) -> None:
    """The provider refuses the create with an error quoting the request's Authorization
    header: the run fails with the key scrubbed from all it prints and writes, the batch
    is not in doubt (the provider said no), and --resume sends its lines."""
    provider.echo_key_at = "create"
    r = runs.run()
    assert r.returncode == 1 and "BadRequestError" in r.stderr and "Bearer" in r.stderr
    assert "once the cause is fixed, --resume sends them" in r.stderr
    assert KEY in provider.echoed  # it was echoed
    assert provider.created == 0
    [intent] = [r for r in _ledger(runs) if "submitting" in r]
    assert {"abandoned": intent["submitting"]} in _ledger(runs)
    provider.echo_key_at = ""
    provider.refused.clear()  # refused on purpose
    r = runs.run("--resume")
    assert r.returncode == 1, r.stderr
    _check_results(runs.output)
    _sent_once(provider)


def test_an_openai_batch_file_is_batched_under_its_own_ids(
        runs: Runs, provider: FakeBatchProvider) -> None:
    """An existing OpenAI batch file runs with --batch as it is: each line goes to the
    provider keyed by its line (never twice), and its result carries its own custom_id."""
    rows = [{"custom_id": f"req-{n}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-4o-mini", "messages": [
                 {"role": "user", "content": f"hello {n}"}], "max_tokens": 9}}
            for n in (1, 2)]
    runs.input.write_text("".join(json.dumps(row) + "\n" for row in rows))
    r = runs.run()
    assert r.returncode == 0, r.stderr
    assert Counter(provider.submitted) == Counter(["L1", "L2"])
    [batch_id] = provider.batches
    sent = provider.batches[batch_id].input_file.lines
    # the body is OpenAI's vocabulary, mapped by the plugin as an online chat's
    assert sent["L1"]["body"]["max_completion_tokens"] == 9
    assert "custom_id" not in sent["L1"]["body"]
    results = {r["id"]: r for r in read_jsonl(runs.output)}
    assert set(results) == {"req-1", "req-2"}
    assert results["req-2"]["ok"] and results["req-2"]["text"] == "echo: hello 2"
    assert results["req-2"]["line"] == 2

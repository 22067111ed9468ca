"""The ipfs-accel command through its real console script: backends, chat, embed, run, stats."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from _cli_fixtures import FakeAPI, cli, cli_env, make_site, read_jsonl, script

KEY = "sk-clitest-very-secret-0001"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(make_site(tmp_path))


@pytest.fixture
def keyed(env: dict[str, str]) -> dict[str, str]:
    return {**env, "CLITEST_API_KEY": KEY}


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("error:")
    return lines[0]


def test_help_lists_every_command(env: dict[str, str]) -> None:
    """`ipfs-accel --help` names all the commands and exits 0."""
    r = cli(["--help"], env=env)
    assert r.returncode == 0
    for command in ("backends", "chat", "embed", "run", "stats", "report", "demo"):
        assert command in r.stdout


def test_backends_lists_plugins_key_state_and_broken_ones(env: dict[str, str]) -> None:
    """`backends` shows distribution, version, operations, env vars, key state, broken plugins."""
    r = cli(["backends"], env=env)
    assert r.returncode == 0, r.stderr
    assert "clitest" in r.stdout and "ipfs-accel-clitest" in r.stdout
    assert "CLITEST_API_KEY" in r.stdout and "missing" in r.stdout
    assert "broken" in r.stdout and "clitest_no_such_module" in r.stdout
    r = cli(["backends", "--json"], env={**env, "CLITEST_API_KEY": KEY})
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["clitest"]["key_set"] is True
    assert rows["clitest"]["operations"] == ["chat", "embed", "stream_chat"]
    assert rows["clitest"]["features"] == {"chat": ["json_schema", "tools"], "embed": [],
                                           "stream_chat": ["tools"]}
    assert "ModuleNotFoundError" in rows["broken"]["error"]
    assert KEY not in r.stdout + r.stderr


def test_chat_streams_the_reply_with_our_request_id_and_key(keyed: dict[str, str]) -> None:
    """`chat` streams the text, sends --request-id and only the endpoint's key."""
    with FakeAPI() as api:
        r = cli(["chat", "-b", "clitest", "-u", api.url, "--request-id", "rid-42", "Hi"],
                env=keyed)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello from fake\n"
    (req,) = api.requests
    assert req["headers"]["x-request-id"] == "rid-42"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    assert req["body"]["messages"] == [{"role": "user", "content": "Hi"}]


def test_chat_json_reads_prompt_from_stdin(keyed: dict[str, str]) -> None:
    """`chat --json` with no prompt argument reads stdin and prints the full result."""
    with FakeAPI() as api:
        r = cli(["chat", "-b", "clitest", "-u", api.url, "-m", "m-9", "--json"], env=keyed,
                stdin="from stdin\n")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["text"] == "echo: from stdin\n"
    assert data["model"] == "m-9"
    assert data["usage"] == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12,
                             "cache_read_tokens": 2, "cache_write_tokens": 0,
                             "reasoning_tokens": 0, "details": {"queue_time": 0.25}}
    assert (data["finish_reason"], data["native_finish_reason"]) == ("stop", None)
    assert data["request_id"].startswith("req_")


def test_chat_api_key_env_names_another_variable(env: dict[str, str]) -> None:
    """--api-key-env reads the key from that variable."""
    with FakeAPI() as api:
        r = cli(["chat", "-b", "clitest", "-u", api.url, "--api-key-env", "OTHER", "x"],
                env={**env, "OTHER": "other-key-7"})
    assert r.returncode == 0, r.stderr
    assert api.requests[0]["headers"]["authorization"] == "Bearer other-key-7"


def test_chat_missing_key_is_one_line_naming_the_variable(env: dict[str, str]) -> None:
    """No key: exit 2, one line that says which variable to set; no request sent."""
    r = cli(["chat", "-b", "clitest", "hi"], env=env)
    assert r.returncode == 2
    line = _one_error_line(r.stderr)
    assert "CLITEST_API_KEY" in line and "--api-key-env" in line
    r = cli(["chat", "-b", "clitest", "--api-key-env", "NOPE_KEY", "hi"], env=env)
    assert r.returncode == 2
    assert "NOPE_KEY" in _one_error_line(r.stderr)


def test_unknown_backend_is_one_line(keyed: dict[str, str]) -> None:
    """An unknown backend: exit 2 and the installed ones named."""
    r = cli(["chat", "-b", "nosuch", "hi"], env=keyed)
    assert r.returncode == 2
    line = _one_error_line(r.stderr)
    assert "nosuch" in line and "clitest" in line


def test_unreachable_url_is_one_line_and_debug_shows_traceback(keyed: dict[str, str]) -> None:
    """Connection refused: one line with backend, endpoint, URL, request ID and a hint."""
    args = ["chat", "-b", "clitest", "-u", "http://127.0.0.1:9", "--max-retries", "1",
            "--request-id", "rid-unreach", "hi"]
    r = cli(args, env=keyed)
    assert r.returncode == 1
    line = _one_error_line(r.stderr)
    for part in ("clitest", "clitest-1", "http://127.0.0.1:9", "rid-unreach", "--endpoint-url"):
        assert part in line
    r = cli([*args, "--debug"], env=keyed)
    assert r.returncode == 1
    assert "Traceback" in r.stderr


def test_server_error_never_prints_the_key(keyed: dict[str, str]) -> None:
    """A 401 whose message echoes the key: the line says auth failed, the key is scrubbed."""
    with FakeAPI(status=401) as api:
        r = cli(["chat", "-b", "clitest", "-u", api.url, "hi"], env=keyed)
    assert r.returncode == 1
    line = _one_error_line(r.stderr)
    assert "AuthenticationError" in line and "status 401" in line
    assert KEY not in r.stdout + r.stderr


def test_embed_prints_vectors_and_json(keyed: dict[str, str]) -> None:
    """`embed` prints one vector per text; --json gives them in full."""
    with FakeAPI() as api:
        r = cli(["embed", "-b", "clitest", "-u", api.url, "a", "b"], env=keyed)
        assert r.returncode == 0, r.stderr
        assert "dim=2" in r.stdout
        r = cli(["embed", "-b", "clitest", "-u", api.url, "--json"], env=keyed,
                stdin="one\ntwo\n\nthree\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["vectors"] == [[0.5, 0.0], [0.5, 1.0], [0.5, 2.0]]


def _write_batch(path: Path, n: int, *, bad: dict[int, str] | None = None) -> None:
    lines = []
    for i in range(1, n + 1):
        if bad and i in bad:
            lines.append(bad[i])
        elif i % 5 == 0:
            lines.append(json.dumps({"id": f"e{i}", "input": [f"text {i}"]}))
        else:
            lines.append(json.dumps({"id": f"c{i}", "prompt": f"question {i}"}))
    path.write_text("\n".join(lines) + "\n")


def test_run_answers_every_line_and_reports_bad_lines(
    keyed: dict[str, str], tmp_path: Path
) -> None:
    """`run`: one result per line, bad lines answered with their line number, stats file."""
    batch = tmp_path / "calls.jsonl"
    _write_batch(batch, 12, bad={3: "{not json", 7: json.dumps({"id": "x", "mesages": []})})
    stats = tmp_path / "stats.json"
    with FakeAPI() as one, FakeAPI() as two:
        r = cli(["run", str(batch), "-b", "clitest", "-u", one.url, "-u", two.url,
                 "-c", "4", "--stats-file", str(stats)], env=keyed)
    assert r.returncode == 1  # two bad lines
    assert "calls.jsonl:3:" in r.stderr and "calls.jsonl:7:" in r.stderr
    assert "mesages" in r.stderr
    results = sorted(read_jsonl(tmp_path / "calls.results.jsonl"), key=lambda r: r["line"])
    assert [rec["line"] for rec in results] == list(range(1, 13))
    assert not results[2]["ok"] and results[2]["error"]["type"] == "BadLine"
    assert not results[6]["ok"]
    assert results[0] == {**results[0], "id": "c1", "ok": True, "text": "echo: question 1"}
    assert results[4]["vectors"] == [[0.5, 0.0]]
    assert {rec["endpoint"] for rec in results if rec["ok"]} == {"clitest-1", "clitest-2"}
    assert one.requests and two.requests  # spread over both endpoints
    r = cli(["stats", str(stats)], env=keyed)
    assert r.returncode == 0, r.stderr
    assert "clitest-1" in r.stdout and "clitest-2" in r.stdout and "all" in r.stdout
    document = json.loads(stats.read_text())
    assert document["aggregate"]["successful_requests"] == 10


def test_run_refuses_to_overwrite_and_stats_rejects_other_files(
    keyed: dict[str, str], tmp_path: Path
) -> None:
    """An existing output needs --resume or --overwrite; `stats` wants a stats file."""
    batch = tmp_path / "b.jsonl"
    _write_batch(batch, 1)
    (tmp_path / "b.results.jsonl").write_text('{"line": 1}\n')
    r = cli(["run", str(batch), "-b", "clitest"], env=keyed)
    assert r.returncode == 2
    assert "--resume" in _one_error_line(r.stderr)
    r = cli(["stats", str(batch)], env=keyed)
    assert r.returncode == 2
    assert "not" in _one_error_line(r.stderr)


def test_stats_reads_the_file_by_type_and_names_a_wrong_field(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`stats FILE` shows a saved file (and --json gives it back with average latency); a
    field of the wrong type is one line naming that field, not a crash drawing the table."""
    stats = {"total_requests": 3, "successful_requests": 2, "failed_requests": 1,
             "retries": 4, "latency_seconds_total": 1.5, "latency_seconds_max": 1.0,
             "average_latency_seconds": 0.5}
    document: dict[str, Any] = {"format": "ipfs-accel-stats/1", "written_at": "2025-01-01T00:00:00+0000",
                                 "endpoints": [{"backend": "b", "endpoint": "b-1",
                                                "base_url": "http://h", "stats": stats}],
                                 "aggregate": {**stats, "endpoints_count": 1}}
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(document))
    r = cli(["stats", str(path)], env=env)
    assert r.returncode == 0, r.stderr
    assert "b-1" in r.stdout and "1 endpoints" in r.stdout
    r = cli(["stats", str(path), "--json"], env=env)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["endpoints"][0]["stats"]["retries"] == 4
    assert shown["aggregate"]["average_latency_seconds"] == 0.5
    document["endpoints"][0]["stats"] = {**stats, "retries": "four"}
    path.write_text(json.dumps(document))
    r = cli(["stats", str(path)], env=env)
    assert r.returncode == 2
    line = _one_error_line(r.stderr)
    assert "endpoints[0].stats.retries" in line and "`int`" in line


def test_run_resume_after_kill_answers_every_line_exactly_once(
    keyed: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL mid-batch, rerun with --resume: every input line answered exactly once."""
    batch = tmp_path / "slow.jsonl"
    n = 60
    _write_batch(batch, n)
    out = tmp_path / "slow.results.jsonl"
    # line 59 is held by the server until the kill, so the first run can never finish
    with FakeAPI(hold="question 59") as api:
        proc = subprocess.Popen(
            [script(), "run", str(batch), "-b", "clitest", "-u", api.url, "-c", "3", "-q"],
            env=keyed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_records(out, 10, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        api.release.set()
        first = read_jsonl(out)
        assert 10 <= len(first) < n
        assert 59 not in {rec["line"] for rec in first}
        r = cli(["run", str(batch), "-b", "clitest", "-u", api.url, "-c", "8", "--resume",
                 "--ordered"], env=keyed)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    lines = [rec["line"] for rec in read_jsonl(out)]
    assert lines == list(range(1, n + 1))  # exactly once each, sorted by --ordered
    assert all(rec["ok"] for rec in read_jsonl(out))


def _wait_for_records(path: Path, n: int, proc: subprocess.Popen[bytes]) -> None:
    # waits for the file, not for time: the deadline only stops a broken run hanging the suite
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never held {n} results (exit code {proc.poll()})")


def test_run_writes_each_answer_as_it_ends_so_a_kill_costs_only_the_slow_line(
    keyed: dict[str, str], tmp_path: Path
) -> None:
    """One line held by the server: every later line is written meanwhile; SIGKILL, a torn
    last line, then --resume sends only the held line again."""
    batch = tmp_path / "b.jsonl"
    n = 40
    _write_batch(batch, n)
    out = tmp_path / "b.results.jsonl"
    with FakeAPI(hold="question 2") as api:
        proc = subprocess.Popen(
            [script(), "run", str(batch), "-b", "clitest", "-u", api.url, "-c", "4", "-q"],
            env=keyed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_records(out, n - 1, proc)
            assert api.held.is_set()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        first = read_jsonl(out)
        assert sorted(rec["line"] for rec in first) == [i for i in range(1, n + 1) if i != 2]
        with out.open("a") as f:
            f.write('{"line": 2, "id": "c2", "ok": tr')  # a write the kill cut short
        before = len(api.requests)
        api.release.set()
        r = cli(["run", str(batch), "-b", "clitest", "-u", api.url, "--resume"], env=keyed)
        assert r.returncode == 0, r.stderr
        assert f"{n - 1} lines already answered" in r.stderr and "1 to go" in r.stderr
        resent = api.requests[before:]
    assert [req["body"]["messages"][-1]["content"] for req in resent] == ["question 2"]
    results = read_jsonl(out)
    assert sorted(rec["line"] for rec in results) == list(range(1, n + 1))
    assert results[-1]["line"] == 2 and all(rec["ok"] for rec in results)


def test_run_ordered_sorts_the_file_by_line_once_the_batch_is_done(
    keyed: dict[str, str], tmp_path: Path
) -> None:
    """--ordered: answers still written as they end (line 1 last), the file then sorted."""
    batch = tmp_path / "o.jsonl"
    n = 20
    _write_batch(batch, n)
    out = tmp_path / "o.results.jsonl"
    with FakeAPI(hold="question 1") as api:
        proc = subprocess.Popen(
            [script(), "run", str(batch), "-b", "clitest", "-u", api.url, "-c", "3", "-q",
             "--ordered"], env=keyed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for_records(out, n - 1, proc)
            assert 1 not in {rec["line"] for rec in read_jsonl(out)}
            api.release.set()
            _, stderr = proc.communicate(timeout=120)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert [rec["line"] for rec in read_jsonl(out)] == list(range(1, n + 1))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_run_retry_failed_runs_failed_lines_again_one_result_each(
    keyed: dict[str, str], tmp_path: Path
) -> None:
    """--resume keeps failed lines as answered (and says so); --retry-failed runs only those
    again and leaves one result per line, the new one."""
    batch = tmp_path / "f.jsonl"
    n = 10
    _write_batch(batch, n)
    out = tmp_path / "f.results.jsonl"
    run = ["run", str(batch), "-b", "clitest", "--max-retries", "0", "-c", "3"]
    with FakeAPI(fail={"question 3", "question 7"}) as api:
        run += ["-u", api.url]
        r = cli(run, env=keyed)
        assert r.returncode == 1
        assert sorted(rec["line"] for rec in read_jsonl(out) if not rec["ok"]) == [3, 7]
        sent = len(api.requests)
        api.fail.clear()
        r = cli([*run, "--resume"], env=keyed)
        assert r.returncode == 0, r.stderr
        assert len(api.requests) == sent
        assert "2 failed: --retry-failed" in r.stderr
        r = cli([*run, "--resume", "--retry-failed"], env=keyed)
        assert r.returncode == 0, r.stderr
        resent = sorted(req["body"]["messages"][-1]["content"] for req in api.requests[sent:])
    assert resent == ["question 3", "question 7"]
    results = read_jsonl(out)
    assert sorted(rec["line"] for rec in results) == list(range(1, n + 1))
    assert all(rec["ok"] for rec in results)


def test_run_accepts_a_bom_before_line_one(keyed: dict[str, str], tmp_path: Path) -> None:
    """A file saved with a UTF-8 BOM: line 1 is an ordinary call, not a bad line."""
    batch = tmp_path / "bom.jsonl"
    batch.write_text('\ufeff{"id": "a", "prompt": "first"}\n{"id": "b", "prompt": "next"}\n',
                     encoding="utf-8")
    with FakeAPI() as api:
        r = cli(["run", str(batch), "-b", "clitest", "-u", api.url, "-q"], env=keyed)
    assert r.returncode == 0, r.stderr
    first = next(rec for rec in read_jsonl(tmp_path / "bom.results.jsonl") if rec["line"] == 1)
    assert first["ok"] and first["id"] == "a" and first["text"] == "echo: first"


def test_report_passes_for_a_sound_plugin_and_fails_for_a_broken_one(
        env: dict[str, str]) -> None:
    """`report` exits 0 with ticks for llvm, and 1 with the failing check's reason for a plugin
    whose key does not travel where its case says."""
    good = cli(["report", "-b", "llvm", "--json"], env=env, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    data = json.loads(good.stdout)
    (llvm,) = data["backends"]
    assert llvm["name"] == "llvm"
    # every check passes, except those with nothing to check, which say so (llvm has no stream)
    assert all(c["passed"] or c["skipped"] for c in llvm["checks"])
    # llvm has no stream, no tools and no batches: those checks have nothing to do
    assert {c["check"] for c in llvm["checks"] if c["skipped"]} == {"stream", "tools", "batch"}
    bad = cli(["report", "-b", "clitest"], env=env, timeout=120)
    assert bad.returncode == 1
    assert "❌" in bad.stdout and "x-api-key" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


def test_run_takes_an_openai_batch_file_online(keyed: dict[str, str], tmp_path: Path) -> None:
    """An OpenAI Batch API file runs online through any backend as it is: each line's
    custom_id is its id, its body's fields the call's; a bad one is named by its field."""
    rows = [
        {"custom_id": "r-1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m-1", "messages": [{"role": "user", "content": "first"}],
                  "max_tokens": 5}},
        {"custom_id": "r-2", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": "m-2", "input": ["text"]}},
        {"custom_id": "r-3", "method": "POST", "url": "/v1/completions",
         "body": {"model": "m-1", "prompt": "third"}},
        {"custom_id": "r-4", "method": "POST", "url": "/v1/moderations", "body": {}},
        {"id": "ours", "prompt": "ours too"},
    ]
    batch = tmp_path / "openai.jsonl"
    batch.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with FakeAPI() as api:
        r = cli(["run", str(batch), "-b", "clitest", "-u", api.url, "-q"], env=keyed)
    assert r.returncode == 1, r.stderr  # one bad line
    assert "openai.jsonl:4:" in r.stderr and "'url' must be one of" in r.stderr
    results = {rec["id"]: rec for rec in read_jsonl(tmp_path / "openai.results.jsonl")}
    assert set(results) == {"r-1", "r-2", "r-3", "r-4", "ours"}
    assert results["r-1"]["ok"] and results["r-1"]["text"] == "echo: first"
    assert results["r-2"]["ok"] and results["r-2"]["vectors"] == [[0.5, 0.0]]
    # clitest has no generate: a completions prompt is a chat turn
    assert results["r-3"]["ok"] and results["r-3"]["text"] == "echo: third"
    assert not results["r-4"]["ok"] and results["r-4"]["error"]["type"] == "BadLine"
    assert results["ours"]["ok"] and results["ours"]["line"] == 5
    bodies = {req["body"]["model"]: req["body"] for req in api.requests
              if req["body"].get("max_tokens")}
    assert bodies["m-1"]["max_tokens"] == 5 and "custom_id" not in bodies["m-1"]

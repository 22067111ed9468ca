"""`ipfs-accel run` through its pool: keys x URLs make the members, keys never printed,
a dead server's calls answered by the others, paused members on the progress line."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from _cli_fixtures import cli, cli_env, make_site, read_jsonl
from ipfs_accel.testing import FaultServer, RecordedRequest, Reply

KEYS = ("sk-run-pool-secret-0001", "sk-run-pool-secret-0002", "sk-run-pool-secret-0003")
_CHAT = {"model": "m-1", "choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 2, "completion_tokens": 1}}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(make_site(tmp_path))  # no CLITEST_API_KEY: the keys come from -k / a file


def _batch(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n"
                            for i in range(1, n + 1)))
    return path


def _ok(request: RecordedRequest) -> Reply:
    return Reply(200, json=_CHAT)


def _key(request: RecordedRequest) -> str:
    return request.header("authorization").removeprefix("Bearer ")


def _refused_url() -> str:
    """A loopback URL nothing listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_keys_from_k_and_a_keys_file_are_the_members(env: dict[str, str], tmp_path: Path) -> None:
    """-k and --keys-file (comments, blank lines, padding and a repeated key skipped) make
    one member per key; round-robin sends each key's share with that key only."""
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# team keys\n\n  {KEYS[1]}  \n{KEYS[2]}\n{KEYS[0]}\n")
    with FaultServer(responder=_ok) as server:
        r = cli(["run", str(_batch(tmp_path / "b.jsonl", 6)), "-b", "clitest", "-u",
                 server.base_url, "-k", KEYS[0], "--keys-file", str(keys_file),
                 "--strategy", "round-robin", "-c", "1"], env=env)
        sent = [_key(request) for request in server.requests]
    assert r.returncode == 0, r.stderr
    assert sorted(sent) == sorted(KEYS * 2)  # three members, two calls each
    results = read_jsonl(tmp_path / "b.results.jsonl")
    by_endpoint: dict[str, int] = {}
    for record in results:
        by_endpoint[record["endpoint"]] = by_endpoint.get(record["endpoint"], 0) + 1
    assert by_endpoint == {"clitest-1-k1": 2, "clitest-1-k2": 2, "clitest-1-k3": 2}


def test_keys_times_urls_each_key_used_on_each_server(env: dict[str, str], tmp_path: Path) -> None:
    """Two keys on two URLs are four members: each server sees both keys."""
    with FaultServer(responder=_ok) as one, FaultServer(responder=_ok) as two:
        r = cli(["run", str(_batch(tmp_path / "b.jsonl", 8)), "-b", "clitest",
                 "-u", one.base_url, "-u", two.base_url, "-k", KEYS[0], "-k", KEYS[1],
                 "--strategy", "round-robin", "-c", "1"], env=env)
        seen = [{_key(request) for request in s.requests} for s in (one, two)]
    assert r.returncode == 0, r.stderr
    assert seen == [{KEYS[0], KEYS[1]}, {KEYS[0], KEYS[1]}]


def test_keys_never_appear_in_output_errors_or_results(env: dict[str, str], tmp_path: Path) -> None:
    """A server that echoes the bearer key in its 401 body: no key in stdout, stderr or the
    results, and every line still gets its error."""
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"{KEYS[1]}\n")

    def unauthorized(request: RecordedRequest) -> Reply:
        return Reply(401, json={"error": {"message": f"bad key {request.header('authorization')}"}})

    with FaultServer(responder=unauthorized) as server:
        r = cli(["run", str(_batch(tmp_path / "b.jsonl", 4)), "-b", "clitest", "-u",
                 server.base_url, "-k", KEYS[0], "--keys-file", str(keys_file), "-c", "2",
                 "--max-retries", "1"], env=env)
        assert {_key(request) for request in server.requests} == {KEYS[0], KEYS[1]}
    assert r.returncode == 1
    results = (tmp_path / "b.results.jsonl").read_text()
    assert len(read_jsonl(tmp_path / "b.results.jsonl")) == 4
    assert '"ok": false' in results
    for key in KEYS:
        assert key not in r.stdout + r.stderr + results
    helped = cli(["run", "--help"], env=env)
    assert "--keys-file" in helped.stdout and "sk-" not in helped.stdout


def test_a_missing_or_empty_keys_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    """A keys file that is not there, or holds only comments, is one error line, exit 2."""
    batch = _batch(tmp_path / "b.jsonl", 1)
    r = cli(["run", str(batch), "-b", "clitest", "--keys-file", str(tmp_path / "none")], env=env)
    assert r.returncode == 2 and "keys file" in r.stderr and "not found" in r.stderr
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    r = cli(["run", str(batch), "-b", "clitest", "--keys-file", str(tmp_path / "empty.txt")],
            env=env)
    assert r.returncode == 2 and "holds no key" in r.stderr and "Traceback" not in r.stderr


def test_a_dead_url_among_two_still_gets_every_call_answered(
    env: dict[str, str], tmp_path: Path
) -> None:
    """One URL refuses connections: the pool moves its calls to the other, all answered ok."""
    dead = _refused_url()
    stats = tmp_path / "stats.json"
    with FaultServer(responder=_ok) as live:
        r = cli(["run", str(_batch(tmp_path / "b.jsonl", 12)), "-b", "clitest", "-k", KEYS[0],
                 "-u", dead, "-u", live.base_url, "-c", "4", "--stats-file", str(stats)],
                env=env)
        answered = len(live.requests)
    assert r.returncode == 0, r.stderr
    results = read_jsonl(tmp_path / "b.results.jsonl")
    assert sorted(rec["line"] for rec in results) == list(range(1, 13))
    assert all(rec["ok"] and rec["endpoint"] == "clitest-2" for rec in results)
    assert answered == 12
    document: dict[str, Any] = json.loads(stats.read_text())
    rows = {row["endpoint"]: row["stats"] for row in document["endpoints"]}
    assert rows["clitest-1"]["successful_requests"] == 0
    assert rows["clitest-1"]["failed_requests"] >= 1  # it was tried, and failed over


def test_the_progress_line_shows_a_paused_member(env: dict[str, str], tmp_path: Path) -> None:
    """A server answering 429 with Retry-After pauses its member: the calls go to the other
    one and the progress line says a member is paused."""
    def limited(request: RecordedRequest) -> Reply:
        return Reply(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "120"})

    with FaultServer(responder=limited) as busy, FaultServer(responder=_ok) as free:
        r = cli(["run", str(_batch(tmp_path / "b.jsonl", 5)), "-b", "clitest", "-k", KEYS[0],
                 "-u", busy.base_url, "-u", free.base_url, "--strategy", "ordered", "-c", "1"],
                env=env)
        assert len(busy.requests) == 1  # paused after its first 429: asked once only
    assert r.returncode == 0, r.stderr
    progress = [line for line in r.stderr.splitlines() if "5/5" in line]
    assert progress and "1/2 members ready" in progress[-1] and "1 paused" in progress[-1]
    assert "1 moved to another member" in r.stderr  # the pool's line

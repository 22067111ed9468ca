"""`ipfs-accel run --shared`: workers on any machines share the endpoints' limits through
Redis, each taking its shard of the lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from _cli_fixtures import FakeAPI, cli_env, make_site, read_jsonl, script
from ipfs_accel.testing import redis_server

KEY = "sk-cli-shared-" + "s" * 20


def _batch(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "messages": [
        {"role": "user", "content": f"line {i}"}]}) + "\n" for i in range(1, n + 1)))
    return path


def test_two_shards_share_one_endpoint_limit(tmp_path: Path) -> None:
    """Two workers, --shard 1/2 and 2/2, --shared on one Redis, --concurrency 1: the
    endpoint's state lives in Redis under the name both give it (never the key), every line
    is answered once across the two results files."""
    env = cli_env(make_site(tmp_path), CLITEST_API_KEY=KEY)
    batch = _batch(tmp_path / "calls.jsonl", 8)
    with redis_server() as redis, FakeAPI() as api:
        workers = [subprocess.Popen(
            [script(), "run", str(batch), "-b", "clitest", "-u", api.url, "--shared", redis.url,
             "--shard", f"{k}/2", "--concurrency", "1", "--rpm", "6000", "-q"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in (1, 2)]
        outs = [w.communicate(timeout=120) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], outs
        names = [k.decode() for k in redis.command("KEYS", "*")]
        held = json.dumps(names)
    assert any(":{clitest:" in n for n in names), names  # the endpoint's shared state
    assert KEY not in held and all(KEY not in o + e for o, e in outs)
    lines = sorted(rec["line"] for k in (1, 2)
                   for rec in read_jsonl(tmp_path / f"calls.shard-{k}-of-2.results.jsonl"))
    assert lines == list(range(1, 9))
    assert len(api.requests) == 8

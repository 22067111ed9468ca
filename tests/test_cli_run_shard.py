"""`ipfs-accel run --shard K/N`: N workers split a batch, each answering every Nth line into
its own results file; --resume continues one shard only and refuses another shard's file.

In process (the command through ``run_app``, the test plugin put on ``sys.path``), except
one run through the console script."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _cli_fixtures import FakeAPI, cli, cli_env, make_site, read_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel.cli import _run
from ipfs_accel.cli._app import run_app
from ipfs_accel.cli._run_shard import Shard, default_output, parse_shard

KEY = "sk-shard-test-secret-0001"


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``clitest`` plugin found by entry point in this process, its key set."""
    monkeypatch.syspath_prepend(str(make_site(tmp_path)))
    monkeypatch.setenv("CLITEST_API_KEY", KEY)
    monkeypatch.delenv("IPFS_ACCEL_DEBUG", raising=False)


def _batch(path: Path, n: int, *, blank: frozenset[int] = frozenset()) -> Path:
    path.write_text("".join("\n" if i in blank else json.dumps({"id": i, "prompt": f"q{i}"}) + "\n"
                            for i in range(1, n + 1)))
    return path


def _run_cmd(*args: object) -> int:
    return run_app(["run", *map(str, args)])


def _sent(api: FakeAPI, since: int = 0) -> list[str]:
    return [req["body"]["messages"][-1]["content"] for req in api.requests[since:]]


def _lines(path: Path) -> list[int]:
    return [rec["line"] for rec in read_jsonl(path)]


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 60), n=st.integers(1, 12), data=st.data())
def test_the_shards_of_a_file_take_every_line_exactly_once(count: int, n: int,
                                                           data: st.DataObject) -> None:
    """For any file (blank lines anywhere) and any N: each shard K yields only lines with
    (line - 1) % N == K - 1, count_lines agrees, and the N shards together yield every
    non-blank line exactly once, in file order within a shard."""
    blank = data.draw(st.frozensets(st.integers(1, max(count, 1)), max_size=count))
    with tempfile.TemporaryDirectory() as folder:
        path = _batch(Path(folder) / "in.jsonl", count, blank=blank)
        taken: Counter[int] = Counter()
        for k in range(1, n + 1):
            shard = Shard(k, n)
            lines = [item.line for item in _run.parse_lines(path, frozenset({"chat"}),
                                                             shard=shard)]
            assert all((line - 1) % n == k - 1 for line in lines)
            assert lines == sorted(lines)
            assert _run.count_lines(path, shard=shard) == len(lines)
            taken.update(lines)
    assert sorted(taken) == [i for i in range(1, count + 1) if i not in blank]
    assert set(taken.values()) <= {1}


def test_lines_of_other_shards_are_never_parsed(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the shard's own lines reach the parser: the others may be anything at all, and
    the skip set of --resume still applies within the shard."""
    path = tmp_path / "in.jsonl"
    path.write_text("".join((json.dumps({"prompt": f"q{i}"}) if i % 4 == 3 else "{not json")
                            + "\n" for i in range(1, 21)))
    parsed: list[int] = []
    real = _run._parse

    def counting(line: int, text: str, operations: frozenset[str]) -> _run.Item:
        parsed.append(line)
        return real(line, text, operations)

    monkeypatch.setattr(_run, "_parse", counting)
    items = list(_run.parse_lines(path, frozenset({"chat"}), shard=Shard(3, 4), skip={7}))
    assert [(item.line, item.error) for item in items] == [(3, None), (11, None), (15, None),
                                                           (19, None)]
    assert parsed == [3, 11, 15, 19]


def test_shard_values_and_the_default_output_name() -> None:
    """K/N parses to a shard; the default output names it beside the input."""
    assert parse_shard("3/8") == Shard(3, 8) and str(Shard(3, 8)) == "3/8"
    assert parse_shard(" 1/1 ") == Shard(1, 1)
    assert default_output(Path("d/calls.jsonl"), Shard(3, 8)) == Path(
        "d/calls.shard-3-of-8.results.jsonl")
    assert default_output(Path("d/calls.jsonl"), None) == Path("d/calls.results.jsonl")


@pytest.mark.parametrize(("value", "says"), [
    ("0/8", "K counts from 1 and with 8 shards it must be 1 to 8"),
    ("9/8", "K counts from 1 and with 8 shards it must be 1 to 8"),
    ("2/1", "with 1 shard it must be 1"),
    ("3", "'3' is not K/N"),
    ("a/b", "'a/b' is not K/N"),
    ("-1/8", "'-1/8' is not K/N"),
    ("3/8/2", "'3/8/2' is not K/N"),
    ("3/0", "the number of shards N must be at least 1"),
])
def test_a_bad_shard_is_a_usage_error_naming_the_problem(
    value: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused as the command refuses any bad option: exit 2, the option and the problem."""
    code = _run_cmd(_batch(tmp_path / "calls.jsonl", 3), "-b", "clitest", "--shard", value)
    stderr = capsys.readouterr().err
    assert code == 2
    assert "Invalid value for '--shard'" in stderr and says in stderr
    assert not list(tmp_path.glob("*.results.jsonl*"))


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize(("n", "count"), [(1, 7), (3, 10), (4, 3), (8, 21)])
def test_n_workers_answer_every_line_once_each_into_its_own_file(
    n: int, count: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shards 1..N, each with the default output: each file holds only its shard's lines,
    the union is every line exactly once, each call reached the server once, and the
    summary line names the shard."""
    batch = _batch(tmp_path / "calls.jsonl", count)
    union: list[int] = []
    with FakeAPI() as api:
        for k in range(1, n + 1):
            assert _run_cmd(batch, "-b", "clitest", "-u", api.url, "-q", "-c", 3,
                            "--shard", f"{k}/{n}") == 0
            out = tmp_path / f"calls.shard-{k}-of-{n}.results.jsonl"
            lines = _lines(out)
            assert sorted(lines) == list(range(k, count + 1, n))
            assert f"shard {k}/{n}: {len(lines)} ok, 0 failed, 0 bad lines" in (
                capsys.readouterr().err)
            record = out.with_name(out.name + ".shard")
            assert record.exists() == (n > 1)
            if n > 1:
                assert json.loads(record.read_text())["shard"] == f"{k}/{n}"
            union += lines
        assert sorted(_sent(api)) == sorted(f"q{i}" for i in range(1, count + 1))
    assert sorted(union) == list(range(1, count + 1))


@pytest.mark.usefixtures("plugin")
def test_resume_sends_only_the_shards_missing_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shard's file that lost some results (and ends torn): --resume --shard sends only
    that shard's unanswered lines; failed lines wait for --retry-failed, which with --ordered
    leaves the shard's file sorted, one result a line."""
    batch = _batch(tmp_path / "calls.jsonl", 30)
    out = tmp_path / "two.jsonl"
    run = [batch, "-b", "clitest", "-q", "-c", 4, "--shard", "2/3", "-o", out,
           "--max-retries", 0]
    mine = list(range(2, 31, 3))
    with FakeAPI(fail={"q8"}) as api:
        run += ["-u", api.url]
        assert _run_cmd(*run) == 1  # line 8 failed
        assert sorted(_sent(api)) == sorted(f"q{i}" for i in mine)
        kept = [raw for raw in out.read_text().splitlines()
                if json.loads(raw)["line"] not in (5, 23, 29)]
        out.write_text("\n".join(kept) + '\n{"line": 29, "ok": tr')  # a torn last write
        before = len(api.requests)
        capsys.readouterr()
        assert _run_cmd(*run, "--resume") == 0
        assert sorted(_sent(api, before)) == ["q23", "q29", "q5"]
        stderr = capsys.readouterr().err
        assert "shard 2/3: resuming: 7 lines already answered" in stderr
        assert "3 to go (1 failed: --retry-failed" in stderr
        api.fail.clear()
        before = len(api.requests)
        assert _run_cmd(*run, "--retry-failed", "--ordered") == 0
        assert _sent(api, before) == ["q8"]
    results = read_jsonl(out)
    assert [rec["line"] for rec in results] == mine
    assert all(rec["ok"] for rec in results)


@pytest.mark.usefixtures("plugin")
def test_resume_refuses_an_output_written_for_another_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another shard, no shard, or a file written without one: refused (exit 2) with what
    the file was written for, before any call; 1/1 and no --shard are the same lines."""
    batch = _batch(tmp_path / "calls.jsonl", 9)
    two = tmp_path / "calls.shard-2-of-3.results.jsonl"
    whole = tmp_path / "calls.results.jsonl"
    with FakeAPI() as api:
        base = [batch, "-b", "clitest", "-u", api.url, "-q"]
        assert _run_cmd(*base, "--shard", "2/3") == 0
        assert _run_cmd(*base) == 0
        sent = len(api.requests)
        capsys.readouterr()

        def refused(*args: object) -> str:
            assert _run_cmd(*base, "--resume", *args) == 2
            return capsys.readouterr().err

        said = refused("--shard", "3/3", "-o", two)
        assert "was written with --shard 2/3, not --shard 3/3" in said
        assert "resume it with --shard 2/3 or give shard 3/3 its own -o" in said
        assert "was written with --shard 2/3, not for every line" in refused("-o", two)
        said = refused("--shard", "1/3", "-o", whole, "--retry-failed")
        assert "was written without --shard, not --shard 1/3" in said
        assert _run_cmd(*base, "--resume", "--shard", "1/1", "-o", whole) == 0
        with two.open("a") as f:  # a line of shard 1 appended by hand
            f.write(json.dumps({"line": 1, "ok": True}) + "\n")
        assert "answers line 1, which is not in shard 2/3" in refused("--shard", "2/3")
        (tmp_path / f"{two.name}.shard").write_text("2/3\n")
        assert "does not say which shard" in refused("--shard", "2/3")
        assert len(api.requests) == sent  # no refusal sent anything
        assert _run_cmd(*base, "--overwrite", "-o", two) == 0  # now for every line
        assert not (tmp_path / f"{two.name}.shard").exists()
        assert _run_cmd(*base, "--resume", "-o", two) == 0
        assert len(api.requests) == sent + 9
    assert sorted(_lines(two)) == list(range(1, 10))


def test_through_the_console_script(tmp_path: Path) -> None:
    """The installed command: --help shows the option; shard 2/2 answers the even lines
    and its progress and summary lines name it; a bad value exits 2."""
    env = cli_env(make_site(tmp_path), CLITEST_API_KEY=KEY)
    batch = _batch(tmp_path / "calls.jsonl", 5)
    helped = cli(["run", "--help"], env=env)
    assert "--shard" in helped.stdout and "K/N" in helped.stdout
    with FakeAPI() as api:
        r = cli(["run", str(batch), "-b", "clitest", "-u", api.url, "--shard", "2/2"], env=env)
        sent = _sent(api)
    assert r.returncode == 0, r.stderr
    assert sorted(sent) == ["q2", "q4"]
    assert any(line.startswith("shard 2/2") and "2/2" in line[9:]
               for line in r.stderr.splitlines())  # the progress bar's last state
    assert "shard 2/2: 2 ok, 0 failed, 0 bad lines; results in " in r.stderr
    results: list[dict[str, Any]] = read_jsonl(tmp_path / "calls.shard-2-of-2.results.jsonl")
    assert sorted(rec["line"] for rec in results) == [2, 4]
    r = cli(["run", str(batch), "-b", "clitest", "--shard", "0/2"], env=env)
    assert r.returncode == 2 and "Invalid value for '--shard'" in r.stderr

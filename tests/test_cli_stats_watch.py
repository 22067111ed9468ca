"""`ipfs-accel stats FILE --watch` and the stats file `run --stats-file` keeps up to date.

The watcher runs as the real console script with its output on pipes (so it prints a new
table each time the file changed); the tests wait on its output lines and on the servers'
holds, never on the clock: every wait below is bounded only so a broken build fails
rather than hangs.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from _cli_fixtures import cli, cli_env, make_site, script
from ipfs_accel.testing import FaultServer, Hold, RecordedRequest, Reply

KEY = "sk-stats-watch-secret-0001"
_CHAT = {"model": "m-1", "choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
_BOUND = 60.0  # seconds: a safety net against a hang, never a timing assumption


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(make_site(tmp_path))


class _Lines:
    """The lines a stream gives, read by a thread of their own, waited for one by one."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, wanted: Callable[[str], bool], what: str) -> str:
        """The first line from here on that is ``wanted``; fails at the end of the stream."""
        deadline = time.monotonic() + _BOUND
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise AssertionError(f"never saw {what}; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"the stream ended before {what}; saw {self.seen}")
            self.seen.append(line)
            if wanted(line):
                return line

    def rest(self) -> list[str]:
        """Every line left, once the process exited."""
        lines = []
        while (line := self._queue.get(timeout=_BOUND)) is not None:
            lines.append(line)
        self.seen += lines
        return lines


# The command's entry with Ctrl-C raising KeyboardInterrupt: a process started in the
# background by a non-interactive shell (as a CI step may be) inherits SIGINT ignored.
_INTERRUPTIBLE = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                  "from ipfs_accel.cli import main; sys.exit(main(sys.argv[1:]))")


class _Watcher:
    """``ipfs-accel stats FILE --watch`` with its stdout and stderr followed line by line."""

    def __init__(self, path: Path, env: dict[str, str], *, ctrl_c: bool = False) -> None:
        command = [sys.executable, "-c", _INTERRUPTIBLE] if ctrl_c else [script()]
        self.proc = subprocess.Popen(
            [*command, "stats", str(path), "--watch", "--interval", "0.01"], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = _Lines(self.proc.stdout)
        self.err = _Lines(self.proc.stderr)

    def wait(self) -> int:
        return self.proc.wait(timeout=_BOUND)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _stats(**counts: Any) -> dict[str, Any]:
    return {"total_requests": 0, "successful_requests": 0, "failed_requests": 0,
            "retries": 0, **counts}


def _document(*, running: bool, updated_at: str, rows: list[dict[str, Any]],
              **extra: Any) -> dict[str, Any]:
    aggregate = _stats(endpoints_count=len(rows), **{
        k: sum(r["stats"].get(k, 0) for r in rows)
        for k in ("total_requests", "successful_requests", "failed_requests", "retries",
                  "in_flight", "queued")})
    return {"format": "ipfs-accel-stats/1", "written_at": "2025-06-01T12:00:00+0000",
            "running": running, "updated_at": updated_at, "endpoints": rows,
            "aggregate": aggregate, **extra}


def _row(endpoint: str, **counts: Any) -> dict[str, Any]:
    return {"backend": "clitest", "endpoint": endpoint, "base_url": "http://h",
            "rpm": 500.0, "tpm": None, "stats": _stats(**counts)}


def _replace(path: Path, document: dict[str, Any]) -> None:
    # as the writer does: a whole new file renamed over the old one
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_watch_waits_for_the_file_rereads_it_and_ends_with_the_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    """No file yet: a note, then waiting. A half-written file: a note, read again. A running
    document: its table (paused until when, in flight, queued, limits). A newer one: a new
    table. The final one (running false): its table, then exit 0."""
    path = tmp_path / "live.json"
    paused_until = 1_900_000_000.0
    watcher = _Watcher(path, env)
    try:
        watcher.err.until(lambda line: "waiting for" in line and "live.json" in line,
                          "the note that the file is not there yet")
        path.write_text('{"format": "ipfs-accel-stats/1", "endpoi')  # cut mid-write
        watcher.err.until(lambda line: "reading it again" in line, "the unreadable note")
        _replace(path, _document(running=True, updated_at="2025-06-01T12:00:01.000+00:00", rows=[
            _row("clitest-1", total_requests=5, successful_requests=2, in_flight=2, queued=1),
            _row("clitest-2", total_requests=1, failed_requests=1, retries=3, state="paused",
                 paused_until=paused_until, rate_limited=1)],
            lines={"total": 9, "ok": 2, "failed": 1, "bad": 0, "in_flight": 2}))
        watcher.out.until(lambda line: "running, updated 12:00:01" in line, "the first table")
        first = watcher.out.until(lambda line: "clitest-1" in line, "the first row")
        assert _cells(first)[2:10] == ["ready", "2", "1", "500 rpm", "5", "2", "0", "0"]
        second = watcher.out.until(lambda line: "clitest-2" in line, "the second row")
        until = time.strftime("%H:%M:%S", time.localtime(paused_until))
        assert _cells(second)[2] == f"paused until {until}"
        assert _cells(second)[6:11] == ["1", "0", "1", "3", "1"]
        watcher.out.until(lambda line: line.startswith("Lines: 3/9 answered")
                          and "2 in flight, 4 to go" in line, "the lines")
        _replace(path, _document(running=True, updated_at="2025-06-01T12:00:02.000+00:00",
                                 rows=[_row("clitest-1", total_requests=7, in_flight=1)]))
        watcher.out.until(lambda line: "running, updated 12:00:02" in line, "the second table")
        _replace(path, _document(running=False, updated_at="2025-06-01T12:00:03.000+00:00",
                                 rows=[_row("clitest-1", total_requests=8,
                                            successful_requests=8)]))
        assert watcher.wait() == 0
        rest = watcher.out.rest()
    finally:
        watcher.stop()
    ended = next(n for n, line in enumerate(rest) if "run ended, 12:00:03" in line)
    final = next(line for line in rest[ended:] if "clitest-1" in line)
    assert _cells(final)[2:10] == ["ready", "0", "0", "500 rpm", "8", "8", "0", "0"]
    assert not any("Traceback" in line for line in watcher.err.rest())


def test_watch_ctrl_c_exits_0_and_an_ended_file_is_shown_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Ctrl-C while the run goes: exit 0, no traceback. A file written by a run that ended
    (or before the live fields existed): one table, exit 0. `stats FILE` says running."""
    path = tmp_path / "s.json"
    _replace(path, _document(running=True, updated_at="2025-06-01T12:00:01.000+00:00",
                             rows=[_row("clitest-1", total_requests=2, in_flight=2)]))
    r = cli(["stats", str(path)], env=env)
    assert r.returncode == 0, r.stderr
    assert "running, updated 2025-06-01T12:00:01.000+00:00" in r.stdout
    watcher = _Watcher(path, env, ctrl_c=True)
    try:
        watcher.out.until(lambda line: "running, updated 12:00:01" in line, "the table")
        watcher.proc.send_signal(signal.SIGINT)
        assert watcher.wait() == 0
    finally:
        watcher.stop()
    assert not any("Traceback" in line for line in watcher.err.rest())
    old = _document(running=False, updated_at="", rows=[_row("clitest-1", total_requests=4)])
    del old["running"], old["updated_at"]
    _replace(path, old)
    r = cli(["stats", str(path), "--watch", "--interval", "0.01"], env=env, timeout=_BOUND)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("run ended") == 1 and "clitest-1" in r.stdout


def test_run_keeps_the_stats_file_up_to_date_while_it_goes(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A call held by the server: the watcher shows the run going, the file says running
    with that call in flight; released, the run ends, the file's last version says so and
    keeps the shape it always had, and the watcher shows it and exits 0."""
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n"
                             for i in range(1, 4)))
    path = tmp_path / "s.json"
    gate = threading.Event()

    def ok(request: RecordedRequest) -> Reply:
        return Reply(200, json=_CHAT)

    watcher = _Watcher(path, env)
    with FaultServer(responder=ok) as server:
        server.script([Hold(release=gate, then=Reply(200, json=_CHAT), timeout=_BOUND)])
        run: subprocess.Popen[str] | None = None
        try:
            watcher.err.until(lambda line: "waiting for" in line, "the waiting note")
            run = subprocess.Popen(
                [script(), "run", str(batch), "-b", "clitest", "-k", KEY, "-u",
                 server.base_url, "--rpm", "6000", "-c", "2", "-q", "--stats-file", str(path)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)
            watcher.out.until(lambda line: "running, updated" in line, "a running table")
            watcher.out.until(lambda line: line.startswith("Lines: 2/3 answered")
                              and "1 in flight" in line, "the held call in flight")
            assert run.poll() is None  # held: the run cannot have ended
            live = json.loads(path.read_text())
            assert live["running"] is True and live["updated_at"]
            assert live["lines"]["in_flight"] == 1
            assert live["endpoints"][0]["stats"]["in_flight"] == 1
            assert live["endpoints"][0]["rpm"] == 6000
            gate.set()
            _, stderr = run.communicate(timeout=_BOUND)
            assert run.returncode == 0, stderr
            assert watcher.wait() == 0
            rest = watcher.out.rest()
        finally:
            gate.set()
            if run is not None and run.poll() is None:
                run.kill()
                run.wait()
            watcher.stop()
    assert any("run ended" in line for line in rest)
    final = json.loads(path.read_text())
    assert final["running"] is False
    assert {"format", "written_at", "endpoints", "aggregate"} <= set(final)
    assert final["aggregate"]["successful_requests"] == 3
    assert final["lines"] == {"total": 3, "ok": 3, "failed": 0, "bad": 0, "in_flight": 0}
    assert final["pool"]["calls"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".s.json")] == []


def test_run_refuses_a_stats_file_it_cannot_write_before_sending(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The first version is written before any call: a path that cannot be written is one
    error line and nothing is sent."""
    batch = tmp_path / "b.jsonl"
    batch.write_text(json.dumps({"prompt": "q"}) + "\n")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with FaultServer(responder=lambda request: Reply(200, json=_CHAT)) as server:
        r = cli(["run", str(batch), "-b", "clitest", "-k", KEY, "-u", server.base_url, "-q",
                 "--stats-file", str(blocker / "s.json")], env=env)
        assert server.requests == []
    assert r.returncode == 2
    assert "cannot write stats file" in r.stderr and "Traceback" not in r.stderr

"""A program keeps the live stats file up to date: ``with ipfs_accel.stats_file(path, backend):``.

The file is the one ``ipfs-accel run --stats-file`` writes: running while the block goes
(rewritten from a thread), ended once it is left, even by an exception; ``ipfs-accel stats
FILE`` reads it. The tests wait on the file's content (polling on an event, bounded only so
a broken build fails rather than hangs), never on the clock.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from _threads import thread, until
from ipfs_accel import ConfigurationError, Registry
from ipfs_accel._stats_file import StatsFile, load_stats_file

MSG = [{"role": "user", "content": "hi"}]
_BODY = {"model": "echo-1", "choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


class _Server:
    """A MockTransport handler answering every chat; ``hold()`` makes the next call wait."""

    def __init__(self) -> None:
        self.requests = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def hold(self) -> None:
        self.held.clear()
        self.release.clear()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        if not self.release.is_set():
            self.held.set()
            assert self.release.wait(10), "the held call was never released"
        return httpx2.Response(200, json=_BODY)


def _registry(server: _Server) -> Registry:
    return Registry(plugins=[_echo_plugin], entry_points=False,
                    transport=httpx2.MockTransport(server))


def _doc(path: Path) -> StatsFile | None:
    # the file is replaced atomically: when it is there, it is whole
    return load_stats_file(path) if path.exists() else None


def _shows(path: Path, check: Callable[[StatsFile], bool]) -> Callable[[], bool]:
    def holds() -> bool:
        doc = _doc(path)
        return doc is not None and check(doc)
    return holds


def _no_temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_the_file_says_running_with_the_counts_during_the_block_and_ended_after(
    tmp_path: Path,
) -> None:
    """Written on entry, rewritten while calls go (a held call shows in flight), and once
    more on exit with running false and the final counts, in the run's format."""
    server = _Server()
    backend = _registry(server).get("echo")
    eid = backend.create_endpoint(base_url="http://a.test", rpm=600)
    path = tmp_path / "s.json"
    with ipfs_accel.stats_file(path, backend, every=0.01):
        first = load_stats_file(path)  # written before the block's first line
        assert first.running is True and first.updated_at
        assert [(r.backend, r.endpoint, r.base_url, r.rpm) for r in first.endpoints] == [
            ("echo", eid, "http://a.test", 600)]
        assert first.endpoints[0].stats.total_requests == 0
        for _ in range(2):
            assert backend.chat(MSG, endpoint_id=eid).text == "pong"
        until(_shows(path, lambda d: d.running and d.aggregate.successful_requests == 2),
              "the file rewritten with the two calls")
        server.hold()
        t, out = thread(lambda: backend.chat(MSG, endpoint_id=eid))
        assert server.held.wait(10), "the third call never reached the server"
        until(_shows(path, lambda d: d.running and d.endpoints[0].stats.in_flight == 1),
              "the held call in flight in the file")
        server.release.set()
        t.join(10)
        assert out and not isinstance(out[0], Exception), out
    final = load_stats_file(path)
    assert final.running is False
    stats = final.endpoints[0].stats
    assert (stats.total_requests, stats.successful_requests, stats.failed_requests,
            stats.in_flight) == (3, 3, 0, 0)
    assert (stats.input_tokens, stats.output_tokens) == (9, 6)
    assert final.aggregate.successful_requests == 3 and final.pool is None
    raw = json.loads(path.read_text())
    assert raw["format"] == "ipfs-accel-stats/1" and raw["running"] is False
    assert raw["endpoints"][0]["stats"]["average_latency_seconds"] >= 0
    assert _no_temp_files(tmp_path) == []


def test_several_backends_and_a_pool_each_show(tmp_path: Path) -> None:
    """Every endpoint of every backend is a row; a pool's own counters come along."""
    server = _Server()
    registry = _registry(server)
    one = registry.get("echo")
    a = one.create_endpoint("a")
    b = one.create_endpoint("b")
    other = _registry(server).get("echo")
    c = other.create_endpoint("c")
    pool = registry.pool([(one, a), (one, b)])
    path = tmp_path / "s.json"
    with ipfs_accel.stats_file(path, one, other, pool=pool, every=0.01):
        for _ in range(4):
            pool.chat(MSG)
        other.chat(MSG, endpoint_id=c)
        until(_shows(path, lambda d: d.pool is not None and d.pool.calls == 4),
              "the pool's calls in the file")
    final = load_stats_file(path)
    assert [r.endpoint for r in final.endpoints] == [a, b, c]
    assert final.aggregate.successful_requests == 5
    assert final.pool is not None and (final.pool.calls, final.pool.ok) == (4, 4)
    assert final.pool.members == {}  # the members are the rows


def test_an_exception_in_the_block_still_leaves_the_file_ended(tmp_path: Path) -> None:
    server = _Server()
    backend = _registry(server).get("echo")
    path = tmp_path / "s.json"
    with pytest.raises(KeyError, match="the program's own"), \
            ipfs_accel.stats_file(str(path), backend):
        backend.chat(MSG)
        raise KeyError("the program's own")
    final = load_stats_file(path)
    assert final.running is False
    assert final.aggregate.successful_requests == 1
    assert _no_temp_files(tmp_path) == []


def test_a_path_it_cannot_write_is_refused_before_the_block_runs(tmp_path: Path) -> None:
    server = _Server()
    backend = _registry(server).get("echo")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    ran = []
    with pytest.raises(ConfigurationError, match=r"cannot write stats file .*not-a-folder"), \
            ipfs_accel.stats_file(blocker / "s.json", backend):
        ran.append(backend.chat(MSG))
    assert ran == [] and server.requests == 0


@pytest.mark.parametrize(("args", "kwargs", "says"), [
    ((), {}, "needs the Backend"),
    (("echo",), {}, "got a str"),
    ((None,), {}, "got a NoneType"),
    (("backend", "backend"), {}, "given twice"),
    (("backend",), {"pool": "p"}, "pool is a Pool"),
    (("backend",), {"every": 0}, "every must be a positive number"),
    (("backend",), {"every": -1.0}, "every must be a positive number"),
    (("backend",), {"every": math.nan}, "every must be a positive number"),
    (("backend",), {"every": math.inf}, "every must be a positive number"),
    (("backend",), {"every": True}, "every must be a positive number"),
    (("backend",), {"every": "1"}, "every must be a positive number"),
])
def test_wrong_arguments_are_refused_at_once(
    tmp_path: Path, args: tuple[Any, ...], kwargs: dict[str, Any], says: str
) -> None:
    backend = _registry(_Server()).get("echo")
    given = [backend if a == "backend" else a for a in args]
    with pytest.raises(ConfigurationError, match=says):
        ipfs_accel.stats_file(tmp_path / "s.json", *given, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["", 3, b"s.json"])
def test_a_path_that_is_not_one_is_refused(path: Any) -> None:
    backend = _registry(_Server()).get("echo")
    with pytest.raises(ConfigurationError, match="path"):
        ipfs_accel.stats_file(path, backend)


def test_one_writer_is_entered_once(tmp_path: Path) -> None:
    backend = _registry(_Server()).get("echo")
    live = ipfs_accel.stats_file(tmp_path / "s.json", backend)
    with live:
        pass
    with pytest.raises(RuntimeError, match="already used"), live:
        pass
    assert load_stats_file(tmp_path / "s.json").running is False


def test_the_command_reads_what_a_program_wrote(tmp_path: Path) -> None:
    """``ipfs-accel stats FILE`` (with the cli extra) shows the file as a run's."""
    pytest.importorskip("typer")
    pytest.importorskip("rich")
    server = _Server()
    backend = _registry(server).get("echo")
    eid = backend.create_endpoint("prog-1")
    path = tmp_path / "s.json"
    with ipfs_accel.stats_file(path, backend):
        backend.chat(MSG, endpoint_id=eid)
    command = [sys.executable, "-m", "ipfs_accel.cli", "stats", str(path)]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["running"] is False
    assert data["endpoints"][0]["endpoint"] == eid
    assert data["endpoints"][0]["stats"]["successful_requests"] == 1
    table = subprocess.run(command, capture_output=True, text=True, check=False,
                           env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "prog-1" in table.stdout and "Per-endpoint stats" in table.stdout

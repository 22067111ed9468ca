"""redis_server: a real, throwaway redis-server for tests; skips without one, fails under CI.

The tests that need the server get it from ``redis_server()`` itself, so on a machine
without ``redis-server`` they skip saying so, and under ``CI=true`` they fail (``.ci/run``
installs Debian's package).
"""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import pytest
from ipfs_accel.testing import RedisServer, _redis, redis_server

pytest_plugins = ["pytester"]


def raw(port: int, *commands: bytes) -> bytes:
    """Send RESP commands on one plain socket and return everything Redis answered."""
    payload = b"".join(commands)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # Redis answers what it got, then sees EOF and closes
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def no_redis_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(_redis.BINARY_ENV, raising=False)


def fake_binary(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-redis-server"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# --- a real server ---------------------------------------------------------------------------


def test_starts_on_a_free_loopback_port_and_answers_ping() -> None:
    with redis_server() as redis:
        assert isinstance(redis, RedisServer)
        assert redis.running and redis.pid is not None
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert raw(redis.port, b"PING\r\n") == b"+PONG\r\n"  # the inline form
        assert raw(redis.port, b"*1\r\n$4\r\nPING\r\n") == b"+PONG\r\n"
        assert redis.ping()


def test_set_and_get_over_a_raw_socket() -> None:
    with redis_server() as redis:
        answer = raw(
            redis.port,
            b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n",
            b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n",
            b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n",
        )
        assert answer == b"+OK\r\n$5\r\nworld\r\n$-1\r\n"


def test_command_decodes_each_kind_of_reply() -> None:
    with redis_server() as redis:
        assert redis.command("SET", "k", b"v\r\nw") == "OK"  # binary-safe bulk strings
        assert redis.command("GET", "k") == b"v\r\nw"
        assert redis.command("GET", "nothing") is None
        assert redis.command("INCRBY", "n", 41) == 41
        assert redis.command("RPUSH", "l", "a", "b") == 2
        assert redis.command("LRANGE", "l", 0, -1) == [b"a", b"b"]
        assert redis.command("EVAL", "return {1, 'x', {2}}", 0) == [1, b"x", [2]]
        with pytest.raises(RuntimeError, match="Redis error reply: ERR unknown command"):
            redis.command("NO-SUCH-COMMAND")
        with pytest.raises(RuntimeError, match="WRONGTYPE"):
            redis.command("INCR", "l")


def test_the_configuration_is_throwaway() -> None:
    with redis_server() as redis:
        assert redis.command("CONFIG", "GET", "save") == [b"save", b""]
        assert redis.command("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
        assert redis.command("CONFIG", "GET", "bind") == [b"bind", b"127.0.0.1"]
        assert redis.command("CONFIG", "GET", "protected-mode") == [b"protected-mode", b"no"]
        assert redis.command("CONFIG", "GET", "port") == [b"port", str(redis.port).encode()]
        directory = redis.command("CONFIG", "GET", "dir")
        assert isinstance(directory, list) and isinstance(directory[1], bytes)
        assert Path(os.fsdecode(directory[1])).resolve() == redis.directory.resolve()
        assert redis.directory.is_dir()
    assert not redis.directory.exists()


def test_stop_then_start_on_the_same_port_comes_back_empty() -> None:
    with redis_server() as redis:
        port, first_pid = redis.port, redis.pid
        assert redis.command("SET", "k", "v") == "OK"
        redis.stop()
        assert not redis.running and redis.pid is None
        assert redis.returncode == 0  # SIGTERM: a clean shutdown
        assert refused(port)
        assert not redis.ping()
        with pytest.raises(ConnectionRefusedError):
            redis.command("PING")
        redis.stop()  # again: nothing to do
        redis.start()
        assert redis.port == port and redis.pid not in (None, first_pid)
        assert redis.returncode is None
        assert raw(port, b"PING\r\n") == b"+PONG\r\n"
        assert redis.command("GET", "k") is None  # no persistence: it comes back empty
        assert not list(redis.directory.glob("*.rdb")) and not list(redis.directory.glob("*.aof"))


def test_kill_is_sigkill_and_start_brings_it_back() -> None:
    with redis_server() as redis:
        pid = redis.pid
        assert pid is not None
        redis.kill()
        assert redis.returncode == -signal.SIGKILL
        assert not redis.running and refused(redis.port)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone and reaped, not a zombie
        redis.kill()  # again: nothing to do
        redis.start()
        assert redis.ping()


def test_start_while_running_does_nothing() -> None:
    with redis_server() as redis:
        pid = redis.pid
        redis.start()
        assert redis.pid == pid and redis.ping()


def test_leaving_the_block_stops_the_server() -> None:
    with redis_server() as redis:
        pid = redis.pid
        port = redis.port
    assert pid is not None
    assert not redis.running and refused(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_block_stops_the_server_when_the_test_raises() -> None:
    with pytest.raises(KeyError), redis_server() as redis:
        raise KeyError("boom")
    assert not redis.running and refused(redis.port)


def test_two_servers_run_side_by_side() -> None:
    with redis_server() as one, redis_server() as two:
        assert one.port != two.port
        one.command("SET", "k", "one")
        assert two.command("GET", "k") is None
        one.stop()
        assert two.ping()


def test_a_restart_on_a_taken_port_raises_with_the_log() -> None:
    with redis_server() as redis:
        redis.stop()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", redis.port))
            squatter.listen()
            with pytest.raises(RuntimeError, match=r"(?s)exited with status 1.*its log:.*"):
                redis.start()
            assert not redis.running
        redis.start()  # the port is free again
        assert redis.ping()


def test_the_binary_can_be_named_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with redis_server() as found:  # skips, or fails under CI, when there is none
        real = found.binary
    alias = tmp_path / "my-redis"
    alias.symlink_to(real)
    monkeypatch.setenv(_redis.BINARY_ENV, str(alias))
    with redis_server() as redis:
        assert redis.binary == str(alias)
        assert redis.ping()


# --- no server to start ----------------------------------------------------------------------


def test_no_binary_on_path_skips_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_redis_on_path(monkeypatch, tmp_path)
    monkeypatch.delenv("CI", raising=False)
    assert _redis.find_redis_server() is None
    with pytest.raises(pytest.skip.Exception, match=(
        r"no Redis server to start: redis-server or valkey-server not found on PATH "
        r"\(install Debian's redis-server package"
    )), redis_server():
        pytest.fail("the block must not run")


def test_no_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_redis_on_path(monkeypatch, tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=(
        r"redis-server or valkey-server not found on PATH.*\(CI=true: a missing component fails"
    )), redis_server():
        pytest.fail("the block must not run")


def test_a_lookup_that_finds_nothing_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_redis, "find_redis_server", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Redis server to start"), redis_server():
        pass


def test_a_named_binary_that_is_missing_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-redis not found on PATH"), \
            redis_server(binary="no-such-redis"):
        pass
    monkeypatch.setenv(_redis.BINARY_ENV, str(tmp_path / "absent-redis"))
    with pytest.raises(pytest.skip.Exception, match="absent-redis not found on PATH"), redis_server():
        pass


def test_a_server_that_exits_at_once_skips_with_its_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = fake_binary(tmp_path, 'echo "*** FATAL CONFIG FILE ERROR (fake) ***"; exit 1')
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=(
        r"(?s)could not start a Redis server: .*fake-redis-server on 127\.0\.0\.1:\d+ "
        r"exited with status 1; its log:\n\*\*\* FATAL CONFIG FILE ERROR \(fake\)"
    )), redis_server(binary=binary):
        pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)FATAL CONFIG.*CI=true"), \
            redis_server(binary=binary):
        pass


def test_a_server_that_never_answers_is_given_a_bounded_number_of_attempts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    binary = fake_binary(tmp_path, f'echo $$ >> "{pid_file}"; exec sleep 60')
    monkeypatch.setattr(_redis, "_ATTEMPTS", 4)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="did not answer PING after 4 attempts"), \
            redis_server(binary=binary):
        pass
    pids = [int(line) for line in pid_file.read_text().split()]
    assert len(pids) == _redis._PORT_TRIES  # a fresh port each time
    for pid in pids:  # each one killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_session_skips_without_redis_and_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """End to end: a test that needs Redis skips on a bare machine and fails in CI."""
    pytester.makepyfile(test_needs_redis="""
        from ipfs_accel.testing import redis_server

        def test_shared_limits():
            with redis_server() as redis:
                assert redis.ping()
    """)
    no_redis_on_path(monkeypatch, tmp_path)
    monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Redis server to start*redis-server*"])
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not found on PATH*CI=true*"])

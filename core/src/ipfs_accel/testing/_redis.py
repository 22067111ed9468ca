"""A real, throwaway ``redis-server`` on a free loopback port, for tests of shared state.

The API, in one screen::

    from ipfs_accel.testing import redis_server

    with redis_server() as redis:          # 127.0.0.1, a free port, no persistence
        redis.url                          # "redis://127.0.0.1:54321/0"
        redis.port                         # 54321
        redis.command("SET", "k", "v")     # "OK" (RESP over a socket; no client library)
        redis.ping()                       # True while it answers
        redis.stop()                       # SIGTERM: Redis goes away (the data with it)
        redis.start()                      # the same port again: Redis comes back, empty
        redis.kill()                       # SIGKILL, as a crash or an OOM kill would
        redis.returncode                   # how the last run ended: -9 after kill()
    # stopped, and its temporary directory removed, on leaving the block

The server runs with a throwaway configuration: ``--save ""`` and ``--appendonly no`` (no
dump, no journal; a restart starts empty), ``--bind 127.0.0.1 --protected-mode no`` and its
own temporary ``--dir``. Readiness is a bounded number of PING attempts on the socket, each
a short wait on the process (which ends the wait at once if the server exits), never a fixed
sleep; the server that answers must be this process (its ``INFO`` ``process_id``), not
another one that took the port.

The binary is ``binary=``, else ``$IPFS_ACCEL_REDIS_SERVER``, else ``redis-server`` (or
``valkey-server``, which works the same) on ``PATH``. When none is found, or the first start
fails, the test skips saying why; under CI (``CI=true``) it fails instead (see
:func:`require_or_skip`). A later :meth:`RedisServer.start` that fails raises
:class:`RuntimeError`: by then the test is about Redis coming back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeAlias

from ._require import require_or_skip

__all__ = ["RedisServer", "redis_server"]

RespValue: TypeAlias = "str | int | bytes | list[RespValue] | None"
"""A decoded RESP2 reply: simple string, integer, bulk string (bytes), array, or nil."""

BINARY_ENV = "IPFS_ACCEL_REDIS_SERVER"
_NAMES = ("redis-server", "valkey-server")
_HOST = "127.0.0.1"
_ATTEMPTS = 400  # readiness probes; each waits at most _INTERVAL on the process
_INTERVAL = 0.025
_PORT_TRIES = 3  # a free port can be taken between choosing it and the server binding it
_STOP_TIMEOUT = 10.0


def find_redis_server() -> str | None:
    """The path of the Redis server binary to run, or ``None`` when there is none."""
    configured = os.environ.get(BINARY_ENV, "").strip()
    if configured:
        return shutil.which(configured)
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _encode(args: tuple[str | bytes | int | float, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out += [b"$%d\r\n" % len(data), data, b"\r\n"]
    return b"".join(out)


def _read(stream: BinaryIO) -> RespValue:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection mid-reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"Redis error reply: {rest.decode(errors='replace')}")
    if kind == b":":
        return int(rest)
    if kind in (b"$", b"*"):
        size = int(rest)
        if size < 0:
            return None
        if kind == b"*":
            return [_read(stream) for _ in range(size)]
        data = stream.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionError("Redis closed the connection mid-reply")
        return data[:-2]
    raise ConnectionError(f"not a RESP reply: {line[:80]!r}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``; see :func:`redis_server`.

    Not thread-safe: start, stop and kill it from the test's thread.
    """

    def __init__(self, binary: str, directory: Path, port: int) -> None:
        self.binary = binary
        self.directory = directory
        self.host = _HOST
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self.returncode: int | None = None
        """The exit status of the last run once it ended (``-9`` after :meth:`kill`)."""

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, what a Redis client (or ``shared=``) takes."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may still be starting, or hung)."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process ID while running, else ``None``."""
        return self._process.pid if self._process is not None and self.running else None

    def command(self, *args: str | bytes | int | float, timeout: float = 5.0) -> RespValue:
        """Send one command on a new connection and return its decoded reply.

        An error reply raises :class:`RuntimeError`; a server that is not there raises
        :class:`OSError` (``ConnectionRefusedError``), as a socket does.
        """
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(_encode(args))
            with sock.makefile("rb") as stream:
                return _read(stream)

    def ping(self, timeout: float = 1.0) -> bool:
        """True if the server answers PING with PONG now."""
        try:
            return self.command("PING", timeout=timeout) == "PONG"
        except (OSError, RuntimeError):
            return False

    def start(self) -> None:
        """Start the server on :attr:`port` and wait until it answers; no-op if running.

        Raises :class:`RuntimeError` with the server's log if it exits or does not answer
        within the attempts (the port taken by another process, for one).
        """
        if self.running:
            return
        self._reap()
        self.returncode = None
        self._starts += 1
        log_path = self.directory / f"redis-{self.port}-{self._starts}.log"
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--protected-mode", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
        ]
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - the binary is the caller's choice
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        problem = self._await_ready()
        if problem is not None:
            self.kill()
            text = log_path.read_text(errors="replace").strip()
            tail = "\n".join(text.splitlines()[-15:]) or "(no output)"
            raise RuntimeError(f"{self.binary} on {self.host}:{self.port} {problem}; its log:\n{tail}")

    def _await_ready(self) -> str | None:
        """None once this process answers PING; else what went wrong."""
        process = self._process
        assert process is not None
        for _ in range(_ATTEMPTS):
            if process.poll() is not None:
                return f"exited with status {process.returncode}"
            if self.ping(timeout=_INTERVAL * 20):
                return None if self._is_ours(process.pid) else "found the port taken by another server"
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_INTERVAL)
        return f"did not answer PING after {_ATTEMPTS} attempts"

    def _is_ours(self, pid: int) -> bool:
        try:
            info = self.command("INFO", "server")
        except (OSError, RuntimeError):
            return False
        return isinstance(info, bytes) and f"process_id:{pid}\r\n".encode() in info

    def stop(self) -> None:
        """Terminate the server (SIGTERM) and wait until it has exited; no-op if stopped."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap()

    def kill(self) -> None:
        """Kill the server (SIGKILL: no shutdown at all) and wait until it is gone."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            self.returncode = self._process.wait()
            self._process = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.url} {state}>"


@contextlib.contextmanager
def redis_server(binary: str | None = None) -> Iterator[RedisServer]:
    """Start a throwaway ``redis-server`` on a free loopback port; stop it on exit.

    ``binary`` is the server to run (a path or a name on ``PATH``); by default
    ``$IPFS_ACCEL_REDIS_SERVER``, else ``redis-server`` or ``valkey-server`` on ``PATH``.
    Without one, or if it cannot be started, the calling test skips with the reason, or
    fails under CI (``CI=true``).
    """
    path = shutil.which(binary) if binary else find_redis_server()
    if path is None:
        wanted = binary or os.environ.get(BINARY_ENV, "").strip() or " or ".join(_NAMES)
        require_or_skip(
            f"no Redis server to start: {wanted} not found on PATH (install Debian's "
            f"redis-server package, as .ci/run does, or point ${BINARY_ENV} at one)"
        )
    with tempfile.TemporaryDirectory(prefix="ipfs-accel-redis-") as tmp:
        server: RedisServer | None = None
        failure = ""
        for _ in range(_PORT_TRIES):
            candidate = RedisServer(path, Path(tmp), _free_port())
            try:
                candidate.start()
            except (RuntimeError, OSError) as exc:
                failure = str(exc)
                continue
            server = candidate
            break
        if server is None:
            require_or_skip(f"could not start a Redis server: {failure}")
        try:
            yield server
        finally:
            server.stop()

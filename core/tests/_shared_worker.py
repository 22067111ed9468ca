"""One worker process of the shared-limits tests: calls one endpoint, named alike everywhere.

Run as a script (``python _shared_worker.py CONFIG_JSON``; its directory is then on
``sys.path``, so the echo test plugin imports). CONFIG_JSON holds:

- ``redis``: the ``shared=`` URL; ``base_url``: the loopback server; ``tag``: this
  worker's name, put in every call's message (``"TAG:I"``) so the server knows who sent it
- ``calls``: how many calls to make, or ``until_stdin``: calls go on until stdin closes;
  ``mode``: ``"sync"`` (``threads`` threads calling ``chat`` in turn) or ``"async"``
  (``threads`` tasks calling ``achat`` in turn on one event loop)
- ``settings``: the endpoint's settings (``rpm``, ``max_concurrent_requests``...)
- ``warmup``: before saying it is ready, ``threads`` calls at once to another endpoint of
  the same server (``"warmup-TAG:K"``, not shared): the connections the counted calls use
  are open, so a call's arrival follows its admission by a connection's reuse, not its making

Protocol, one JSON object a line on stdout (flushed at once):

- ``{"event": "ready", "tag", "pid"}`` once the registry and endpoint are made; the
  worker then waits for a line on stdin (``go``) before its first call, so the parent
  starts every worker's calls together
- ``{"event": "call", "tag", "i", "ok", "error", "module", "message", "start", "end"}``
  once per call as it ends: ``ok`` true, or the exception's type name, module and text;
  ``start``/``end`` are ``time.monotonic()`` (one clock for every process of the machine)
- ``{"event": "done", "tag", "warnings"}`` at the end: the ``ipfs_accel`` logger's
  warnings, in order

Anything else the worker raises goes to stderr, and its exit status is not 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _echo_plugin
from ipfs_accel import Registry

_lock = threading.Lock()


def emit(**event: Any) -> None:
    line = json.dumps(event)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def outcome(tag: str, i: int, start: float, exc: BaseException | None) -> None:
    end = time.monotonic()
    if exc is None:
        emit(event="call", tag=tag, i=i, ok=True, error=None, module=None, message=None,
             start=start, end=end)
    else:
        emit(event="call", tag=tag, i=i, ok=False, error=type(exc).__name__,
             module=type(exc).__module__, message=str(exc)[:300], start=start, end=end)


class Numbers:
    """The calls' numbers: ``calls`` of them, or more until ``stop`` is set."""

    def __init__(self, calls: int | None, stop: threading.Event) -> None:
        self.calls = calls
        self.stop = stop
        self.next = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if (self.calls is not None and self.next >= self.calls) or (
                    self.calls is None and self.stop.is_set()):
                return None
            self.next += 1
            return self.next - 1


def main() -> int:
    config = json.loads(sys.argv[1])
    tag: str = config["tag"]
    handler = Warnings()
    logging.getLogger("ipfs_accel").addHandler(handler)
    registry = Registry(plugins=[_echo_plugin], entry_points=False, shared=config["redis"])
    backend = registry.get("echo")
    eid = backend.create_endpoint(
        config.get("endpoint_id", "shared-echo"), base_url=config["base_url"], api_key="sk-test",
        **config.get("settings", {}))
    warm = backend.create_endpoint("warmup", base_url=config["base_url"], api_key="sk-test",
                                   shared=False, max_retries=0)
    threads = int(config.get("threads", 1))
    warmup = bool(config.get("warmup"))
    stop = threading.Event()
    until_stdin = bool(config.get("until_stdin"))
    numbers = Numbers(None if until_stdin else int(config["calls"]), stop)

    def ready() -> None:
        emit(event="ready", tag=tag, pid=os.getpid())

    def started(line: str) -> bool:
        if line.strip() != "go":
            return False  # the parent went away before starting the calls
        if until_stdin:
            def watch() -> None:
                sys.stdin.read()  # until EOF: the parent closed stdin
                stop.set()
            threading.Thread(target=watch, daemon=True).start()
        return True

    def message(i: int | str) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"{tag}:{i}"}]

    def warming(i: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"warmup-{tag}:{i}"}]

    if config.get("mode", "sync") == "sync":
        def loop() -> None:
            while (i := numbers.take()) is not None:
                start = time.monotonic()
                try:
                    backend.chat(message(i), endpoint_id=eid)
                except Exception as exc:
                    outcome(tag, i, start, exc)
                else:
                    outcome(tag, i, start, None)

        with ThreadPoolExecutor(threads) as pool:
            if warmup:  # one connection a thread, open before the calls that count
                for future in [pool.submit(backend.chat, warming(k), endpoint_id=warm)
                               for k in range(threads)]:
                    future.result()
            ready()
            if not started(sys.stdin.readline()):
                return 3
            for future in [pool.submit(loop) for _ in range(threads)]:
                future.result()
    else:
        async def aloop() -> None:
            while (i := numbers.take()) is not None:
                start = time.monotonic()
                try:
                    await backend.achat(message(i), endpoint_id=eid)
                except Exception as exc:
                    outcome(tag, i, start, exc)
                else:
                    outcome(tag, i, start, None)

        async def amain() -> bool:
            if warmup:
                await asyncio.gather(*(backend.achat(warming(k), endpoint_id=warm)
                                       for k in range(threads)))
            ready()
            if not started(await asyncio.to_thread(sys.stdin.readline)):
                return False
            await asyncio.gather(*(aloop() for _ in range(threads)))
            return True

        if not asyncio.run(amain()):
            return 3
    emit(event="done", tag=tag, warnings=handler.messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())

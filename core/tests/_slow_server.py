"""A loopback HTTP/1.1 server for time-limit tests: slow in exactly the ways a test asks.

Each request takes the next scripted behaviour. A trickle goes on until the client goes
away, the test stops the server, or ``CAP`` seconds pass; after the cap it completes the
answer, so a client that was never cut off gets a result and its test fails, instead of
hanging. Nothing here paces a test: tests wait on :attr:`SlowServer.arrived` and events.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

CAP = 30.0  # seconds a trickle lasts if the client never cuts it off
TICK = 0.05  # seconds between trickled bytes

OK_BODY = {"model": "echo-1", "choices": [{"message": {"content": "slowly"},
                                           "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

Behaviour = Callable[["SlowServer", socket.socket], None]


class SlowServer:
    """``with SlowServer() as s``: ``s.base_url``, ``s.script(b1, b2, ...)``,
    ``s.arrived`` (a semaphore released per request), ``s.gone`` (set when a write found the
    client gone)."""

    def __init__(self) -> None:
        self._script: deque[Behaviour] = deque()
        self.stop = threading.Event()
        self.gone = threading.Event()
        self.arrived = threading.Semaphore(0)
        self.requests = 0
        self.paths: list[str] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                reader = sock.makefile("rb")
                while True:
                    head = _read_head(reader)
                    if head is None:
                        return
                    outer.paths.append(head)
                    outer.requests += 1
                    behaviour = outer._script.popleft() if outer._script else ok()
                    outer.arrived.release()
                    try:
                        behaviour(outer, sock)
                    except OSError:
                        outer.gone.set()
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *behaviours: Behaviour) -> None:
        self._script.extend(behaviours)

    def wait_for(self, n: int, timeout: float = CAP) -> None:
        """Block until ``n`` more requests have arrived."""
        for _ in range(n):
            assert self.arrived.acquire(timeout=timeout), "the request never arrived"

    def trickle(self, sock: socket.socket, piece: bytes) -> None:
        """Send ``piece`` every TICK until the client goes (OSError), the test ends or the cap."""
        waited = 0.0
        while waited < CAP and not self.stop.is_set():
            sock.sendall(piece)
            self.stop.wait(TICK)
            waited += TICK

    def __enter__(self) -> SlowServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()


def _read_head(reader: Any) -> str | None:
    request_line = reader.readline()
    if not request_line:
        return None
    length = 0
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        reader.read(length)
    return request_line.decode("latin-1").split(" ")[1]


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ok(body: Any = OK_BODY, status: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer at once."""
    content = json.dumps(body).encode()

    def run(server: SlowServer, sock: socket.socket) -> None:
        sock.sendall(_head(status, {"content-type": "application/json",
                                    "content-length": str(len(content)), **(headers or {})})
                     + content)

    return run


def gated(gate: threading.Event, body: Any = OK_BODY) -> Behaviour:
    """Answer once ``gate`` is set (or after the cap)."""
    answer = ok(body)

    def run(server: SlowServer, sock: socket.socket) -> None:
        gate.wait(CAP)
        answer(server, sock)

    return run


def trickled_json(body: Any = OK_BODY) -> Behaviour:
    """Headers at once, then the body one space at a time (valid JSON once complete)."""
    content = json.dumps(body).encode()
    padding = 1_000_000

    def run(server: SlowServer, sock: socket.socket) -> None:
        sock.sendall(_head(200, {"content-type": "application/json",
                                 "content-length": str(padding + len(content))}))
        sent = 0
        waited = 0.0
        while waited < CAP and not server.stop.is_set() and sent < padding:
            sock.sendall(b" ")
            sent += 1
            server.stop.wait(TICK)
            waited += TICK
        sock.sendall(b" " * (padding - sent) + content)

    return run


def sse_then(filler: bytes) -> Behaviour:
    """An SSE stream: one text delta, then ``filler`` (keep-alive comments, pings) until
    the client goes or the cap, then the end of the stream."""

    def run(server: SlowServer, sock: socket.socket) -> None:
        sock.sendall(_head(200, {"content-type": "text/event-stream", "connection": "close"}))
        sock.sendall(b'data: {"choices":[{"delta":{"content":"one"}}]}\n\n')
        server.trickle(sock, filler)
        sock.sendall(b'data: {"choices":[{"delta":{"content":" two"}}]}\n\ndata: [DONE]\n\n')
        sock.shutdown(socket.SHUT_WR)

    return run


def sse_steady(events: int) -> Behaviour:
    """An SSE stream of ``events`` text deltas, one every TICK, then [DONE]."""

    def run(server: SlowServer, sock: socket.socket) -> None:
        sock.sendall(_head(200, {"content-type": "text/event-stream", "connection": "close"}))
        for _ in range(events):
            sock.sendall(b'data: {"choices":[{"delta":{"content":"."}}]}\n\n')
            server.stop.wait(TICK)
        sock.sendall(b"data: [DONE]\n\n")
        sock.shutdown(socket.SHUT_WR)

    return run

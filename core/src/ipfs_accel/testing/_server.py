"""A fault-injecting loopback HTTP/1.1 server: real sockets, scripted replies, recorded requests.

The API, in one screen::

    from ipfs_accel.testing import FaultServer, Reply, Drop, Hang, Stream, TruncatedStream

    with FaultServer() as server:                    # 127.0.0.1, a free port, keep-alive
        server.base_url                               # "http://127.0.0.1:54321"
        server.script([                               # consumed in order, one per request
            Reply(200, json={"ok": True}),            # a JSON body (or body=b"...")
            Reply(429, headers={"retry-after": "1"}),
            Reply(503), Reply(529, delay=0.2),        # delay: wait before answering
            Drop(),                                   # close the connection, no response
            Hang(5.0),                                # say nothing for 5 s, then close
            Hang(0.3, then=Reply(200, json={})),      # ...or then answer
            Hold(arrived=8, then=Reply(200, json={})),  # wait until 8 requests came in
            Hold(release=event, then=Reply(200)),     # wait until the test sets event
            Stream(["data: {}", "", "data: [DONE]", ""]),  # chunked, one line per chunk
            TruncatedStream(["data: {}", ""]),        # chunked, cut before the last chunk
        ])
        server.script([Reply(404)], path="/v1/models")  # a queue for one path only
        ...                                           # make calls against server.base_url
        server.requests                               # [RecordedRequest(method, path, query,
                                                      #   headers, body, received_at), ...]
        server.requests[0].json()                     # the body decoded as JSON
        server.requests[0].header("authorization")    # one header, case-insensitive
        server.peak_concurrency                       # most requests in progress at once

For free-running use (demos, soak tests), pass a responder: ``FaultServer(responder=fn)``
where ``fn(request) -> Action`` answers every request the scripts do not; wrap it in
:func:`with_faults` to inject faults at random rates. Requests nothing answers get
``default`` (a 404 that says so). The server is a ``ThreadingHTTPServer``: one thread per
connection, so 64+ concurrent keep-alive connections (and hanging replies) are fine.
"""

from __future__ import annotations

import contextlib
import json as _json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._actions import Action, Drop, Hang, Hold, RecordedRequest, Reply, Responder, Stream, TruncatedStream

__all__ = ["FaultServer"]

_DEFAULT = Reply(404, json={"error": {"message": "FaultServer: nothing scripted for this request"}})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read ``FaultServer.requests`` instead."""

    def setup(self) -> None:
        super().setup()
        self._conn_id = self.server.owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._closed(self.connection)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        owner = self.server.owner
        received = time.monotonic()
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        split = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            received_at=received,
            connection=self._conn_id,
        )
        owner._begin(request)
        self._ended = False
        try:
            self._act(owner._next_action(request))
        finally:
            self._end()

    def _end(self) -> None:
        """The request stops counting as in progress. Called just before the last bytes
        go out, so a client that starts its next request on seeing them never overlaps."""
        if not self._ended:
            self._ended = True
            self.server.owner._end()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _act(self, action: Action) -> None:
        stop = self.server.owner._stopping
        if isinstance(action, Hang):
            stop.wait(action.seconds)
            if action.then is None or stop.is_set():
                self._cut()
                return
            action = action.then
        if isinstance(action, Hold):
            if not self.server.owner._held(action) or action.then is None:
                self._cut()
                return
            action = action.then
        if isinstance(action, Drop):
            self._cut()
        elif isinstance(action, Stream):
            self._stream(action)
        else:
            if action.delay and stop.wait(action.delay):
                self._cut()
                return
            self._reply(action)

    def _cut(self) -> None:
        """Close the connection now, with nothing (more) written."""
        self._end()
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reply(self, reply: Reply) -> None:
        body = reply.body
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if reply.json is not None:
            body = _json.dumps(reply.json).encode()
            headers.setdefault("content-type", "application/json")
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self._end()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _stream(self, stream: Stream) -> None:
        self.send_response(stream.status)
        headers = {k.lower(): v for k, v in stream.headers.items()}
        headers.setdefault("content-type", stream.content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        stop = self.server.owner._stopping
        try:
            for i, line in enumerate(stream.lines):
                if i and stream.interval and stop.wait(stream.interval):
                    self._cut()
                    return
                data = line.encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            if isinstance(stream, TruncatedStream):
                self._cut()
                return
            self._end()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client went away mid-stream: nothing to answer
            self.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512  # the listen backlog: bursts of many new connections
    owner: FaultServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about a client that went away between keep-alive requests (an event loop
        closed at the end of an async call resets its idle connections); loud otherwise."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FaultServer:
    """A loopback HTTP/1.1 server that answers each request as scripted and records it.

    Start it with ``with FaultServer() as server:`` (or :meth:`start`/:meth:`close`).
    Each request takes the next action of its path's script (:meth:`script` with
    ``path=``), else of the general script, else the ``responder``'s answer, else
    ``default``. Everything is thread-safe; hanging replies end at :meth:`close`.
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        default: Action = _DEFAULT,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.responder = responder
        self.default = default
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._script: deque[Action] = deque()
        self._paths: dict[str, deque[Action]] = {}
        self._requests: list[RecordedRequest] = []
        self._active = 0
        self._peak = 0
        self._conn_count = 0
        self._connections: dict[int, socket.socket] = {}
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition(self._lock)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FaultServer:
        """Bind and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"FaultServer:{httpd.server_address[1]}", daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, end hanging replies and close every open connection."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()  # held requests see the stop at once
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._connections.values())
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._httpd is None:
            raise RuntimeError("FaultServer is not running: use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self.port}"

    # -- scripting -----------------------------------------------------------------

    def script(self, actions: Iterable[Action], *, path: str | None = None) -> None:
        """Append ``actions``, consumed one per request in order (only ``path``'s, if given)."""
        with self._lock:
            queue = self._script if path is None else self._paths.setdefault(path, deque())
            queue.extend(actions)

    def pending(self) -> int:
        """How many scripted actions have not been used yet."""
        with self._lock:
            return len(self._script) + sum(len(q) for q in self._paths.values())

    def reset(self) -> None:
        """Forget scripts, recorded requests and the concurrency peak."""
        with self._lock:
            self._script.clear()
            self._paths.clear()
            self._requests.clear()
            self._peak = self._active

    # -- what happened -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def peak_concurrency(self) -> int:
        """The most requests in progress at once since start (or :meth:`reset`)."""
        with self._lock:
            return self._peak

    @property
    def in_progress(self) -> int:
        """Requests received and not yet fully answered."""
        with self._lock:
            return self._active

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests were received (or ``timeout``); True if they were."""
        end = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    # -- called by the handler threads ---------------------------------------------

    def _opened(self, conn: socket.socket) -> int:
        with self._lock:
            self._conn_count += 1
            self._connections[id(conn)] = conn
            return self._conn_count

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(id(conn), None)

    def _begin(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._active += 1
            self._peak = max(self._peak, self._active)
            self._changed.notify_all()

    def _end(self) -> None:
        with self._lock:
            self._active -= 1

    def _held(self, hold: Hold) -> bool:
        """Wait until ``hold`` may go; False if it timed out or the server is closing."""
        end = time.monotonic() + hold.timeout
        with self._changed:
            while not self._stopping.is_set():
                if len(self._requests) >= hold.arrived and (
                    hold.release is None or hold.release.is_set()
                ):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                # An Event cannot notify this condition: look again every 20 ms.
                self._changed.wait(min(left, 0.02) if hold.release is not None else left)
        return False

    def _next_action(self, request: RecordedRequest) -> Action:
        with self._lock:
            queue = self._paths.get(request.path)
            if queue:
                return queue.popleft()
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            try:
                return self.responder(request)
            except Exception as exc:  # a broken responder answers 500, it does not hang
                return Reply(500, json={"error": {"message": f"responder raised {exc!r}"}})
        return self.default

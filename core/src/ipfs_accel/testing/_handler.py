"""The FaultServer's HTTP side: reading each request and carrying out its scripted action
(answer, drop, hang, hold, stream) on the socket, one thread per connection."""

from __future__ import annotations

import json as _json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ._actions import Action, Drop, Hang, Hold, RecordedRequest, Reply, Stream, TruncatedStream

if TYPE_CHECKING:
    from ._server import FaultServer

__all__ = ["HTTPServer", "Handler"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read ``FaultServer.requests`` instead."""

    def setup(self) -> None:
        super().setup()
        self._conn_id = self.server.owner.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner.closed(self.connection)

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
        owner.begin(request)
        self._ended = False
        try:
            self._act(owner.next_action(request))
        finally:
            self._end()

    def _end(self) -> None:
        """The request stops counting as in progress. Called just before the last bytes
        go out, so a client that starts its next request on seeing them never overlaps."""
        if not self._ended:
            self._ended = True
            self.server.owner.ended()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _act(self, action: Action) -> None:
        stop = self.server.owner.stopping
        if isinstance(action, Hang):
            stop.wait(action.seconds)
            if action.then is None or stop.is_set():
                self._cut()
                return
            action = action.then
        if isinstance(action, Hold):
            if not self.server.owner.held(action) or action.then is None:
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
        stop = self.server.owner.stopping
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


class HTTPServer(ThreadingHTTPServer):
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

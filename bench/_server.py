"""A fast loopback HTTP/1.1 keep-alive server for the comparison benchmarks.

Routes (by request path):

- ``.../messages``: an Anthropic Messages-shaped reply with ``request-id``;
- ``/hold/...``: reads the request and never answers (calls stay in flight or queued);
- anything else: an OpenAI chat.completion-shaped reply with ``x-request-id``.

Every reply carries ``usage``. With ``share_429 > 0`` about that share of requests (every
``round(1/share)``-th) gets a 429 with ``retry-after-ms: 1`` / ``retry-after: 0`` instead,
in both shapes' error formats. The server runs in its own process, pinned to ``cpu``:
:func:`fast_server` starts it so, on a core of its own where there are two or more.

Shared by the loopback servers of the benches: :func:`read_request` (one request off a
keep-alive connection) and ``CLOSED`` (what ends a connection); :func:`closed_port`, a port
nothing listens on.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

OPENAI_BODY = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}).encode()
ANTHROPIC_BODY = json.dumps({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "bench",
    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1},
}).encode()
OPENAI_429 = json.dumps({"error": {"message": "slow down", "type": "rate_limit_error",
                                   "param": None, "code": "rate_limit_exceeded"}}).encode()
ANTHROPIC_429 = json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                       "message": "slow down"}}).encode()


def _response(status: bytes, body: bytes, id_header: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n" + id_header
        + b": srv-req-1\r\n" + extra + b"content-length: " + str(len(body)).encode()
        + b"\r\n\r\n" + body
    )


OPENAI_OK = _response(b"200 OK", OPENAI_BODY, b"x-request-id")
ANTHROPIC_OK = _response(b"200 OK", ANTHROPIC_BODY, b"request-id")
_RETRY = b"retry-after-ms: 1\r\nretry-after: 0\r\n"
OPENAI_RL = _response(b"429 Too Many Requests", OPENAI_429, b"x-request-id", _RETRY)
ANTHROPIC_RL = _response(b"429 Too Many Requests", ANTHROPIC_429, b"request-id", _RETRY)
CLOSED = (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request off a keep-alive connection, its head and its body (as long as its
    ``content-length`` says); return the head. Raises one of ``CLOSED`` when the client
    has gone (or sent a head too long)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return head


def serve(port_pipe: Any, cpu: int | None, share_429: float = 0.0) -> None:
    """Run the server until killed; send the bound port through ``port_pipe``."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    every = round(1 / share_429) if share_429 > 0 else 0
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        try:
            while True:
                head = await read_request(reader)
                path = head.split(b" ", 2)[1]
                if path.startswith(b"/hold/"):
                    continue
                anthropic = path.endswith(b"/messages")
                count += 1
                if every and count % every == 0:
                    writer.write(ANTHROPIC_RL if anthropic else OPENAI_RL)
                else:
                    writer.write(ANTHROPIC_OK if anthropic else OPENAI_OK)
        except CLOSED:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, reuse_address=True,
                                            backlog=4096)
        port_pipe.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def fast_server(*pinned: int | None) -> Iterator[tuple[str, int | None]]:
    """:func:`serve` in its own process, on the last core when there are two or more (with
    the processes ``pinned`` names, a Redis server's say; ``None`` is passed over), the
    client on the others meanwhile; yields the server's URL and its core."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[-1] if len(cpus) > 1 else None
    others = [pid for pid in pinned if pid is not None]
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=serve, args=(child, server_cpu), daemon=True)
    proc.start()
    if server_cpu is not None:
        os.sched_setaffinity(0, set(cpus[:-1]))
        for pid in others:
            os.sched_setaffinity(pid, {server_cpu})
    try:
        port = parent.recv()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        yield f"http://127.0.0.1:{port}", server_cpu
    finally:
        proc.terminate()
        proc.join(5)
        if server_cpu is not None:
            os.sched_setaffinity(0, set(cpus))
            for pid in others:
                os.sched_setaffinity(pid, set(cpus))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port

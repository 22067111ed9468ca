"""FaultServer: real loopback HTTP with scripted replies, faults and recorded requests."""

from __future__ import annotations

import asyncio
import threading
import time

import _echo_plugin
import httpx2
import pytest
from ipfs_accel import Backend, Registry, StreamInterruptedError, TimeoutError, TransportError
from ipfs_accel.testing import (
    Drop,
    FaultServer,
    Hang,
    Hold,
    RecordedRequest,
    Reply,
    Stream,
    TruncatedStream,
    with_faults,
)

OK = {
    "model": "echo-1",
    "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def _echo(server: FaultServer, **settings: object) -> tuple[Backend, str]:
    backend = Registry(plugins=[_echo_plugin], entry_points=False).get("echo")
    eid = backend.create_endpoint(
        base_url=server.base_url, api_key="k-1", initial_retry_delay=0.01, max_retry_delay=0.02,
        retry_jitter=0, **settings,
    )
    return backend, eid


def test_reply_and_recording() -> None:
    """A scripted reply comes back; the request is recorded with its headers and body."""
    with FaultServer() as server, httpx2.Client() as client:
        server.script([Reply(201, json={"a": 1}, headers={"X-Thing": "t"})])
        resp = client.post(server.base_url + "/v1/x?q=1&b=", json={"hello": "w"},
                           headers={"Authorization": "Bearer z"})
        assert resp.status_code == 201
        assert resp.json() == {"a": 1}
        assert resp.headers["x-thing"] == "t"
        (req,) = server.requests
        assert isinstance(req, RecordedRequest)
        assert (req.method, req.path, req.query) == ("POST", "/v1/x", {"q": "1", "b": ""})
        assert req.header("AUTHORIZATION") == "Bearer z"
        assert req.json() == {"hello": "w"}
        assert req.received_at <= time.monotonic()


def test_script_order_then_default() -> None:
    """Scripted actions are consumed in order; then the default 404 answers."""
    with FaultServer() as server, httpx2.Client() as client:
        server.script([Reply(429, headers={"retry-after": "1"}), Reply(503), Reply(200, body=b"x")])
        codes = [client.get(server.base_url + "/").status_code for _ in range(4)]
        assert codes == [429, 503, 200, 404]
        assert server.pending() == 0


def test_path_script_takes_precedence() -> None:
    """A path's own script answers that path before the general script."""
    with FaultServer() as server, httpx2.Client() as client:
        server.script([Reply(200, body=b"general")])
        server.script([Reply(200, body=b"models")], path="/models")
        assert client.get(server.base_url + "/models").content == b"models"
        assert client.get(server.base_url + "/models").content == b"general"


def test_drop_is_a_disconnect() -> None:
    """Drop closes the connection without an answer; the next request still works."""
    with FaultServer() as server, httpx2.Client() as client:
        server.script([Drop(), Reply(200, body=b"ok")])
        with pytest.raises(httpx2.RemoteProtocolError):
            client.get(server.base_url + "/")
        assert client.get(server.base_url + "/").content == b"ok"


def test_hang_past_timeout_and_then() -> None:
    """Hang outlasts the client's timeout; Hang(then=...) answers after the wait."""
    with FaultServer() as server, httpx2.Client() as client:
        server.script([Hang(2.0), Hang(0.2, then=Reply(200, body=b"late"))])
        with pytest.raises(httpx2.ReadTimeout):
            client.get(server.base_url + "/", timeout=0.2)
        start = time.monotonic()
        assert client.get(server.base_url + "/", timeout=2).content == b"late"
        assert time.monotonic() - start >= 0.18


def test_close_ends_a_hang_promptly() -> None:
    """Closing the server ends a hanging reply instead of waiting it out."""
    server = FaultServer().start()
    server.script([Hang(30)])
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx2.get(server.base_url + "/", timeout=10)
        except httpx2.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    assert server.wait_for(1)
    start = time.monotonic()
    server.close()
    t.join(5)
    assert not t.is_alive() and errors
    assert time.monotonic() - start < 3


def test_stream_and_truncated_stream() -> None:
    """Stream sends each line as a chunk; TruncatedStream cuts before the end."""
    with FaultServer() as server, httpx2.Client() as client:
        server.script([
            Stream(["data: 1", "", "data: 2", ""], interval=0.01),
            TruncatedStream(["data: 1", ""], content_type="application/x-ndjson"),
        ])
        with client.stream("GET", server.base_url + "/s") as resp:
            assert resp.headers["content-type"] == "text/event-stream"
            assert list(resp.iter_lines()) == ["data: 1", "", "data: 2", ""]
        with pytest.raises(httpx2.RemoteProtocolError), \
                client.stream("GET", server.base_url + "/s") as resp:
            assert resp.headers["content-type"] == "application/x-ndjson"
            list(resp.iter_lines())


def test_responder_and_with_faults() -> None:
    """A responder answers unscripted requests; with_faults replaces some with faults."""
    def answer(request: RecordedRequest) -> Reply:
        return Reply(200, json={"path": request.path})

    with FaultServer(responder=answer) as server, httpx2.Client() as client:
        assert client.get(server.base_url + "/p").json() == {"path": "/p"}
    faulty = with_faults(answer, rate=0.5, faults=(Reply(503),), seed=1)
    with FaultServer(responder=faulty) as server, httpx2.Client() as client:
        codes = {client.get(server.base_url + "/").status_code for _ in range(40)}
        assert codes == {200, 503}


def test_broken_responder_answers_500() -> None:
    """A responder that raises gives a 500, not a hung client."""
    def broken(request: RecordedRequest) -> Reply:
        raise RuntimeError("boom")

    with FaultServer(responder=broken) as server:
        assert httpx2.get(server.base_url + "/").status_code == 500


def test_many_concurrent_keepalive_connections() -> None:
    """96 requests held until all have arrived, twice over keep-alive: all in flight at once."""
    async def run(base: str) -> list[int]:
        async with httpx2.AsyncClient(limits=httpx2.Limits(max_connections=None)) as client:
            for _ in range(2):  # twice, so the second round reuses the connections
                codes = await asyncio.gather(
                    *[client.get(f"{base}/{i}", timeout=30) for i in range(96)]
                )
            return [r.status_code for r in codes]

    ok = Reply(200, body=b"ok")
    with FaultServer() as server:
        # No request is answered before every one of its round is in: the peak is exact.
        server.script([Hold(arrived=96, then=ok)] * 96 + [Hold(arrived=192, then=ok)] * 96)
        codes = asyncio.run(run(server.base_url))
        assert codes == [200] * 96
        assert len(server.requests) == 192
        assert server.peak_concurrency == 96
        assert len({r.connection for r in server.requests}) <= 96 + 8


def test_hold_waits_for_arrivals_and_release() -> None:
    """Hold answers only once enough requests arrived and its event is set."""
    release = threading.Event()
    with FaultServer() as server:
        server.script([Hold(arrived=2, then=Reply(200, body=b"a")),
                       Hold(release=release, then=Reply(200, body=b"b"))])
        bodies: dict[str, bytes] = {}

        def get(name: str) -> None:
            bodies[name] = httpx2.get(server.base_url + "/" + name, timeout=30).content

        first = threading.Thread(target=get, args=("first",))
        first.start()
        assert server.wait_for(1)
        assert server.in_progress == 1 and not bodies  # held: only one request so far
        second = threading.Thread(target=get, args=("second",))
        second.start()
        first.join(30)
        assert bodies == {"first": b"a"}  # the second arrival let the first go
        assert server.in_progress == 1  # the second waits for its event
        release.set()
        second.join(30)
        assert bodies == {"first": b"a", "second": b"b"}


def test_hold_times_out_and_close_ends_it() -> None:
    """A Hold nobody releases cuts the connection at its timeout, or at close."""
    with FaultServer() as server:
        server.script([Hold(release=threading.Event(), timeout=0.05, then=Reply(200))])
        with pytest.raises(httpx2.RemoteProtocolError):
            httpx2.get(server.base_url + "/", timeout=30)
    server = FaultServer().start()
    server.script([Hold(arrived=5, then=Reply(200))])
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx2.get(server.base_url + "/", timeout=30)
        except httpx2.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    assert server.wait_for(1)
    server.close()
    t.join(30)
    assert not t.is_alive() and errors


def test_reset_forgets() -> None:
    """reset() drops scripts, recorded requests and the peak."""
    with FaultServer() as server:
        server.script([Reply(200)])
        httpx2.get(server.base_url + "/")
        server.script([Reply(500)])
        server.reset()
        assert server.requests == [] and server.pending() == 0 and server.peak_concurrency == 0


def test_backend_retries_through_real_faults() -> None:
    """The echo backend survives 429, 503, a drop and a hang, and every attempt is recorded."""
    with FaultServer() as server:
        backend, eid = _echo(server, timeout=0.3)
        server.script([
            Reply(429, headers={"retry-after": "0"}), Reply(503), Drop(), Hang(2),
            Reply(200, json=OK),
        ])
        result = backend.chat([{"role": "user", "content": "x"}], endpoint_id=eid,
                              request_id="rid-1")
        assert result.text == "hi" and result.request_id == "rid-1"
        assert [r.header("x-request-id") for r in server.requests] == ["rid-1"] * 5
        assert all(r.header("authorization") == "Bearer k-1" for r in server.requests)


def test_backend_hang_is_a_timeout_and_truncation_interrupts() -> None:
    """A hang past the timeout raises TimeoutError; a truncated stream StreamInterruptedError."""
    with FaultServer() as server:
        backend, eid = _echo(server, timeout=0.2, max_retries=0)
        server.script([Hang(2)])
        with pytest.raises(TimeoutError):
            backend.chat([{"role": "user", "content": "x"}], endpoint_id=eid)
        server.script([TruncatedStream(['data: {"choices": [{"delta": {"content": "a"}}]}', ""])])
        with pytest.raises(StreamInterruptedError):
            list(backend.stream_chat([{"role": "user", "content": "x"}], endpoint_id=eid))
        server.script([Drop()])
        with pytest.raises(TransportError):
            backend.chat([{"role": "user", "content": "x"}], endpoint_id=eid)

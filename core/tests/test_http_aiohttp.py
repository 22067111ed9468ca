"""The aiohttp async transport: chosen explicitly, and the same behaviour as httpx2's path.

Against real loopback sockets: failures map to the same errors (refused, cut off, timed
out), a stream arrives event by event, each loop has one session closed with the loop,
and no key shows in any rendering of an error.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from _slow_server import SlowServer, _head, ok
from hypothesis import given
from hypothesis import strategies as st
from ipfs_accel import ConfigurationError, Registry
from ipfs_accel.testing import FaultServer, Reply, Stream, TruncatedStream, import_or_skip

aiohttp = import_or_skip("aiohttp")  # the transport under test: a skip, or fail under CI

from ipfs_accel._batch_types import LinesBody, streamed_body  # noqa: E402
from ipfs_accel._http import HTTP  # noqa: E402 - after the check that aiohttp is there
from ipfs_accel._http_aiohttp import AioRequest, _fail, _Lines  # noqa: E402
from multidict import CIMultiDict, CIMultiDictProxy  # noqa: E402 - aiohttp's own
from yarl import URL  # noqa: E402 - aiohttp's own

MSG = [{"role": "user", "content": "hi"}]
KEY = "sk-canary-aio-5Jx8Qw2Lm7Rt"


def _backend(base_url: str, *, registry: Registry | None = None, http: str = "aiohttp",
             **settings: Any):
    registry = registry or Registry(plugins=[_echo_plugin], entry_points=False, http=http)
    return registry.fresh("echo", base_url=base_url, **settings)


BOTH = pytest.mark.parametrize("http", ["httpx2", "aiohttp"])  # the same outcome on each


def _agent(server: FaultServer) -> str:
    return server.requests[-1].header("user-agent") or ""


# -- choosing it --------------------------------------------------------------------------


def test_registry_http_aiohttp_sends_async_calls_through_aiohttp():
    """Registry(http="aiohttp"): async calls go out through aiohttp, sync calls through httpx2."""
    with FaultServer() as server:
        server.script([Reply(200, json=_body("a")), Reply(200, json=_body("s"))])
        b = _backend(server.base_url)
        assert asyncio.run(b.achat(MSG)).text == "a"
        assert "aiohttp" in _agent(server)
        assert b.chat(MSG).text == "s"
        assert "httpx2" in _agent(server)
        b.close()


@pytest.mark.parametrize(("value", "library"), [("aiohttp", "aiohttp"), ("httpx2", "httpx2"),
                                                  (None, "httpx2"), ("", "httpx2")])
def test_environment_variable_chooses(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                      library: str):
    """IPFS_ACCEL_HTTP chooses the async library when http= is not given; unset or empty
    is httpx2."""
    if value is None:
        monkeypatch.delenv("IPFS_ACCEL_HTTP", raising=False)
    else:
        monkeypatch.setenv("IPFS_ACCEL_HTTP", value)
    with FaultServer() as server:
        server.script([Reply(200, json=_body("x"))])
        registry = Registry(plugins=[_echo_plugin], entry_points=False, environ={})
        asyncio.run(registry.get("echo", base_url=server.base_url).achat(MSG))
        assert library in _agent(server)


def test_http_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch):
    """http="httpx2" stands even when IPFS_ACCEL_HTTP says aiohttp."""
    monkeypatch.setenv("IPFS_ACCEL_HTTP", "aiohttp")
    with FaultServer() as server:
        server.script([Reply(200, json=_body("x"))])
        registry = Registry(plugins=[_echo_plugin], entry_points=False, http="httpx2")
        asyncio.run(registry.get("echo", base_url=server.base_url).achat(MSG))
        assert "httpx2" in _agent(server)


def test_unknown_choice_is_a_configuration_error_naming_the_allowed(
        monkeypatch: pytest.MonkeyPatch):
    """Anything but httpx2 or aiohttp fails when the Registry is made, naming both (and the
    variable, when it came from there)."""
    with pytest.raises(ConfigurationError, match=r"http='curl'.*'httpx2' or 'aiohttp'"):
        Registry(http="curl")
    monkeypatch.setenv("IPFS_ACCEL_HTTP", "AIOHTTP ")
    with pytest.raises(ConfigurationError,
                       match=r"IPFS_ACCEL_HTTP='AIOHTTP '.*'httpx2' or 'aiohttp'"):
        Registry()


def test_aiohttp_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    """http="aiohttp" without aiohttp installed fails at once with the pip command; chosen
    by IPFS_ACCEL_HTTP, the first async call fails so, while listing and sync calls work."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp now fails
    monkeypatch.delitem(sys.modules, "ipfs_accel._http_aiohttp")
    with pytest.raises(ConfigurationError,
                       match=r"http='aiohttp'.*pip install 'ipfs-accel-core\[aiohttp\]'"):
        Registry(http="aiohttp")
    monkeypatch.setenv("IPFS_ACCEL_HTTP", "aiohttp")
    with FaultServer() as server:
        server.script([Reply(200, json=_body("sync"))])
        registry = Registry(plugins=[_echo_plugin], entry_points=False)
        assert registry.names() == ["echo"]
        b = registry.get("echo", base_url=server.base_url)
        assert b.chat(MSG).text == "sync"
        with pytest.raises(ConfigurationError,
                           match=r"IPFS_ACCEL_HTTP='aiohttp'.*pip install 'ipfs-accel-core"):
            asyncio.run(b.achat(MSG))
        b.close()


def test_a_test_transport_wins_over_the_choice():
    """A MockTransport (or an async_transport) answers async calls whatever the choice."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=_body("mocked"))

    for given_ in ({"transport": httpx2.MockTransport(handler)},
                   {"async_transport": httpx2.MockTransport(handler)}):
        registry = Registry(plugins=[_echo_plugin], entry_points=False, http="aiohttp",
                            **given_)
        assert asyncio.run(_backend("http://echo.test", registry=registry).achat(MSG)).text \
            == "mocked"
    assert len(seen) == 2


# -- failures, mapped as httpx2 names them ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _failure(b: ipfs_accel.Backend, stream: bool = False) -> ipfs_accel.CallError:
    async def run() -> None:
        if stream:
            async for _ in b.astream_chat(MSG):
                pass
        else:
            await b.achat(MSG)

    with pytest.raises(ipfs_accel.CallError) as info:
        asyncio.run(run())
    return info.value


@BOTH
def test_connection_refused_is_a_retryable_connect_error(http: str):
    """A refused connection: TransportError from httpx2.ConnectError, retried max_retries times."""
    b = _backend(f"http://127.0.0.1:{_closed_port()}", http=http, max_retries=1,
                 initial_retry_delay=0.001)
    err = _failure(b)
    assert type(err) is ipfs_accel.TransportError
    assert isinstance(err.__cause__, httpx2.ConnectError)
    assert err.retryable and err.attempts == 2


@BOTH
def test_server_closing_before_the_answer_is_a_remote_protocol_error(http: str):
    """The server closes without answering: TransportError from httpx2.RemoteProtocolError."""
    with FaultServer() as server:
        from ipfs_accel.testing import Drop  # noqa: PLC0415

        server.script([Drop()])
        err = _failure(_backend(server.base_url, http=http, max_retries=0))
        assert type(err) is ipfs_accel.TransportError
        assert isinstance(err.__cause__, httpx2.RemoteProtocolError)
        assert err.retryable


def _cut_body(server: SlowServer, sock: socket.socket) -> None:
    sock.sendall(_head(200, {"content-type": "application/json", "content-length": "1000"})
                 + b'{"choices": [')
    sock.shutdown(socket.SHUT_RDWR)


@BOTH
def test_server_closing_mid_body_is_a_remote_protocol_error_and_retried(http: str):
    """A body cut short: TransportError from httpx2.RemoteProtocolError, retried."""
    with SlowServer() as server:
        server.script(_cut_body, _cut_body, ok())
        err = _failure(_backend(server.base_url, http=http, max_retries=1,
                                initial_retry_delay=0.001))
        assert type(err) is ipfs_accel.TransportError
        assert isinstance(err.__cause__, httpx2.RemoteProtocolError)
        assert err.attempts == 2
        b = _backend(server.base_url, http=http, max_retries=0)
        assert asyncio.run(b.achat(MSG)).text == "slowly"


@BOTH
def test_read_timeout_is_our_timeout_error(http: str):
    """A server that says nothing: ipfs_accel.TimeoutError for the attempt, retryable."""
    with FaultServer() as server:
        from ipfs_accel.testing import Hang  # noqa: PLC0415

        server.script([Hang(30.0)])
        err = _failure(_backend(server.base_url, http=http, max_retries=0, timeout=0.2))
        assert type(err) is ipfs_accel.TimeoutError
        assert err.retryable
        assert "timeout of 0.2s" in str(err)


@BOTH
def test_stream_cut_short_is_interrupted(http: str):
    """A stream that ends before its final event: StreamInterruptedError, as on httpx2."""
    with FaultServer() as server:
        server.script([TruncatedStream(['data: {"choices":[{"delta":{"content":"a"}}]}', ""])])
        err = _failure(_backend(server.base_url, http=http, max_retries=0), stream=True)
        assert type(err) is ipfs_accel.StreamInterruptedError


def _info(url: str) -> Any:
    headers = CIMultiDictProxy(CIMultiDict({"authorization": f"Bearer {KEY}"}))
    return aiohttp.RequestInfo(URL(url), "POST", headers, URL(url))


@pytest.mark.parametrize(("raised", "expected"), [
    (lambda: aiohttp.ConnectionTimeoutError("connect"), httpx2.ConnectTimeout),
    (lambda: aiohttp.SocketTimeoutError("read"), httpx2.ReadTimeout),
    (TimeoutError, httpx2.ReadTimeout),  # a bare one aiohttp did not wrap
    (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError),
    (lambda: aiohttp.ClientPayloadError("cut"), httpx2.RemoteProtocolError),
    (lambda: aiohttp.ClientOSError(104, "reset"), httpx2.ReadError),
    (lambda: ConnectionResetError(104, "reset"), httpx2.ReadError),
    (lambda: aiohttp.NonHttpUrlClientError("ftp://x"), httpx2.UnsupportedProtocol),
    (lambda: aiohttp.InvalidURL("http://"), httpx2.LocalProtocolError),
    (lambda: ValueError("Newline or carriage return character detected"),
     httpx2.LocalProtocolError),
    (lambda: aiohttp.ClientResponseError(_info("http://h/x"), (), status=400,
                                         message="Expected HTTP/"),
     httpx2.RemoteProtocolError),
    (lambda: aiohttp.ClientHttpProxyError(_info("http://h/x"), (), status=407,
                                          message="Proxy Authentication Required"),
     httpx2.ProxyError),
])
def test_each_aiohttp_failure_becomes_the_httpx2_exception_of_its_meaning(raised, expected):
    """The mapping the engine's error handling relies on (an httpx2 exception, chained)."""
    original = raised()
    with pytest.raises(httpx2.TransportError) as info:
        try:
            raise original
        except BaseException as exc:
            _fail(exc)
    assert type(info.value) is expected
    if isinstance(original, aiohttp.ClientResponseError):
        # its request_info holds the request's headers: never chained
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert KEY not in str(info.value)
    else:
        assert info.value.__cause__ is original


@BOTH
def test_illegal_header_is_not_retried(http: str):
    """A header the plugin built with a line break: not written, not retried (as on httpx2)."""
    with FaultServer() as server:
        b = _backend(server.base_url, http=http, max_retries=3, flavour="a\r\nb")  # sent as x-flavour
        err = _failure(b)
        assert not err.retryable and err.attempts == 1
        assert server.requests == []


# -- streams, event by event --------------------------------------------------------------


@BOTH
def test_stream_events_arrive_one_by_one(http: str):
    """The second event is sent only after the caller saw the first: nothing is buffered."""
    seen_first = threading.Event()
    waited: list[bool] = []

    def run(server: SlowServer, sock: socket.socket) -> None:
        sock.sendall(_head(200, {"content-type": "text/event-stream",
                                 "transfer-encoding": "chunked"}))

        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        sock.sendall(chunk(b'data: {"choices":[{"delta":{"content":"one"}}]}\r\n\r\n'))
        waited.append(seen_first.wait(30))
        sock.sendall(chunk(b'data: {"choices":[{"delta":{"content":" two"}}]}\n\n')
                     + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    async def consume(b: ipfs_accel.Backend) -> list[str]:
        out = []
        async for chunk in b.astream_chat(MSG):
            out.append(chunk.delta)
            seen_first.set()
        return out

    with SlowServer() as server:
        server.script(run)
        assert asyncio.run(consume(_backend(server.base_url, http=http))) == ["one", " two", ""]
        assert waited == [True]


def test_stream_of_one_line_per_chunk():
    """Lines that arrive one per chunk make the events they make on httpx2."""
    lines = ['data: {"choices":[{"delta":{"content":"x"}}]}', "", "data: [DONE]", ""]
    with FaultServer() as server:
        server.script([Stream(lines)])
        out = asyncio.run(_collect(_backend(server.base_url)))
        assert out == ["x", ""]


async def _collect(b: ipfs_accel.Backend) -> list[str]:
    return [chunk.delta async for chunk in b.astream_chat(MSG)]


_TEXT = st.text(alphabet=st.sampled_from("ab\r\n\x0b\x85\u2028 é"), max_size=40)


@given(text=_TEXT, cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6))
def test_line_splitting_matches_splitlines_in_any_chunking(text: str, cuts: list[int]):
    """However the text is cut into chunks, the lines are ``str.splitlines`` of the whole
    (httpx2's promise for aiter_lines)."""
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    split = _Lines()
    out: list[str] = []
    for piece in pieces:
        if piece:
            out += split.feed(piece)
    out += split.flush("")
    assert out == text.splitlines()


# -- request bodies -------------------------------------------------------------------------


def test_streamed_body_is_sent_whole_with_its_length(tmp_path: Any):
    """A body streamed from a file of lines (batch uploads) goes out with its Content-Length,
    not chunked, byte for byte what the sync path sends."""
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b'{"a": 1}\n{"b": 2}\n\n{"c": 3}\n')
    body = LinesBody(path=lines, prefix=b"[", separator=b",", suffix=b"]")
    http = HTTP(http="aiohttp")

    async def upload(base_url: str) -> int:
        client = await http.for_loop(asyncio.get_running_loop())
        headers: dict[str, str] = {}
        content = streamed_body(body, headers, False)
        request = client.build_request("POST", base_url + "/upload", content=content,
                                       headers=headers, timeout=httpx2.Timeout(5.0))
        return (await client.send(request)).status_code

    with FaultServer() as server:
        server.script([Reply(200, json={})])
        assert asyncio.run(upload(server.base_url)) == 200
        sent = server.requests[0]
        assert sent.body == b'[{"a": 1},{"b": 2},{"c": 3}]'
        assert sent.header("content-length") == str(len(sent.body))
        assert sent.header("transfer-encoding") is None
        assert sent.header("content-type") == "application/json"


# -- one session per loop -----------------------------------------------------------------


def test_one_session_per_loop_closed_with_its_loop():
    """Two calls on one loop share its session (and connection); the session is closed when
    asyncio.run ends the loop; the next loop gets a new one."""
    http = HTTP(http="aiohttp")
    sessions: list[Any] = []

    async def twice() -> None:
        loop = asyncio.get_running_loop()
        first = await http.for_loop(loop)
        assert await http.for_loop(loop) is first
        sessions.append(first)

    asyncio.run(twice())
    asyncio.run(twice())
    assert sessions[0] is not sessions[1]
    assert all(s._session.closed for s in sessions)
    assert http._async == {} and http._closers == {}


def test_keep_alive_reuses_one_connection():
    """Calls one after another on one loop go over one kept-alive connection."""
    peers: list[Any] = []
    answer = ok()

    def run(server: SlowServer, sock: socket.socket) -> None:
        peers.append(sock.getpeername())
        answer(server, sock)

    with SlowServer() as server:
        server.script(run, run, run)
        b = _backend(server.base_url)

        async def three() -> None:
            for _ in range(3):
                await b.achat(MSG)

        asyncio.run(three())
        assert len(peers) == 3 and len(set(peers)) == 1


# -- keys ---------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    e: BaseException | None = exc
    while e is not None:
        yield e
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)


def _rendered(exc: BaseException) -> str:
    parts = ["".join(traceback.TracebackException.from_exception(
        exc, capture_locals=True).format()), repr(pickle.dumps(exc))]
    parts += [f"{e}\n{e!r}\n{vars(e)!r}" for e in _chain(exc)]
    return "\n".join(parts)


@pytest.mark.parametrize("scenario", ["refused", "401", "cut", "timeout"])
def test_key_in_no_rendering_of_an_aiohttp_failure(scenario: str):
    """The key (sent in the auth header, echoed by the server) shows in no traceback (with
    locals), repr, pickle or chained exception."""
    from ipfs_accel.testing import Hang  # noqa: PLC0415

    with FaultServer() as server, SlowServer() as slow:
        base = {"refused": f"http://127.0.0.1:{_closed_port()}", "cut": slow.base_url}.get(
            scenario, server.base_url)
        server.script([Reply(401, json={"error": {"message": f"bad key {KEY}"}},
                             headers={"x-request-id": KEY})] if scenario == "401"
                      else [Hang(30.0)])
        slow.script(_cut_body)
        b = _backend(base, api_key=KEY, max_retries=0, timeout=0.3)
        err = _failure(b)
        assert KEY not in _rendered(err)


def test_request_repr_shows_no_query_or_header():
    """An AioRequest in a frame's locals shows method and address only."""
    request = AioRequest("POST", f"http://h/v1/x?key={KEY}", content=None, params=None,
                         headers={"authorization": KEY}, timeout=aiohttp.ClientTimeout())
    assert KEY not in repr(request)
    assert repr(request) == "<AioRequest('POST', 'http://h/v1/x')>"


def _body(text: str) -> dict[str, Any]:
    return {"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

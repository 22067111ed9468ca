"""No API key in any rendering of any error of any built-in plugin, locals included.

Sentry's default capture, ``pytest -l`` and rich's ``show_locals`` print the repr of every
local variable of every frame of a traceback, chained causes included. Each plugin is driven
through every way a call fails (status errors, transport errors, a malformed body, a stream's
error event or interruption), sync and async, against a loopback server that echoes the key
back in its error bodies and request-ID headers; the key must show nowhere.

The canaries are never printed: a failure names the plugin, the scenario and the line
numbers of the formatted text that hold a canary, never the text.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import ipfs_accel
import pytest
from ipfs_accel import Registry
from ipfs_accel.testing import Drop, FaultServer, Hang, Reply, Stream, TruncatedStream
from rich.traceback import Traceback

BUILT_IN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]

KEY = "sk-canary-7Qm2xV9pL4tR8wZ1"  # the endpoint's API key
PROXY = "pt-canary-Hs3kT0yB6nQe"  # a user's own header (x-proxy-token): masked by its name
CANARIES = (KEY, PROXY)
MSG = [{"role": "user", "content": "hi"}]

UNARY = ["401", "429", "500", "refused", "drop", "read_timeout", "malformed"]
STREAM = ["401", "500", "error_event", "interrupted", "drop"]
EXPECTED: dict[str, type[ipfs_accel.CallError] | tuple[type[ipfs_accel.CallError], ...]] = {
    "401": ipfs_accel.AuthenticationError,
    "429": (ipfs_accel.RateLimitError, ipfs_accel.OverloadedError),  # TEI, TGI: queue full
    "500": ipfs_accel.APIStatusError,
    "refused": ipfs_accel.TransportError,
    "drop": ipfs_accel.TransportError,
    "read_timeout": ipfs_accel.TimeoutError,
    "malformed": ipfs_accel.ResponseError,
    "error_event": ipfs_accel.APIStatusError,
    "interrupted": ipfs_accel.StreamInterruptedError,
}


def _echo_headers(backend: ipfs_accel.Backend) -> dict[str, str]:
    """Every header the backend reads a server request ID from, echoing the key."""
    names = {"x-request-id", "request-id", *backend.info.server_request_id_headers}
    return {name: KEY for name in names}


def _script(server: FaultServer, backend: ipfs_accel.Backend, scenario: str, stream: bool) -> None:
    """Queue the server's answer for ``scenario`` (kept out of the failing frames' locals)."""
    echo = _echo_headers(backend)
    def quoted(status: int, kind: str, google: str) -> dict[str, Any]:
        return {"error": {"type": kind, "code": status, "status": google,
                          "message": f"Incorrect API key provided: {KEY}"}}

    sse = ["event: error", 'data: {"type": "error", "error": {"type": "api_error", '
           '"code": 500, "status": "INTERNAL", "message": "boom"}}', ""]
    ndjson = ['{"error": "boom"}']
    action: Any = {
        "401": Reply(401, json=quoted(401, "authentication_error", "UNAUTHENTICATED"),
                     headers=echo),
        "429": Reply(429, json=quoted(429, "rate_limit_error", "RESOURCE_EXHAUSTED"),
                     headers={**echo, "retry-after": "0"}),
        "500": Reply(500, json=quoted(500, "api_error", "INTERNAL"), headers=echo),
        "drop": Drop(),
        "read_timeout": Hang(30.0),  # the server closes it when the test ends
        "malformed": Reply(200, body=b"{not json", headers=echo),
        "error_event": Stream(ndjson if backend.name == "ollama" else sse, headers=echo),
        "interrupted": TruncatedStream([": keep-alive", ""], headers=echo),
    }[scenario]
    server.script([action])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fail(run: Callable[[], object]) -> ipfs_accel.CallError:
    try:
        run()
    except ipfs_accel.CallError as exc:
        return exc
    raise AssertionError("the call did not fail")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions a traceback shows: each one's cause, or its context unless suppressed."""
    e: BaseException | None = exc
    while e is not None:
        yield e
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)


def _renderings(exc: BaseException) -> dict[str, str]:
    """Every way a key could be shown: tracebacks with locals, str/repr/pickle, requests."""
    out = {
        "traceback with locals": "".join(
            traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        ),
        "pickle": repr(pickle.dumps(exc)),
    }
    # rich's show_locals pretty-prints each local (through __rich_repr__ where there is one)
    # into the Trace it renders; its repr holds every such text, without the slow rendering.
    trace = Traceback.extract(type(exc), exc, exc.__traceback__, show_locals=True)
    out["rich traceback with locals"] = "\n".join(repr(trace).split(", "))
    for i, e in enumerate(_chain(exc)):
        out[f"chain[{i}] str/repr/dict"] = f"{e}\n{e!r}\n{vars(e)!r}"
        request = getattr(e, "_request", None)  # httpx2's, without its RuntimeError if unset
        if request is not None:
            out[f"chain[{i}].request"] = f"{request.url}\n{request.headers!r}\n{request!r}"
    return out


def _assert_no_canary(exc: BaseException, where: str) -> None:
    for what, text in _renderings(exc).items():
        lines = [n for n, line in enumerate(text.splitlines(), 1) if any(c in line for c in CANARIES)]
        assert not lines, f"{where}: a canary in the {what}, at lines {lines}"


def _backend(name: str, server: FaultServer, **extra: Any) -> tuple[ipfs_accel.Backend, str]:
    registry = Registry(environ={})
    case = registry.hooks(name).conformance_case()
    assert case is not None
    backend = registry.get(name)
    eid = backend.create_endpoint(
        base_url=server.base_url, api_key=KEY, headers={"x-proxy-token": PROXY},
        max_retries=0, **{"model": "m", **case.settings, **extra},
    )
    return backend, eid


def _unary(name: str, backend: ipfs_accel.Backend, eid: str, use_async: bool) -> Callable[[], object]:
    """The plugin's usual call (the conformance case's), or its async twin."""
    if not use_async:
        case = Registry(environ={}).hooks(name).conformance_case()
        assert case is not None
        return lambda: case.call(backend, eid, "req-keys")
    if name == "hf_tei":  # an embeddings server
        return lambda: asyncio.run(backend.aembed(["hi"], endpoint_id=eid, request_id="req-keys"))
    return lambda: asyncio.run(backend.achat(MSG, endpoint_id=eid, request_id="req-keys"))


def _stream(backend: ipfs_accel.Backend, eid: str, use_async: bool) -> Callable[[], object]:
    if not use_async:
        return lambda: list(backend.stream_chat(MSG, endpoint_id=eid, request_id="req-keys"))

    async def consume() -> list[Any]:
        return [c async for c in backend.astream_chat(MSG, endpoint_id=eid, request_id="req-keys")]

    return lambda: asyncio.run(consume())


def _unary_params() -> list[Any]:
    return [pytest.param(name, scenario) for name in BUILT_IN for scenario in UNARY]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("name", "scenario"), _unary_params())
def test_no_key_in_any_unary_error_rendering(name: str, scenario: str, use_async: bool) -> None:
    """Status, transport and body errors of a unary call: no key in any rendering."""
    with FaultServer() as server:
        backend, eid = _backend(name, server, **({"timeout": 0.2} if scenario == "read_timeout" else {}))
        if scenario == "refused":
            backend.update_endpoint(eid, base_url=f"http://127.0.0.1:{_closed_port()}")
        else:
            _script(server, backend, scenario, stream=False)
        exc = _fail(_unary(name, backend, eid, use_async))
        backend.close()
    where = f"{name}/{scenario}"
    expected = isinstance(exc, EXPECTED[scenario])  # no repr of exc in a failure message
    assert expected, f"{where}: {type(exc).__name__}"
    _assert_no_canary(exc, where)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("scenario", STREAM)
@pytest.mark.parametrize("name", BUILT_IN)
def test_no_key_in_any_stream_error_rendering(name: str, scenario: str, use_async: bool) -> None:
    """Status errors, error events and interruptions of a stream: no key in any rendering."""
    if "stream_chat" not in Registry(environ={}).get(name).info.operations:
        pytest.skip(f"{name} does not stream")
    with FaultServer() as server:
        backend, eid = _backend(name, server)
        _script(server, backend, scenario, stream=True)
        exc = _fail(_stream(backend, eid, use_async))
        backend.close()
    where = f"{name}/stream {scenario}"
    expected = isinstance(exc, EXPECTED[scenario])
    assert expected, f"{where}: {type(exc).__name__}"
    _assert_no_canary(exc, where)

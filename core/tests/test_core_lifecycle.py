"""Slots, loops and clients: every wait gives its slot back, whatever ends it; event loops
and their HTTP clients come and go without leaking; closing one side leaves the other be.
Also the library's manners: redirects are refused clearly, and nothing is printed."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import weakref
from typing import Any

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from _slow_server import SlowServer, gated, ok
from ipfs_accel import Registry

MSG = [{"role": "user", "content": "hi"}]
BODY = {"choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def gated_backend(gate: threading.Event, entered: threading.Semaphore, **defaults: Any):
    """An echo backend whose server answers each request once ``gate`` is set."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        entered.release()
        assert gate.wait(30), "the test never opened the gate"
        return httpx2.Response(200, json=BODY)

    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        transport=httpx2.MockTransport(handler))
    return registry.get("echo", **defaults)


def conserved(stats: ipfs_accel.Stats) -> bool:
    return stats.total_requests == (stats.successful_requests + stats.failed_requests
                                    + stats.in_flight + stats.queued)


# -- slots ------------------------------------------------------------------------------


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="SIGINT is delivered to the main thread")
def test_ctrl_c_while_queued_gives_the_place_back():
    """KeyboardInterrupt while a sync call waits in the queue frees its place: the slot
    later goes to a live call, and the counts add up."""
    # A process started in the background by a non-interactive shell inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: make Ctrl-C what it is in a
    # terminal for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_while_queued()
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_while_queued() -> None:
    gate, entered = threading.Event(), threading.Semaphore(0)
    b = gated_backend(gate, entered, max_concurrent_requests=1)
    holder = threading.Thread(target=b.chat, args=(MSG,))
    holder.start()
    assert entered.acquire(timeout=30)

    def interrupt_once_queued() -> None:
        while b.get_stats().queued != 1:
            threading.Event().wait(0.001)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_queued).start()
    with pytest.raises(KeyboardInterrupt):
        b.chat(MSG)
    gate.set()
    holder.join(30)
    assert b.chat(MSG, request_id="after").text == "hello"  # before the fix: waits for ever
    stats = b.get_stats()
    assert (stats.queued, stats.in_flight, stats.successful_requests) == (0, 0, 2)
    assert (stats.failed_requests, stats.cancelled) == (1, 1) and conserved(stats)


def test_closed_loop_waiter_does_not_keep_the_slot():
    """A task waiting in the queue on a loop that is then closed (without cancelling it)
    never takes the slot: it goes to the next live call, and the dead call counts as
    cancelled."""
    gate, entered = threading.Event(), threading.Semaphore(0)
    b = gated_backend(gate, entered, max_concurrent_requests=1)
    holder = threading.Thread(target=b.chat, args=(MSG,))
    holder.start()
    assert entered.acquire(timeout=30)
    loop = asyncio.new_event_loop()
    task = loop.create_task(b.achat(MSG))
    while b.get_stats().queued != 1:
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()  # the waiting task is never resumed nor cancelled
    gate.set()
    holder.join(30)
    assert b.get_endpoint().settings.max_concurrent_requests == 1
    assert b.chat(MSG, request_id="after").text == "hello"
    stats = b.get_stats()
    assert (stats.queued, stats.in_flight, stats.successful_requests) == (0, 0, 2)
    assert (stats.failed_requests, stats.cancelled) == (1, 1) and conserved(stats)
    task._log_destroy_pending = False  # asyncio's complaint is what the test sets up
    del task
    gc.collect()  # the dead call's coroutine is closed now: it must not count itself again
    assert b.get_stats() == stats


def test_sync_deadline_while_queued_is_our_timeout_error():
    """A sync call whose deadline runs out in the queue raises ipfs_accel.TimeoutError
    naming the backend, endpoint and request ID."""
    gate, entered = threading.Event(), threading.Semaphore(0)
    b = gated_backend(gate, entered, max_concurrent_requests=1)
    holder = threading.Thread(target=b.chat, args=(MSG,))
    holder.start()
    assert entered.acquire(timeout=30)
    b.update_endpoint("default", deadline=0.1)  # the holder started without one
    try:
        with pytest.raises(ipfs_accel.TimeoutError, match="waiting in the queue") as info:
            b.chat(MSG, request_id="q-1")
    finally:
        gate.set()
        holder.join(30)
    err = info.value
    assert (err.backend, err.endpoint_id, err.request_id) == ("echo", "default", "q-1")
    assert b.get_stats().queued == 0


@pytest.mark.asyncio
async def test_cancelled_and_abandoned_calls_are_counted():
    """A cancelled task and a stream closed after its first chunk count as failed and as
    cancelled; the abandoned stream's slot is free again and its usage so far is kept."""
    release, entered = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx2.Request) -> httpx2.Response:
        entered.set()
        if b"stream" in request.content:
            body = (b'data: {"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":4,'
                    b'"completion_tokens":1}}\n\n' * 3 + b"data: [DONE]\n\n")
            return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})
        await release.wait()
        return httpx2.Response(200, json=BODY)

    registry = Registry(plugins=[_echo_plugin], entry_points=False,
                        async_transport=httpx2.MockTransport(handler))
    b = registry.get("echo", max_concurrent_requests=1)
    task = asyncio.create_task(b.achat(MSG))
    await asyncio.wait_for(entered.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stream = b.astream_chat(MSG)
    assert (await anext(stream)).delta == "a"
    await stream.aclose()
    stats = b.get_stats()
    assert (stats.failed_requests, stats.cancelled, stats.in_flight) == (2, 2, 0)
    assert stats.input_tokens == 4 and conserved(stats)
    release.set()
    assert (await b.achat(MSG)).text == "hello"
    await b.aclose()


# -- loops and clients -------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_asyncio_run_per_call_leaks_no_loop_client_or_socket():
    """`asyncio.run(backend.achat(...))` again and again: every loop, its client and its
    socket are let go, whether the loop ends under asyncio.run or is closed by hand."""
    with SlowServer() as server:
        b = Registry(plugins=[_echo_plugin], entry_points=False).get(
            "echo", base_url=server.base_url)
        loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

        async def one() -> str:
            loops.append(weakref.ref(asyncio.get_running_loop()))
            return (await b.achat(MSG)).text

        assert asyncio.run(one()) == "slowly"
        gc.collect()
        before = _open_fds()
        for _ in range(20):
            assert asyncio.run(one()) == "slowly"
        by_hand = asyncio.new_event_loop()
        assert by_hand.run_until_complete(one()) == "slowly"
        by_hand.close()  # no shutdown of its async generators: the next loop prunes it
        del by_hand
        assert asyncio.run(one()) == "slowly"
        gc.collect()
        assert [ref for ref in loops if ref() is not None] == []
        assert _open_fds() <= before + 2


def test_aclose_leaves_a_threads_sync_call_alone():
    """`await backend.aclose()` on one loop does not close the sync connections a thread is
    using: its call ends on its first attempt."""
    gate = threading.Event()
    with SlowServer() as server:
        server.script(gated(gate))
        b = Registry(plugins=[_echo_plugin], entry_points=False).get(
            "echo", base_url=server.base_url, initial_retry_delay=0.01)
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(b.chat(MSG)))
        thread.start()
        server.wait_for(1)

        async def use_then_close() -> None:
            await b.achat(MSG)
            await b.aclose()

        asyncio.run(use_then_close())
        gate.set()
        thread.join(30)
        assert result and result[0].text == "slowly"
        assert b.get_stats().retries == 0 and server.requests == 2
        b.close()


# -- redirects and manners ------------------------------------------------------------------


@pytest.mark.parametrize("op", ["chat", "stream_chat"])
def test_redirect_is_refused_clearly_and_never_followed(op):
    """A 307 is a ResponseError that says where the server redirected, is not retried, and
    no request (so no key) goes to the new address."""
    with SlowServer() as elsewhere, SlowServer() as server:
        target = elsewhere.base_url + "/v2/chat"
        server.script(ok({}, status=307, headers={"location": target}))
        b = Registry(plugins=[_echo_plugin], entry_points=False).get(
            "echo", base_url=server.base_url, api_key="sk-redirect-test-key-123456")
        call = (lambda: b.chat(MSG)) if op == "chat" else (lambda: list(b.stream_chat(MSG)))
        with pytest.raises(ipfs_accel.ResponseError, match="redirected") as info:
            call()
        assert target in str(info.value) and info.value.status == 307
        assert info.value.attempts == 1 and server.requests == 1
        assert elsewhere.requests == 0


def test_library_prints_nothing_until_logging_is_configured(tmp_path):
    """With no logging configured a retried call prints nothing; once the application
    configures logging, each retry is one `ipfs_accel` record naming the request."""
    script = textwrap.dedent("""
        import logging, sys
        import httpx2, _echo_plugin
        from ipfs_accel import Registry
        answers = iter([httpx2.Response(503), httpx2.Response(200, json={
            "choices": [{"message": {"content": "ok"}}]})])
        b = Registry(plugins=[_echo_plugin], entry_points=False,
                     transport=httpx2.MockTransport(lambda r: next(answers))).get(
            "echo", initial_retry_delay=0.001, api_key="sk-logging-canary-0123456789")
        if sys.argv[1] == "configured":
            logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
        print(b.chat([{"role": "user", "content": "hi"}], request_id="log-1").text)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(_echo_plugin.__file__), os.environ.get("PYTHONPATH", "")])}
    quiet = subprocess.run([sys.executable, "-c", script, "quiet"], capture_output=True,
                           text=True, env=env, timeout=60, check=True)
    assert quiet.stdout == "ok\n" and quiet.stderr == ""
    loud = subprocess.run([sys.executable, "-c", script, "configured"], capture_output=True,
                          text=True, env=env, timeout=60, check=True)
    ours = [line for line in loud.stderr.splitlines() if line.startswith("ipfs_accel ")]
    assert len(ours) == 1 and "log-1" in ours[0] and "OverloadedError" in ours[0]
    assert "sk-logging-canary" not in loud.stderr

"""The observer interface on its own (no OpenTelemetry): the events of a call in order,
exactly one end whatever happens, a pool's call as one observed call, and an observer that
raises never failing the call."""

from __future__ import annotations

import logging
import threading
from typing import Any

import _echo_plugin
import httpx2
import pytest
from ipfs_accel import (
    BadRequestError,
    CallStart,
    Observation,
    Observer,
    OverloadedError,
    QueueFullError,
    Registry,
)

OK = {"model": "echo-1", "choices": [{"message": {"role": "assistant", "content": "hi"},
                                      "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
MSG = [{"role": "user", "content": "hi"}]


class Story(Observation):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def queued(self) -> None:
        self.log.append("queued")

    def dequeued(self, waited: float) -> None:
        self.log.append("dequeued")

    def attempt(self, endpoint_id: str, server: Any) -> dict[str, str] | None:
        self.log.append(("attempt", endpoint_id, server))
        return {"x-observed": "1"}

    def attempt_end(self, error: BaseException | None, status: int | None = None) -> None:
        self.log.append(("attempt_end", type(error).__name__ if error else None, status))

    def wait(self, seconds: float, reason: str) -> None:
        self.log.append(("wait", reason))

    def end(self, result: Any, error: BaseException | None) -> None:
        self.log.append(("end", type(result).__name__ if result is not None else None,
                         type(error).__name__ if error else None))


class Teller(Observer):
    def __init__(self) -> None:
        self.log: list[Any] = []
        self.started: list[CallStart] = []

    def start(self, info: CallStart) -> Observation | None:
        self.started.append(info)
        return Story(self.log)


def _backend(handler: Any, observer: Observer, **settings: Any) -> Any:
    registry = Registry(plugins=[_echo_plugin], entry_points=False, telemetry=False,
                        observers=[observer], transport=httpx2.MockTransport(handler))
    backend = registry.get("echo")
    backend.create_endpoint("e", base_url="http://echo.test:81", api_key="k",
                            initial_retry_delay=0.001, retry_jitter=0, **settings)
    return backend


def test_a_retried_call_tells_its_story_in_order() -> None:
    answers = [httpx2.Response(500, json={"error": {"message": "x"}}), httpx2.Response(200, json=OK)]
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return answers.pop(0)

    teller = Teller()
    assert _backend(handler, teller, max_retries=1).chat(MSG).text == "hi"
    assert teller.log == [
        ("attempt", "e", ("echo.test", 81)), ("attempt_end", "ServerError", 500),
        ("wait", "backoff"),
        ("attempt", "e", ("echo.test", 81)), ("attempt_end", None, None),
        ("end", "ChatResult", None)]
    assert all(r.headers["x-observed"] == "1" for r in seen)  # each attempt's headers
    [info] = teller.started
    assert (info.backend, info.provider, info.endpoint_id, info.stream) == ("echo", "echo", "e",
                                                                             False)


def test_a_call_refused_with_the_queue_full_ends_once() -> None:
    teller = Teller()
    backend = _backend(lambda r: httpx2.Response(200, json=OK), teller,
                       max_concurrent_requests=1, queue_size=0)
    endpoint = backend._endpoint("e")
    held = endpoint.admit()  # the one slot, taken
    assert held is None
    with pytest.raises(QueueFullError):
        backend.chat(MSG)
    assert teller.log == [("end", None, "QueueFullError")]


def test_a_failed_call_ends_once_with_its_error() -> None:
    teller = Teller()
    backend = _backend(lambda r: httpx2.Response(503, json={"error": {"message": "x"}}), teller,
                       max_retries=0)
    with pytest.raises(OverloadedError):
        backend.chat(MSG)
    assert [e for e in teller.log if e[0] == "end"] == [("end", None, "OverloadedError")]


def test_an_observer_that_raises_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Observation):
        def attempt(self, endpoint_id: str, server: Any) -> dict[str, str] | None:
            raise RuntimeError("observer bug")

    class Breaks(Observer):
        def start(self, info: CallStart) -> Observation | None:
            return Broken()

    teller = Teller()
    registry = Registry(plugins=[_echo_plugin], entry_points=False, telemetry=False,
                        observers=[Breaks(), teller],
                        transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=OK)))
    backend = registry.get("echo")
    backend.create_endpoint("e", api_key="k")
    with caplog.at_level(logging.WARNING, logger="ipfs_accel"):
        for _ in range(2):
            assert backend.chat(MSG).text == "hi"
    assert [e[0] for e in teller.log].count("end") == 2  # the other observer saw it all
    assert sum("failed in attempt" in r.getMessage() for r in caplog.records) == 1


class _Tally(Observation):
    def __init__(self, counts: dict[str, float]) -> None:
        self.counts = counts
        self.summary: Any = None

    def retrying(self, seconds: float, reason: str) -> None:
        self.counts["retries"] += 1

    def wait(self, seconds: float, reason: str) -> None:
        if reason in ("backoff", "retry-after"):
            self.counts["retry_wait"] += seconds

    def streamed(self, summary: Any) -> None:
        self.summary = summary

    def end(self, result: Any, error: BaseException | None) -> None:
        c = self.counts
        c["total"] += 1
        if error is None:
            c["ok"] += 1
        else:
            c["failed"] += 1
            c["cancelled"] += not isinstance(error, Exception)
            c["rejected"] += isinstance(error, QueueFullError)
        usage = getattr(result if result is not None else self.summary, "usage", None)
        if usage is not None:
            c["input"] += usage.input_tokens
            c["output"] += usage.output_tokens


class Recount(Observer):
    """Counts what it is told, the way the endpoint's stats do."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = dict.fromkeys(
            ("total", "ok", "failed", "cancelled", "rejected", "retries", "retry_wait",
             "input", "output"), 0)

    def start(self, info: CallStart) -> Observation | None:
        return _Tally(self.counts)


SSE = (b'data: {"choices": [{"delta": {"content": "h"}, "finish_reason": null}]}\n\n'
       b'data: {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}], '
       b'"usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}\n\n'
       b"data: [DONE]\n\n")


def test_an_observer_rebuilds_the_stats_from_the_events_they_are_counted_from() -> None:
    """The endpoint's stats are counted from the events every observer hears: an observer
    counting them its own way arrives at get_stats() exactly (calls, outcomes, cancelled,
    rejected, retries and their waits, tokens of unary and streamed answers)."""
    answers = {"ok": [httpx2.Response(200, json=OK)],
               "retried": [httpx2.Response(500, json={"error": {"message": "x"}}),
                           httpx2.Response(429, headers={"retry-after": "0"},
                                           json={"error": {"message": "x"}}),
                           httpx2.Response(200, json=OK)],
               "bad": [httpx2.Response(400, json={"error": {"message": "no"}})]}
    entered, release = threading.Event(), threading.Event()

    def handler(request: httpx2.Request) -> httpx2.Response:
        text = request.content.decode()
        if '"stream":true' in text.replace(" ", ""):
            return httpx2.Response(200, content=SSE,
                                   headers={"content-type": "text/event-stream"})
        if "hold" in text:
            entered.set()
            release.wait(30)
            return httpx2.Response(200, json=OK)
        for name, replies in answers.items():
            if name in text:
                return replies.pop(0)
        raise AssertionError(text)

    recount = Recount()
    backend = _backend(handler, recount, max_retries=3, max_concurrent_requests=1,
                       queue_size=0)

    def say(word: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": word}]

    assert backend.chat(say("ok")).text == "hi"
    assert backend.chat(say("retried")).text == "hi"
    with pytest.raises(BadRequestError):
        backend.chat(say("bad"))
    assert "".join(c.delta for c in backend.stream_chat(say("s"))) == "hi"
    stream = backend.stream_chat(say("s"))
    assert next(iter(stream)).delta == "h"
    stream.close()  # closed early: cancelled
    held = threading.Thread(target=backend.chat, args=(say("hold"),))
    held.start()
    assert entered.wait(30)
    with pytest.raises(QueueFullError):  # the one slot is held, no queue
        backend.chat(say("ok"))
    release.set()
    held.join(30)
    stats = backend.get_stats()
    c = recount.counts
    assert (stats.total_requests, stats.successful_requests, stats.failed_requests,
            stats.cancelled, stats.rejected, stats.retries) == (
        c["total"], c["ok"], c["failed"], c["cancelled"], c["rejected"], c["retries"])
    assert (stats.total_requests, stats.retries, stats.cancelled, stats.rejected) == (7, 2, 1, 1)
    assert stats.retry_wait_seconds == c["retry_wait"]
    assert (stats.input_tokens, stats.output_tokens) == (c["input"], c["output"]) == (
        3 * 3 + 4, 3 * 2 + 2)

"""Downloading a batch's output: a JSONL body read line by line, never whole in memory.

The download is a call of its endpoint like any other: it waits for a slot in the queue,
sends the plugin's exchange (``batch_exchange(BatchFetch)``) with the endpoint's key, is
bounded by the attempt's timeout on every read, and is counted in the endpoint's stats and
told to its observers. A failure (an error answer the plugin's ``classify_error`` calls
retryable, a dropped connection, a body cut short) is retried with the endpoint's backoff
(and Retry-After), up to ``max_retries``; the retry reads the output again from its start
and skips the lines already handed on, so each line is handed on exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx2

from ._backoff import plan_wait
from ._batch_types import BATCH_OPERATION, BatchFetch
from ._errors import CallError
from ._stream import begin, queue_sync
from ._types import Call
from ._wire import decode_json

if TYPE_CHECKING:
    from ._call import Engine
    from ._endpoint import Endpoint

__all__ = ["fetch_lines", "step_call"]


def step_call(step: Any) -> Call:
    """The call that carries a batch step through the engine."""
    from ._backend import new_request_id  # noqa: PLC0415 - the backend module imports this one

    return Call(operation=BATCH_OPERATION, params={"step": step}, request_id=new_request_id())


def fetch_lines(engine: Engine, endpoint: Endpoint, step: BatchFetch) -> Iterator[Any]:
    """The decoded lines of one output of a batch, in order, each exactly once."""
    handed = 0  # lines handed on so far, across attempts
    attempt = 0
    while True:
        attempt += 1
        seen = 0
        try:
            for data in _download(engine, endpoint, step):
                seen += 1
                if seen > handed:
                    handed = seen
                    yield data
        except CallError as exc:
            settings = endpoint.config.settings
            wait = plan_wait(
                attempt, initial=settings.initial_retry_delay, factor=settings.backoff_factor,
                max_delay=settings.max_retry_delay, jitter=settings.retry_jitter,
                retry_after=exc.retry_after if settings.honor_retry_after else None,
                remaining=None, max_retry_after=settings.max_retry_after,
            ) if exc.retryable and attempt <= settings.max_retries else None
            if wait is None:
                exc.attempts = attempt
                raise
            time.sleep(wait)
            continue
        return


def _download(engine: Engine, endpoint: Endpoint, step: BatchFetch) -> Iterator[Any]:
    x = engine.x
    call = step_call(step)
    config, start, deadline_at, waiter, obs = begin(x, endpoint, call, None, None, own=True)
    holding = waiter is None
    error: BaseException | None = None
    try:
        if waiter is not None:
            queue_sync(x, endpoint, config, call, waiter, deadline_at=deadline_at, obs=obs,
                       start=start)
            holding = True
        exchange = x.hooks.send(call, config)
        client = x.http.sync
        end = x.attempt_end(config, deadline_at)
        obs.attempt(config.endpoint_id, None)
        request = x.request(client, config, call, exchange, end)
        resp = x.open_sync(client, config, call, request, end)
        try:
            if resp.status_code >= 300:
                try:
                    resp.read()
                except httpx2.HTTPError as exc:
                    raise x.transport_error(config, call, exc) from exc
                raise x.status_error(config, call, resp)
            try:
                for line in resp.iter_lines():
                    if line.strip():
                        yield decode_json(line.encode())
            except httpx2.HTTPError as exc:  # cut short, or a read timed out
                raise x.transport_error(config, call, exc) from exc
        finally:
            resp.close()
        obs.attempt_end(None, resp.status_code)
    except BaseException as exc:
        error = exc
        if isinstance(exc, CallError):
            obs.attempt_end(exc, exc.status)
        raise
    finally:
        obs.end(None if error is not None else _Fetched(), error)
        endpoint.release(holding=holding, waiter=waiter)


class _Fetched:
    """A finished download, as the stats' observation counts it (no usage: the lines'
    tokens are counted as the results are read)."""

    usage = None

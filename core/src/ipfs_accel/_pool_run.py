"""Running a pool call: one attempt at a time on the member the pool picks, sync or async.

The pool (``_pool``) decides; these runners wait and run. Each attempt is a one-attempt
call of the member's endpoint (its queue, pacing, timeout and stats), bounded by the pool
call's deadline. A stream moves to another member only while its first chunk has not
reached the caller; after that its failures are the caller's, as on one endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ._errors import CallError, ConfigurationError
from ._exchange import R
from ._observe import Observation, end_of, observe_call

if TYPE_CHECKING:
    from ._endpoint import Endpoint
    from ._pool import Pool, Run
    from ._pool_pick import Member
    from ._types import Call, StreamChunk

__all__ = ["Request", "astream", "call_async", "call_sync", "stream"]

_monotonic = time.monotonic


class Request:
    """What the caller asked, to be prepared for whichever member runs it."""

    __slots__ = ("inputs", "model", "needs", "operation", "params", "request_id")

    def __init__(
        self, operation: str, request_id: str, model: str | None, params: dict[str, Any],
        inputs: dict[str, Any], *, needs: frozenset[str],
    ) -> None:
        self.operation = operation
        self.needs = needs  # tools, response formats, images: only members that take them
        self.request_id = request_id
        self.model = model
        self.params = params
        self.inputs = inputs  # messages= / prompt= / inputs=

    def on(self, member: Member) -> tuple[Endpoint, Call]:
        """The call as ``member``'s backend makes it (its endpoint's model unless named).
        The shape of its tools, response format and images was checked once, when the pool
        took the call: the member checks only that it takes what the call needs."""
        return member.backend._prepare(
            self.operation, member.endpoint_id, self.request_id, self.model,
            dict(self.params), needs=self.needs, **self.inputs)


def _next_sync(pool: Pool, run: Run, req: Request, obs: Observation | None,
               ) -> tuple[Member, Endpoint, Call]:
    """The member the next attempt goes to, waiting for one when none is ready, and the
    call as it makes it; the attempt is counted."""
    while True:
        new = run.waiting_since is None  # a wait begins (not a look again during one)
        got = pool.pick(run)
        if isinstance(got, float):
            time.sleep(got)
            pool.counter.waited(got, new=new)
            if obs is not None:
                obs.wait(got, "no member ready")
            continue
        prepared = _prepared(req, got, run)
        if prepared is not None:
            pool.attempting(run, got)
            return got, *prepared


async def _next_async(pool: Pool, run: Run, req: Request, obs: Observation | None,
                      ) -> tuple[Member, Endpoint, Call]:
    """:func:`_next_sync` on the event loop."""
    while True:
        new = run.waiting_since is None
        got = pool.pick(run)
        if isinstance(got, float):
            await asyncio.sleep(got)
            pool.counter.waited(got, new=new)
            if obs is not None:
                obs.wait(got, "no member ready")
            continue
        prepared = _prepared(req, got, run)
        if prepared is not None:
            pool.attempting(run, got)
            return got, *prepared


def call_sync(pool: Pool, req: Request, expect: type[R]) -> R:
    """Run a unary pool call on the calling thread."""
    run = pool.begin(req.operation, req.request_id, req.needs)
    ok = cancelled = False
    obs: Observation | None = None
    try:
        while True:
            member, endpoint, call = _next_sync(pool, run, req, obs)
            obs = obs or _observe(member, endpoint, call, stream=False)
            started = _monotonic()
            try:
                result = member.backend._engine.call(
                    endpoint, call, expect, once=True, deadline_at=run.deadline_at,
                    observation=obs)
            except CallError as exc:
                _sleep(pool, _next_wait(pool, run, member, exc), obs)
                continue
            finally:
                _unprobe(run, endpoint)
                pool.counter.attempt_ended(run.tally)
            member.measured(_monotonic() - started)
            ok = True
            end_of(obs, result, None)
            return result
    except BaseException as exc:
        cancelled = _failed(run, exc)
        end_of(obs, None, exc)
        raise
    finally:
        pool.counter.ended(run.tally, ok=ok, cancelled=cancelled)


async def call_async(pool: Pool, req: Request, expect: type[R]) -> R:
    """Run a unary pool call on the running event loop."""
    run = pool.begin(req.operation, req.request_id, req.needs)
    ok = cancelled = False
    obs: Observation | None = None
    try:
        while True:
            member, endpoint, call = await _next_async(pool, run, req, obs)
            obs = obs or _observe(member, endpoint, call, stream=False)
            started = _monotonic()
            try:
                result = await member.backend._engine.acall(
                    endpoint, call, expect, once=True, deadline_at=run.deadline_at,
                    observation=obs)
            except CallError as exc:
                await _asleep(pool, _next_wait(pool, run, member, exc), obs)
                continue
            finally:
                _unprobe(run, endpoint)
                pool.counter.attempt_ended(run.tally)
            member.measured(_monotonic() - started)
            ok = True
            end_of(obs, result, None)
            return result
    except BaseException as exc:
        cancelled = _failed(run, exc)
        end_of(obs, None, exc)
        raise
    finally:
        pool.counter.ended(run.tally, ok=ok, cancelled=cancelled)


def _next_wait(pool: Pool, run: Run, member: Member, exc: CallError) -> float:
    """The wait before the next attempt after ``exc`` on ``member``; raises ``exc`` when
    the call ends with it."""
    wait = pool.after_failure(run, member, exc)
    if wait is None:
        raise exc
    return wait


def _sleep(pool: Pool, wait: float, obs: Observation | None) -> None:
    if wait > 0:
        time.sleep(wait)
        pool.counter.backed_off(wait)
        if obs is not None:
            obs.wait(wait, "backoff")  # before the next member is tried


async def _asleep(pool: Pool, wait: float, obs: Observation | None) -> None:
    if wait > 0:
        await asyncio.sleep(wait)
        pool.counter.backed_off(wait)
        if obs is not None:
            obs.wait(wait, "backoff")


def _observe(member: Member, endpoint: Endpoint, call: Call, *, stream: bool,
             ) -> Observation | None:
    """The observation of a pool call, started as its first attempt is about to go."""
    x = member.backend._engine.x
    return observe_call(x, endpoint, endpoint.config, call, stream=stream, pooled=True)


def _failed(run: Run, exc: BaseException) -> bool:
    """``exc`` ends the pool call ``run``: an error says how many attempts the whole call
    made (on every member), not the one attempt of the member that raised it. Returns
    whether the call was cancelled rather than failed."""
    if isinstance(exc, CallError):
        exc.attempts = run.attempts
    return not isinstance(exc, Exception)


def _prepared(req: Request, member: Member, run: Run) -> tuple[Endpoint, Call] | None:
    """``req`` for ``member``; ``None`` when the member's endpoint was removed from its
    backend since it was picked (the call picks again: the pool skips it now). A probe
    taken for it is given back if preparing fails."""
    try:
        return req.on(member)
    except ConfigurationError:
        if member.endpoint_id not in member.backend.endpoints():
            run.probe = False
            return None
        _unprobe(run, member.endpoint)
        raise
    except BaseException:
        _unprobe(run, member.endpoint)
        raise


def _unprobe(run: Run, endpoint: Endpoint) -> None:
    """The attempt ``run`` made (or was to make) as its endpoint's probe is over: if it
    reached no outcome (cancelled, refused before it was sent, never prepared), the
    endpoint may be probed again."""
    if run.probe:
        run.probe = False
        endpoint.released()


def stream(pool: Pool, req: Request) -> Iterator[StreamChunk]:
    """Run a streamed pool call on the calling thread."""
    run = pool.begin(req.operation, req.request_id, req.needs)
    ok = cancelled = False
    obs: Observation | None = None
    try:
        while True:
            member, endpoint, call = _next_sync(pool, run, req, obs)
            obs = obs or _observe(member, endpoint, call, stream=True)
            started = _monotonic()
            chunks = member.backend._engine.stream(
                endpoint, call, once=True, deadline_at=run.deadline_at, observation=obs)
            failure: CallError | None = None
            try:
                try:
                    first = next(chunks)
                except StopIteration:
                    ok = True
                    end_of(obs, None, None)
                    return
                except CallError as exc:
                    chunks.close()
                    failure = exc
                finally:
                    _unprobe(run, endpoint)
                if failure is None:
                    member.measured(_monotonic() - started)
                    try:
                        yield first
                        yield from chunks
                    finally:
                        chunks.close()  # at once, not when collected: the member's slot
                    ok = True
                    end_of(obs, None, None)
                    return
            finally:
                pool.counter.attempt_ended(run.tally)
            _sleep(pool, _next_wait(pool, run, member, failure), obs)
    except BaseException as exc:
        cancelled = _failed(run, exc)  # GeneratorExit: closed before its end
        end_of(obs, None, exc)
        raise
    finally:
        pool.counter.ended(run.tally, ok=ok, cancelled=cancelled)


async def astream(pool: Pool, req: Request) -> AsyncIterator[StreamChunk]:
    """Run a streamed pool call on the running event loop."""
    run = pool.begin(req.operation, req.request_id, req.needs)
    ok = cancelled = False
    obs: Observation | None = None
    try:
        while True:
            member, endpoint, call = await _next_async(pool, run, req, obs)
            obs = obs or _observe(member, endpoint, call, stream=True)
            started = _monotonic()
            chunks = member.backend._engine.astream(
                endpoint, call, once=True, deadline_at=run.deadline_at, observation=obs)
            failure: CallError | None = None
            try:
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    ok = True
                    end_of(obs, None, None)
                    return
                except CallError as exc:
                    await chunks.aclose()
                    failure = exc
                finally:
                    _unprobe(run, endpoint)
                if failure is None:
                    member.measured(_monotonic() - started)
                    try:
                        yield first
                        async for chunk in chunks:
                            yield chunk
                    finally:
                        await chunks.aclose()
                    ok = True
                    end_of(obs, None, None)
                    return
            finally:
                pool.counter.attempt_ended(run.tally)
            await _asleep(pool, _next_wait(pool, run, member, failure), obs)
    except BaseException as exc:
        cancelled = _failed(run, exc)
        end_of(obs, None, exc)
        raise
    finally:
        pool.counter.ended(run.tally, ok=ok, cancelled=cancelled)

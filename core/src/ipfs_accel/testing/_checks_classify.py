"""The classify_error check: the API's own errors read rightly, and no failure makes it raise."""

from __future__ import annotations

import httpx2

from .._errors import ErrorKind
from .._types import Failure
from .._wire import decode_json
from ._actions import Reply
from ._run import CheckFailed, CheckRun, expect, with_retry_after
from ._totality import failures, invalid

__all__ = ["check_classify"]


def _own_failure(reply: Reply, operation: str) -> Failure:
    raw = reply.body or (httpx2.Response(200, json=reply.json).content
                         if reply.json is not None else b"")
    return Failure(operation=operation, status=reply.status, headers=dict(reply.headers),
                   content=raw, data=decode_json(raw))


def check_classify(run: CheckRun) -> str:
    """classify_error answers the API's own errors rightly, and is total: odd statuses,
    headers, bodies (truncated JSON) and exceptions never make it raise."""
    case = run.case
    hooks = run.registry.hooks(case.backend)
    caller = hooks.pm.hook.classify_error
    expect(bool(caller.get_hookimpls()),
            "no classify_error hook: the API's errors are left to the core's default "
            "classification, so there is nothing of the plugin's to check")
    operations = sorted(hooks.info.operations) or ["chat"]
    op = operations[0]
    own = (
        ("bad request", case.bad_request, {ErrorKind.BAD_REQUEST}, False, None),
        ("overloaded", case.overloaded, {ErrorKind.OVERLOADED, ErrorKind.SERVER}, True, None),
        # TEI and TGI answer 429 when their queue is full: overloaded is a fair reading too.
        ("rate limited", with_retry_after(case.rate_limited, "7"),
         {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED}, True, 7.0),
    )
    for name, reply, kinds, retryable, retry_after in own:
        where = f"the API's own {name} reply ({reply.status})"
        try:
            c = caller(failure=_own_failure(reply, op))
        except Exception as exc:
            raise CheckFailed(f"classify_error raised {type(exc).__name__}: {exc} for {where}") from None
        expect(c is not None, f"classify_error answered None for {where}: it classifies nothing")
        problem = invalid(c)
        expect(problem is None, f"classify_error {problem} for {where}")
        expect(c.kind in kinds and c.retryable is retryable,
                f"classify_error said kind={c.kind.value}, retryable={c.retryable} for {where}; "
                f"expected {'/'.join(sorted(k.value for k in kinds))}, retryable={retryable}")
        expect(retry_after is None or c.retry_after == retry_after,
                f"classify_error said retry_after={c.retry_after} for {where} with "
                "Retry-After: 7")
    count = 0
    for failure in failures(case, operations):
        count += 1
        exc_name = type(failure.exception).__name__ if failure.exception else None
        where = (f"status={failure.status} exception={exc_name} "
                 f"in_stream={failure.in_stream} body={failure.content[:40]!r}")
        try:
            result = caller(failure=failure)
        except Exception as exc:
            raise CheckFailed(f"classify_error raised {type(exc).__name__}: {exc} for {where}") from None
        problem = invalid(result)
        expect(problem is None, f"classify_error {problem} for {where}")
    return (f"the API's 400, {case.overloaded.status} and 429 (Retry-After: 7) classified as "
            f"such; {count} odd failures (statuses, headers, truncated/non-JSON bodies, "
            "exceptions) answered without raising")

"""The inputs of the ``classify_error`` totality check: odd failures, and what a valid answer is.

Statuses, headers and bodies a real server (or proxy) might send, the case's own replies cut
short, transport exceptions, and a reproducible stream of random JSON: a classifier must
answer every one of them without raising.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import httpx2

from .._errors import ErrorKind
from .._types import Classification, Failure
from .._wire import decode_json
from ._actions import Reply
from ._case import Case

__all__ = ["failures", "invalid"]

_BODIES: tuple[bytes, ...] = (
    b"", b"{", b"[", b"null", b"[]", b'"text"', b"123", b"1e999", b"true", b"{}",
    b'{"error": null}', b'{"error": 5}', b'{"error": []}', b'{"error": "plain"}',
    b'{"error": {"message": null, "code": {}, "type": [], "status": 1}}',
    b'{"error": {"message": "m", "code": "context_length_exceeded", "type": "invalid"}}',
    b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{}]}}',
    b'{"type": "error", "error": {"type": "overloaded_error"}}', b'{"message": []}',
    b'{"detail": [{"msg": "x", "loc": ["body"]}]}', b'{"error_type": {"a": 1}}',
    b"\xff\xfe\x00 not utf-8", b"<html><body>502 Bad Gateway</body></html>",
    b'{"error": {"message": "' + b"x" * 5000 + b'"}}', b"[" * 200 + b"]" * 200,
    b'{"error": {"message": "\\ud800"}}',
)
_HEADERS: tuple[dict[str, str], ...] = (
    {}, {"retry-after": "1"}, {"retry-after": "abc"}, {"retry-after": "-5"},
    {"retry-after": "1e309"}, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
    {"retry-after-ms": "nan", "x-should-retry": "maybe"}, {"content-type": "text/html"},
)
_STATUSES = (100, 200, 204, 301, 400, 401, 403, 404, 408, 409, 413, 422, 429, 499, 500,
             502, 503, 504, 529, 599)
_EXCEPTIONS: tuple[BaseException, ...] = (
    httpx2.ConnectError("refused"), httpx2.ReadTimeout("slow"), httpx2.RemoteProtocolError("cut"),
    httpx2.ReadError(""), ValueError("odd"), Exception(),
)


def _truncations(content: bytes) -> list[bytes]:
    cuts = sorted({1, 2, len(content) // 3, len(content) // 2, len(content) - 1})
    return [content[:c] for c in cuts if 0 < c < len(content)]


def _random_json(rng: random.Random, depth: int = 0) -> Any:  # noqa: PLR0911 - one per shape
    pick = rng.randrange(8 if depth < 3 else 5)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False, 0, -1, 2**70, 1.5, math.inf])
    if pick == 2:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12)))
    if pick == 3:
        return rng.choice(["error", "message", "code", "type", "status", "detail"])
    if pick == 4:
        return rng.randrange(100, 600)
    if pick == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["error", "message", "code", "type", "status", "detail", "details", "reason"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def failures(case: Case, operations: list[str]) -> Iterator[Failure]:
    """Every odd failure the totality check hands to ``classify_error``, in a fixed order."""
    success = case.success
    bodies = list(_BODIES)
    if isinstance(success, Reply):
        raw = success.body or (httpx2.Response(200, json=success.json).content
                               if success.json is not None else b"")
        bodies += _truncations(raw)
    for reply in (case.bad_request, case.overloaded, case.rate_limited):
        raw = httpx2.Response(200, json=reply.json).content if reply.json is not None else b""
        bodies += [raw, *_truncations(raw)]
    for op in operations:
        for exc in _EXCEPTIONS:
            yield Failure(operation=op, exception=exc)
    op = operations[0]
    for body in bodies:
        data = decode_json(body)
        for status in _STATUSES:
            for headers in _HEADERS:
                yield Failure(operation=op, status=status, headers=headers, content=body, data=data)
        yield Failure(operation=op, status=200, content=body, data=data, in_stream=True)
    rng = random.Random(20261127)  # noqa: S311 - reproducible fuzzing, not crypto
    for _ in range(400):
        value = _random_json(rng)
        body = rng.choice([b"", bytes(rng.randrange(256) for _ in range(rng.randrange(40)))])
        with suppress(ValueError, TypeError):  # inf and friends are not JSON: keep the bytes
            body = httpx2.Response(200, json=value).content
        yield Failure(
            operation=rng.choice(operations), status=rng.randrange(100, 600),
            headers={"retry-after": str(rng.choice([0, -1, 1.5, "x", 10**20]))},
            content=body, data=decode_json(body), in_stream=rng.random() < 0.1,
        )


def invalid(c: Any) -> str | None:
    """What is wrong with a classifier's answer ``c``, or ``None`` when it is valid."""
    if c is None:
        return None
    if not isinstance(c, Classification):
        return f"returned {type(c).__name__}, not a Classification"
    kind: Any = c.kind  # typed, but a plugin may answer anything: check at runtime
    retryable: Any = c.retryable
    ra: Any = c.retry_after
    if not isinstance(kind, ErrorKind):
        return f"kind {kind!r} is not an ErrorKind"
    if not isinstance(retryable, bool):
        return "retryable is not a bool"
    if ra is not None and not (isinstance(ra, int | float) and 0 <= ra < math.inf):
        return f"retry_after {ra!r} is not a finite number of seconds >= 0"
    return None

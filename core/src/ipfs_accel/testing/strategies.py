"""Hypothesis strategies for a plugin's ``classify_error`` totality test.

Needs hypothesis (``pip install hypothesis``); :mod:`ipfs_accel.testing` itself does not import
this module, so the kit works without it.

The strategies generate what a server may answer when something goes wrong:

- :func:`json_values`: any JSON-ish value (NaN and infinities included).
- :func:`error_objects` / :func:`error_bodies`: ``{"error": ...}`` documents, the error member
  being a string, a number, null, any JSON or an object of the usual fields (``message``,
  ``type``, ``code``, ...), with optional siblings (``error_type``, ``message``, ``detail``...).
- :func:`bodies`: response bodies as bytes: random binary, JSON, error documents (also wrapped
  in a list, as Google does), each encoded several ways, and any of them truncated.
- :func:`headers`: header dicts mixing odd names and values with ``retry-after``,
  ``retry-after-ms``, ``x-should-retry`` and friends.
- :func:`statuses`, :func:`transport_exceptions`.
- :func:`failures`: :class:`ipfs_accel.Failure` objects of every kind (error responses,
  in-stream errors, transport exceptions), ``data`` decoded from ``content`` as the core does.

:func:`assert_total` calls a ``classify_error`` hook and checks the answer is a well-formed
:class:`ipfs_accel.Classification`. A plugin's test then reads::

    @settings(max_examples=300, deadline=None)
    @given(failure=strategies.failures(operations=["chat", "embed"]))
    def test_classify_error_is_total(failure: Failure) -> None:
        assert_total(ipfs_accel_myplugin.classify_error, failure)

Plugin-specific shapes go in through ``errors=`` (more error members), ``extra=`` (more
siblings of ``error``) and ``documents=`` (whole documents of the plugin's own shape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx2
import msgspec
from hypothesis import strategies as st

from .._errors import ErrorKind
from .._types import Classification, Failure, Operation
from .._wire import decode_json

__all__ = [
    "ERROR_FIELDS",
    "ERROR_TYPES",
    "HEADER_NAMES",
    "HEADER_VALUES",
    "assert_total",
    "bodies",
    "error_bodies",
    "error_objects",
    "failures",
    "headers",
    "json_values",
    "statuses",
    "transport_exceptions",
]

ERROR_FIELDS: tuple[str, ...] = (
    "message", "type", "code", "param", "status", "details", "failed_generation", "error_type",
)
"""Member names of error objects across the APIs (OpenAI, Groq, Anthropic, Google, TGI...)."""

ERROR_TYPES: tuple[str, ...] = (
    "overloaded", "Overloaded", "validation", "generation", "Backend", "unhealthy", "tokenizer",
    "rate_limit_error", "overloaded_error", "invalid_request_error", "api_error",
    "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT", "UNAVAILABLE", "insufficient_quota",
    "context_length_exceeded",
)
"""Error type and code values plugins look for."""

HEADER_NAMES: tuple[str, ...] = (
    "retry-after", "retry-after-ms", "x-should-retry", "content-type", "request-id",
    "x-request-id",
)
"""Header names a classification reads (or that are commonly there)."""

HEADER_VALUES: tuple[str, ...] = (
    "", "0", "1", "1.5", "-5", "1e309", "nan", "inf", "abc", "true", "false", "maybe",
    "Wed, 21 Oct 2015 07:28:00 GMT", "text/html", "application/json",
)
"""Header values worth trying beyond random text: numbers, odd numbers, dates, booleans."""

_TRANSPORT_ERRORS: tuple[Callable[[str], BaseException], ...] = (
    httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ReadTimeout, httpx2.WriteTimeout,
    httpx2.PoolTimeout, httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError,
    OSError, ConnectionResetError, TimeoutError,
)


def json_values(*, max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON-ish value: null, bools, ints, floats (NaN, infinities), text, lists, objects."""
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=max_leaves,
    )


def error_objects(*, fields: Iterable[str] = ERROR_FIELDS) -> st.SearchStrategy[dict[str, Any]]:
    """Objects keyed by the usual error members (and random names), with any JSON values."""
    values = json_values() | st.sampled_from(ERROR_TYPES)
    return st.dictionaries(st.sampled_from(tuple(fields)) | st.text(), values, max_size=5)


def error_bodies(
    *,
    errors: st.SearchStrategy[Any] | None = None,
    extra: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """``{"error": ...}`` documents with optional siblings.

    The error member is text, an integer, null, any JSON value, an :func:`error_objects`
    object, or whatever ``errors`` adds. The optional siblings are ``error_type``,
    ``message``, ``code``, ``detail`` and ``type`` (any JSON or a known :data:`ERROR_TYPES`
    value); ``extra`` adds siblings or widens one (its strategy is tried alongside).
    """
    member = st.one_of(st.text(), st.integers(), st.none(), json_values(), error_objects())
    if errors is not None:
        member = member | errors
    known = json_values() | st.sampled_from(ERROR_TYPES)
    optional: dict[str, st.SearchStrategy[Any]] = {
        name: known for name in ("error_type", "message", "code", "detail", "type")
    }
    for name, strategy in (extra or {}).items():
        optional[name] = optional[name] | strategy if name in optional else strategy
    return st.fixed_dictionaries({"error": member}, optional=optional)


def _encode(value: Any, how: int) -> bytes:
    if how == 1:
        try:
            return msgspec.json.encode(value)  # compact, raw UTF-8
        except (TypeError, ValueError, OverflowError):
            pass
    if how == 2:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass"
        )
    return json.dumps(value).encode()  # spaced, ASCII with \\u escapes, NaN as NaN


@st.composite
def _encoded(draw: st.DrawFn, documents: st.SearchStrategy[Any], truncate: bool) -> bytes:
    raw = _encode(draw(documents), draw(st.integers(0, 2)))
    if truncate and raw:
        return raw[: draw(st.integers(0, len(raw) - 1))]
    return raw


def bodies(
    *,
    documents: st.SearchStrategy[Any] | None = None,
    errors: st.SearchStrategy[Any] | None = None,
    extra: Mapping[str, st.SearchStrategy[Any]] | None = None,
    max_binary: int = 200,
) -> st.SearchStrategy[bytes]:
    """Response bodies: binary, JSON, error documents, and any of them truncated (cut short).

    The documents are :func:`json_values`, :func:`error_bodies` (``errors`` and ``extra``
    passed on) alone or wrapped in a one-element list, and ``documents`` if given. Each is
    encoded spaced ASCII (``json.dumps``), compact UTF-8 (msgspec) or compact ``json.dumps``.
    """
    errs = error_bodies(errors=errors, extra=extra)
    docs = json_values() | errs | errs.map(lambda body: [body])
    if documents is not None:
        docs = docs | documents
    return st.one_of(
        st.binary(max_size=max_binary),
        _encoded(docs, truncate=False),
        _encoded(docs, truncate=True),
    )


def headers(
    *, names: Iterable[str] = (), max_size: int = 5
) -> st.SearchStrategy[dict[str, str]]:
    """Header dicts: :data:`HEADER_NAMES` (plus ``names``) or random names, odd values."""
    keys = st.sampled_from((*HEADER_NAMES, *names)) | st.text()
    values = st.sampled_from(HEADER_VALUES) | st.text()
    return st.dictionaries(keys, values, max_size=max_size)


_STATUSES = (400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529)


def statuses() -> st.SearchStrategy[int]:
    """Every HTTP status, 100 to 599, drawn often from those APIs answer errors with (429,
    503, 529...): a uniform draw meets each of them about once in 500 examples."""
    return st.sampled_from(_STATUSES) | st.integers(100, 599)


def transport_exceptions() -> st.SearchStrategy[BaseException]:
    """Transport errors and timeouts (httpx2's and the OS's) with any message."""
    return st.builds(lambda make, text: make(text), st.sampled_from(_TRANSPORT_ERRORS),
                     st.text(max_size=40))


_OPERATIONS: tuple[str, ...] = tuple(op.value for op in Operation)
_all_statuses, _any_headers, _any_bodies = statuses, headers, bodies  # failures' parameters shadow them


@st.composite
def _failures(
    draw: st.DrawFn,
    *,
    operations: st.SearchStrategy[str],
    statuses: st.SearchStrategy[int],
    headers: st.SearchStrategy[dict[str, str]],
    bodies: st.SearchStrategy[bytes],
    in_stream: st.SearchStrategy[bool],
    exceptions: bool,
) -> Failure:
    operation = draw(operations)
    if exceptions and draw(st.integers(0, 9)) == 0:  # one in ten: no response at all
        return Failure(operation=operation, exception=draw(transport_exceptions()))
    content = draw(bodies)
    return Failure(operation=operation, status=draw(statuses), headers=draw(headers),
                   content=content, data=decode_json(content), in_stream=draw(in_stream))


def failures(
    *,
    operations: Iterable[str] | st.SearchStrategy[str] = _OPERATIONS,
    statuses: st.SearchStrategy[int] | None = None,
    headers: st.SearchStrategy[dict[str, str]] | None = None,
    bodies: st.SearchStrategy[bytes] | None = None,
    in_stream: bool | None = None,
    exceptions: bool = True,
) -> st.SearchStrategy[Failure]:
    """:class:`~ipfs_accel.Failure` objects as the core hands them to ``classify_error``.

    ``operations`` (names, or a strategy) defaults to the core operations; ``statuses``,
    ``headers`` and ``bodies`` default to :func:`statuses`, :func:`headers` and
    :func:`bodies`. ``in_stream`` fixes the flag (``None``: both). With ``exceptions`` one
    failure in ten carries a :func:`transport_exceptions` error instead of a response
    (``status`` is then ``None``). ``data`` is ``decode_json(content)``, as in the core.
    """
    ops = (operations if isinstance(operations, st.SearchStrategy)
           else st.sampled_from(tuple(operations)))
    return _failures(
        operations=ops,
        statuses=statuses if statuses is not None else _all_statuses(),
        headers=headers if headers is not None else _any_headers(),
        bodies=bodies if bodies is not None else _any_bodies(),
        in_stream=st.booleans() if in_stream is None else st.just(in_stream),
        exceptions=exceptions,
    )


def assert_total(
    classify: Callable[[Failure], Classification | None], failure: Failure
) -> Classification:
    """Classify ``failure`` and check the answer is a well-formed Classification.

    ``kind`` an :class:`~ipfs_accel.ErrorKind`, ``retryable`` a bool, ``message`` a str,
    ``code`` a str or None, ``retry_after`` None or a finite number of seconds >= 0.
    An exception from ``classify`` propagates (the test fails with it). Returns the
    Classification for further, plugin-specific assertions.
    """
    c = classify(failure)
    assert isinstance(c, Classification), f"returned {c!r}, not a Classification"
    kind: Any = c.kind  # typed, but a hook may answer anything: checked at runtime
    retryable: Any = c.retryable
    message: Any = c.message
    code: Any = c.code
    ra: Any = c.retry_after
    assert isinstance(kind, ErrorKind), f"kind {kind!r} is not an ErrorKind"
    assert isinstance(retryable, bool), f"retryable {retryable!r} is not a bool"
    assert isinstance(message, str), f"message {message!r} is not a str"
    assert code is None or isinstance(code, str), f"code {code!r} is not a str"
    assert ra is None or (
        isinstance(ra, int | float) and not isinstance(ra, bool) and 0 <= ra < math.inf
    ), f"retry_after {ra!r} is not a finite number of seconds >= 0"
    return c

"""ipfs_accel.testing.strategies: failures of every kind, and the default classification is total."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from ipfs_accel import Classification, ErrorKind, Failure, default_classification
from ipfs_accel._wire import decode_json
from ipfs_accel.testing import strategies
from ipfs_accel.testing.strategies import assert_total


def _truncated(content: bytes) -> bool:
    text = content.decode("utf-8", "replace").lstrip()
    return text[:1] in ("{", "[") and decode_json(content) is None and len(content) > 2


KINDS: dict[str, Any] = {
    "exception": lambda f: f.exception is not None,
    "in_stream": lambda f: f.in_stream and f.status is not None,
    "non_json": lambda f: f.content and f.data is None and not _truncated(f.content),
    "truncated": lambda f: _truncated(f.content),
    "json_scalar": lambda f: isinstance(f.data, int | float | str) and f.exception is None,
    "error_text": lambda f: isinstance(f.data, dict) and isinstance(f.data.get("error"), str),
    "error_object": lambda f: isinstance(f.data, dict) and isinstance(f.data.get("error"), dict)
    and "message" in f.data["error"],
    "error_list": lambda f: isinstance(f.data, list) and len(f.data) == 1
    and isinstance(f.data[0], dict) and "error" in f.data[0],
    "error_type": lambda f: isinstance(f.data, dict) and "error_type" in f.data,
    "retry_after": lambda f: "retry-after" in f.headers,
    "retry_after_ms": lambda f: "retry-after-ms" in f.headers,
    "should_retry": lambda f: f.headers.get("x-should-retry") in ("true", "false"),
    "status_429": lambda f: f.status == 429,
    "status_1xx": lambda f: f.status is not None and f.status < 200,
    "status_599": lambda f: f.status == 599,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_failures_reach_every_kind(kind: str) -> None:
    """failures() generates each kind of failure (exceptions, truncated JSON, headers, ...)."""
    found = find(strategies.failures(), KINDS[kind], settings=settings(max_examples=5000,
                                                                      database=None))
    assert isinstance(found, Failure)


@settings(max_examples=300, deadline=None)
@given(failure=strategies.failures())
def test_default_classification_is_total(failure: Failure) -> None:
    """The core's default classification classifies every generated failure."""
    assert failure.data == decode_json(failure.content) or failure.data != failure.data
    assert (failure.exception is None) == (failure.status is not None)
    assert_total(default_classification, failure)


@settings(max_examples=100, deadline=None)
@given(
    failure=strategies.failures(operations=["embed", "rerank"], statuses=st.just(418),
                                in_stream=False, exceptions=False,
                                bodies=strategies.bodies(documents=st.just({"x": 1})))
)
def test_failures_narrowed(failure: Failure) -> None:
    """Each part of a Failure can be narrowed."""
    assert failure.operation in ("embed", "rerank")
    assert (failure.status, failure.in_stream, failure.exception) == (418, False, None)


def test_plugin_shapes_go_in() -> None:
    """errors=, extra= and documents= add a plugin's own shapes to the bodies."""
    # find() must hit a narrow branch: a large budget keeps it from giving up on a busy machine
    search = settings(database=None, max_examples=20_000, deadline=None,
                      suppress_health_check=list(HealthCheck))
    mine = {"type": "error", "error": {"type": "overloaded_error", "message": "m"}}
    found = find(strategies.bodies(documents=st.just(mine)),
                 lambda b: decode_json(b) == mine, settings=search)
    assert json.loads(found) == mine
    body = find(strategies.error_bodies(errors=st.just({"details": [1]}),
                                        extra={"x_groq": st.just({"id": "x"})}),
                lambda d: d["error"] == {"details": [1]} and d.get("x_groq") == {"id": "x"},
                settings=search)
    assert body["x_groq"] == {"id": "x"}


@settings(deadline=None)
@given(exc=strategies.transport_exceptions(), headers=strategies.headers())
def test_exceptions_and_headers(exc: BaseException, headers: dict[str, str]) -> None:
    """Transport exceptions are exceptions; headers are str to str."""
    assert isinstance(exc, BaseException)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())


def test_assert_total_rejects_bad_answers() -> None:
    """assert_total fails on None, a wrong kind or a negative retry_after; passes a good one."""
    failure = Failure(operation="chat", status=500)
    bad: list[Any] = [
        None,
        Classification(kind="server", retryable=True),  # type: ignore[arg-type]
        Classification(kind=ErrorKind.SERVER, retryable=True, retry_after=-1.0),
        Classification(kind=ErrorKind.SERVER, retryable=1),  # type: ignore[arg-type]
    ]
    for answer in bad:
        with pytest.raises(AssertionError):
            assert_total(lambda _f, a=answer: a, failure)
    good = Classification(kind=ErrorKind.SERVER, retryable=True, retry_after=1.5)
    assert assert_total(lambda _f: good, failure) is good


def test_kit_imports_without_hypothesis() -> None:
    """import ipfs_accel.testing does not import hypothesis (it is not a core dependency)."""
    code = ("import sys, ipfs_accel.testing; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis imported'")
    subprocess.run([sys.executable, "-c", code], check=True)

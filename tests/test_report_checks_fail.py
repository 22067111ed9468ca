"""Every built-in plugin: each report check turns into a cross when its feature is taken away.

The plugin's own hooks and its own conformance case, with one feature broken on purpose
(usage not read, key not sent, request ID in another header, nothing retried, no classifier,
a classifier that answers nothing, no concurrency limit): the check for that feature fails,
with a reason that says what went missing.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
from typing import Any

import ipfs_accel._endpoint
import msgspec
import pytest
from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    Usage,
    default_classification,
    hookimpl,
)
from ipfs_accel._queue import Limiter
from ipfs_accel.testing import Case, CheckResult, registry_for, run_check

BUILTIN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]
HOOKS = ("backend_info", "send", "parse_usage", "classify_error", "conformance_case")


def _module(name: str) -> Any:
    return importlib.import_module(f"ipfs_accel_{name}")


def _variant(name: str, *, drop: tuple[str, ...] = (), **hooks: Any) -> types.SimpleNamespace:
    """The plugin with some hooks replaced or removed (each a feature broken on purpose)."""
    module = _module(name)
    funcs = {n: getattr(module, n) for n in HOOKS if hasattr(module, n) and n not in drop}
    funcs.update(hooks)
    return types.SimpleNamespace(**funcs)


def _run(check: str, name: str, plugin: object) -> CheckResult:
    case: Case = _module(name).conformance_case()
    case = dataclasses.replace(case, plugin=plugin)
    return run_check(check, case, registry_for(case))


def _without_usage(result: Any) -> Any:
    if isinstance(result, Exchange):
        return _exchange_without_usage(result)
    if isinstance(getattr(result, "usage", None), Usage):
        return msgspec.structs.replace(result, usage=Usage())
    return result


def _exchange_without_usage(exchange: Exchange) -> Exchange:
    parse = exchange.parse
    if parse is None:
        return exchange
    return msgspec.structs.replace(exchange, parse=lambda resp: _without_usage(parse(resp)))


@pytest.mark.parametrize("name", BUILTIN)
def test_each_plugin_passes_the_checks_broken_here(name: str) -> None:
    """Unbroken, the plugin passes the checks this file breaks (so each cross below is news)."""
    plugin = _variant(name)
    for check in ("counters", "keys", "request_id", "classify_error"):
        r = _run(check, name, plugin)
        assert r.passed, (check, r.reason)


@pytest.mark.parametrize("name", BUILTIN)
def test_counters_cross_without_usage_parsing(name: str) -> None:
    """Usage read neither by parse_usage nor by the result parser: the counters cross."""
    send = _module(name).send

    @hookimpl
    def parse_usage(operation: str, data: Any) -> Usage | None:
        return None

    @hookimpl
    def send_without_usage(call: Call, endpoint: EndpointConfig) -> Exchange:
        return _exchange_without_usage(send(call=call, endpoint=endpoint))

    r = _run("counters", name, _variant(name, parse_usage=parse_usage, send=send_without_usage))
    assert not r.passed and "input_tokens=0 (expected" in r.reason


@pytest.mark.parametrize("name", BUILTIN)
def test_keys_cross_without_the_auth_header(name: str) -> None:
    """A key left out of the API's auth header: the keys check crosses, naming the header."""
    module = _module(name)
    header = module.conformance_case().auth[0]

    @hookimpl
    def send(call: Call, endpoint: EndpointConfig) -> Exchange:
        ex = module.send(call=call, endpoint=endpoint)
        kept = {k: v for k, v in ex.headers.items() if k.lower() != header}
        return msgspec.structs.replace(ex, headers=kept)

    r = _run("keys", name, _variant(name, send=send))
    assert not r.passed and f"has no {header!r} header" in r.reason


@pytest.mark.parametrize("name", BUILTIN)
def test_request_id_cross_in_another_header(name: str) -> None:
    """The request ID sent in a header other than the API's: the request ID check crosses."""
    module = _module(name)

    @hookimpl
    def backend_info() -> BackendInfo:
        return msgspec.structs.replace(module.backend_info(), request_id_header="X-Elsewhere")

    r = _run("request_id", name, _variant(name, backend_info=backend_info))
    assert not r.passed and "on the 3 attempts was [None, None, None]" in r.reason


@pytest.mark.parametrize("name", BUILTIN)
def test_backoff_cross_when_nothing_is_retried(name: str) -> None:
    """Every error classified as final: the backoff check crosses after one attempt."""
    module = _module(name)

    @hookimpl
    def classify_error(failure: Failure) -> Classification:
        c = module.classify_error(failure=failure) or default_classification(failure)
        return msgspec.structs.replace(c, retryable=False)

    r = _run("backoff", name, _variant(name, classify_error=classify_error))
    assert not r.passed and "after 1 attempt(s)" in r.reason


@pytest.mark.parametrize("name", BUILTIN)
def test_classify_cross_without_the_hook(name: str) -> None:
    """No classify_error hook: a cross, not a tick for the core's default."""
    r = _run("classify_error", name, _variant(name, drop=("classify_error",)))
    assert not r.passed and "no classify_error hook" in r.reason


@pytest.mark.parametrize("name", BUILTIN)
def test_classify_cross_when_it_answers_nothing(name: str) -> None:
    """A classifier that always returns None: a cross naming the API's own 400 reply."""
    @hookimpl
    def classify_error(failure: Failure) -> Classification | None:
        return None

    r = _run("classify_error", name, _variant(name, classify_error=classify_error))
    assert not r.passed and "answered None for the API's own bad request reply" in r.reason


@pytest.mark.parametrize("name", BUILTIN)
def test_queue_cross_without_the_limit(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the endpoint's concurrency limit gone, the queue check crosses for every plugin."""
    real = Limiter
    monkeypatch.setattr(ipfs_accel._endpoint, "Limiter", lambda limit, size: real(64, 64))
    r = _run("queue", name, _variant(name))
    assert not r.passed and "did not wait in the queue with 2 calls running" in r.reason

"""Pools whose members are real plugins (openai, groq, ollama): the call's own failures as
each API classifies them, members of different backends with their own models and wires,
operations only some members offer. These need the plugins, so they run with every plugin
installed, not in the core's own session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from ipfs_accel import (
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    Pool,
    Registry,
    UnsupportedOperationError,
)
from ipfs_accel.testing import FaultServer, Reply

MSG = [{"role": "user", "content": "hi"}]
FAST = {"initial_retry_delay": 0.01, "max_retry_delay": 0.05, "retry_jitter": 0}
LETTERS = "ABC"


def failing(status: int, retry_after: float | None = None, code: str | None = None) -> Reply:
    error: dict[str, Any] = {"message": f"status {status}"}
    if code is not None:
        error["code"] = code
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return Reply(status, json={"error": error}, headers=headers)


@pytest.fixture
def servers() -> Iterator[list[FaultServer]]:
    """Three servers, scripted by each test (unscripted requests get the kit's 404)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(FaultServer()) for _ in LETTERS]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("reply", "error"), [
    (failing(400), BadRequestError),
    (failing(400, code="context_length_exceeded"), ContextLengthError),
], ids=["400", "context-length"])
def test_a_failure_of_the_call_itself_is_not_failed_over(servers, reply, error, use_async):
    """400 or a context too long: one attempt only, the other member never asked."""
    reg = Registry(environ={})
    oa = reg.get("openai")
    eids = [oa.create_endpoint(api_key="k", base_url=srv.base_url + "/v1", model="m")
            for srv in servers[:2]]
    pool = reg.pool([("openai", e) for e in eids], strategy="ordered", **FAST)
    servers[0].script([reply])
    with pytest.raises(error) as info:
        asyncio.run(pool.achat(MSG)) if use_async else pool.chat(MSG)
    assert info.value.attempts == 1
    assert (len(servers[0].requests), len(servers[1].requests)) == (1, 0)
    stats = pool.get_stats()
    assert (stats.attempts, stats.failed, stats.failovers) == (1, 1, 0)


def test_an_operation_no_member_offers_is_unsupported(servers):
    """An operation no member offers fails at once; one only some offer runs on those."""
    reg = Registry(environ={})
    oe = reg.get("openai").create_endpoint(api_key="k", base_url=servers[0].base_url + "/v1",
                                           model="m")
    pool = reg.pool([("openai", oe)])
    with pytest.raises(UnsupportedOperationError, match="list_models"):
        pool.invoke("list_models")
    with pytest.raises(UnsupportedOperationError):
        asyncio.run(pool.ainvoke("list_models"))
    le = reg.get("ollama").create_endpoint(base_url=servers[1].base_url, model="llama")
    pool.add("ollama", le)
    servers[1].script([Reply(200, json={"models": [{"name": "llama"}]})] * 2, path="/api/tags")
    for _ in range(2):
        assert pool.invoke("list_models").data is not None
    assert len(servers[0].requests) == 0 and len(servers[1].requests) == 2
    assert Pool().members() == []
    with pytest.raises(ConfigurationError, match="no members"):
        Pool().chat(MSG)


# -- mixed backends ------------------------------------------------------------------------


def _openai_body(text: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_mixed_backends_use_their_own_model_unless_one_is_named(servers, use_async):
    """openai and groq members: each sends its endpoint's model, or the one the call names."""
    for srv, letter in zip(servers, LETTERS, strict=False):
        srv.responder = lambda r, t=letter: Reply(200, json=_openai_body(t))
    reg = Registry(environ={})
    oe = reg.get("openai").create_endpoint(api_key="k1", base_url=servers[0].base_url + "/v1",
                                           model="oa-model")
    ge = reg.get("groq").create_endpoint(api_key="k2", base_url=servers[1].base_url + "/v1",
                                         model="gq-model")
    pool = reg.pool([("openai", oe), ("groq", ge)], strategy="round-robin")

    def chat(**kw: Any) -> str:
        if use_async:
            return asyncio.run(pool.achat(MSG, **kw)).text
        return pool.chat(MSG, **kw).text

    assert sorted(chat() + chat()) == ["A", "B"]
    assert sorted(chat(model="named") + chat(model="named")) == ["A", "B"]
    models = [[r.json()["model"] for r in srv.requests] for srv in servers[:2]]
    assert models == [["oa-model", "named"], ["gq-model", "named"]]
    assert servers[0].requests[0].header("authorization") == "Bearer k1"
    assert servers[1].requests[0].header("authorization") == "Bearer k2"


def test_openai_and_ollama_fail_over_to_each_other(servers):
    """A 503 from an openai member moves the call to an ollama member (its own wire)."""
    reg = Registry(environ={})
    oe = reg.get("openai").create_endpoint(api_key="k", base_url=servers[0].base_url + "/v1",
                                           model="m")
    le = reg.get("ollama").create_endpoint(base_url=servers[1].base_url, model="llama")
    servers[0].script([failing(503)])
    servers[1].script([Reply(200, json={"model": "llama", "message": {
        "role": "assistant", "content": "from ollama"}, "done": True, "done_reason": "stop",
        "prompt_eval_count": 2, "eval_count": 3})])
    pool = reg.pool([("openai", oe), ("ollama", le)], strategy="ordered", **FAST)
    result = pool.chat(MSG)
    assert result.text == "from ollama"
    assert servers[1].requests[0].path == "/api/chat"
    assert servers[1].requests[0].json()["model"] == "llama"
    assert result.usage.total_tokens == 5

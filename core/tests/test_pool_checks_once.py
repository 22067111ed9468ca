"""A pool call checks the shape of its tools, tool choice, response format, tool messages
and images once, when the pool takes it, however many members its attempts go to: each
attempt checks only that its member takes what the call needs. A call made on one backend
still checks everything itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from ipfs_accel import ConfigurationError, Registry, tools
from test_openai_compat import CHAT, CHUNK, HI, _sse_response
from test_pool_tools import _Named

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
ALL = frozenset({"tools", "json_schema", "images"})
FEATURES = {"chat": ALL, "stream_chat": ALL}
PLAIN = {"chat": frozenset(), "stream_chat": frozenset()}
# every shape the core checks: tools, tool_choice, response_format, a tool call and its
# answer, an image part
MESSAGES = [
    {"role": "user", "content": [
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": "https://x.test/sky.png"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]
PARAMS: dict[str, Any] = {
    "tools": [WEATHER], "tool_choice": "auto",
    "response_format": {"type": "json_schema",
                        "json_schema": {"name": "w", "schema": {"type": "object"}}},
}




def _registry(*plugins: _Named, fail_first: bool = False) -> tuple[Registry, list[str]]:
    """A registry of ``plugins`` over a mock transport; the hosts asked, in order. With
    ``fail_first`` the first request is answered 503 (another member may not share it)."""
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.host.split(".")[0])
        if fail_first and len(seen) == 1:
            return httpx2.Response(503, json={"error": {"message": "overloaded"}})
        if json.loads(request.content).get("stream"):
            return _sse_response(CHUNK)
        return httpx2.Response(200, json=CHAT)

    registry = Registry(plugins=list(plugins), entry_points=False,
                        transport=httpx2.MockTransport(handler))
    return registry, seen


def _pool(registry: Registry, *names: str) -> Any:
    members = []
    for name in names:
        backend = registry.get(name)
        members.append((backend, backend.create_endpoint()))
    return registry.pool(members, strategy="round-robin", initial_retry_delay=0.001,
                         max_retry_delay=0.001, retry_jitter=0)


@pytest.fixture
def shape_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each run of the shape check (``tools.check_params``), counted."""
    runs: list[int] = []
    check = tools.check_params

    def counted(params: Any, messages: Any) -> set[str]:
        runs.append(1)
        return check(params, messages)

    monkeypatch.setattr(tools, "check_params", counted)
    return runs


def _chat(pool: Any) -> None:
    assert pool.chat(MESSAGES, **PARAMS).text == "Hello"


def _achat(pool: Any) -> None:
    assert asyncio.run(pool.achat(MESSAGES, **PARAMS)).text == "Hello"


def _stream(pool: Any) -> None:
    assert "".join(c.delta for c in pool.stream_chat(MESSAGES, **PARAMS)) == "He"


def _astream(pool: Any) -> None:
    async def run() -> str:
        return "".join([c.delta async for c in pool.astream_chat(MESSAGES, **PARAMS)])

    assert asyncio.run(run()) == "He"


@pytest.mark.parametrize("call", [_chat, _achat, _stream, _astream],
                         ids=["chat", "achat", "stream_chat", "astream_chat"])
def test_a_call_that_fails_over_checks_the_shapes_once(
    shape_checks: list[int], call: Callable[[Any], None],
) -> None:
    """The first member answers 503, the call moves to the second and succeeds there: two
    attempts, one shape check."""
    registry, seen = _registry(_Named("a", FEATURES), _Named("b", FEATURES), fail_first=True)
    pool = _pool(registry, "a", "b")
    call(pool)
    assert seen == ["a", "b"]
    stats = pool.get_stats()
    assert (stats.attempts, stats.failovers) == (2, 1)
    assert len(shape_checks) == 1


def test_a_malformed_call_is_refused_by_the_pool_before_anything_is_sent(
    shape_checks: list[int],
) -> None:
    """Malformed tools are refused with the same error as on one backend, checked once,
    nothing sent and no call counted."""
    registry, seen = _registry(_Named("a", FEATURES), _Named("b", FEATURES))
    pool = _pool(registry, "a", "b")
    with pytest.raises(ConfigurationError, match="tools must be a list"):
        pool.chat(HI, tools="get_weather")
    with pytest.raises(ConfigurationError, match=r"messages\[0\] \(role 'tool'\) needs"):
        pool.chat([{"role": "tool", "content": "sunny"}], tools=[WEATHER])
    assert len(shape_checks) == 2
    assert seen == []
    assert pool.get_stats().calls == 0


def test_a_call_on_one_backend_still_checks_everything(shape_checks: list[int]) -> None:
    """Without a pool, the backend checks the shapes and its features itself."""
    registry, seen = _registry(_Named("a", FEATURES), _Named("plain", PLAIN))
    assert registry.get("a").chat(MESSAGES, **PARAMS).text == "Hello"
    assert len(shape_checks) == 1
    with pytest.raises(ConfigurationError, match="tools must be a list"):
        registry.get("a").chat(HI, tools="get_weather")
    with pytest.raises(ConfigurationError,
                       match="backend 'plain' does not take tools in 'chat'"):
        registry.get("plain").chat(HI, tools=[WEATHER])
    assert len(shape_checks) == 3
    assert seen == ["a"]


def test_a_member_given_the_needs_checks_only_its_features(shape_checks: list[int]) -> None:
    """Prepared with the needs a pool computed, a backend refuses what it does not take with
    the error a direct call gives, without checking the shapes again."""
    registry, _ = _registry(_Named("plain", PLAIN))
    plain = registry.get("plain")
    eid = plain.create_endpoint()
    with pytest.raises(ConfigurationError) as direct:
        plain.chat(HI, endpoint_id=eid, tools=[WEATHER])
    assert len(shape_checks) == 1
    with pytest.raises(ConfigurationError) as prepared:
        plain._prepare("chat", eid, None, None, {"tools": [WEATHER]}, messages=HI,
                       needs=frozenset({"tools"}))
    assert str(prepared.value) == str(direct.value)
    assert len(shape_checks) == 1
    _, call = plain._prepare("chat", eid, None, None, {}, messages=HI, needs=frozenset())
    assert call.messages == HI
    assert len(shape_checks) == 1

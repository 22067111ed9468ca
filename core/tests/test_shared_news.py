"""What one worker learns, every worker sharing limits knows: the rate-limit headers of an
answer (a token budget spent, the requests budget spent or back), an endpoint turning
unhealthy, a key refused; and a Redis restarted empty gets its fingerprints' salt back.
Two Registries in one process stand for two workers: they share nothing but Redis."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import _echo_plugin
import httpx2
import pytest
from ipfs_accel import AuthenticationError, Registry, ServerError
from ipfs_accel.openai_compat import openai_rate_limits
from ipfs_accel.testing import RedisServer, import_or_skip
from test_shared import MSG, OK

import_or_skip("redis")  # shared limits' client: a skip here, a failure under CI
pytestmark = pytest.mark.usefixtures("redis_emptied")  # conftest: each test on an empty Redis

KEY = "sk-news-" + "n" * 24
Handler = Callable[[httpx2.Request], httpx2.Response]


def _reading_headers() -> types.ModuleType:
    """The echo test plugin, reading OpenAI's x-ratelimit-* headers."""
    mod = types.ModuleType("echo_reading_headers")
    for name in ("backend_info", "send", "parse_usage", "classify_error"):
        setattr(mod, name, getattr(_echo_plugin, name))
    mod.parse_rate_limits = _echo_plugin.hookimpl(openai_rate_limits)  # type: ignore[attr-defined]
    return mod


PLUGIN = _reading_headers()


def _ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json=OK)


def _worker(redis: RedisServer, handler: Handler = _ok, **settings: Any) -> Any:
    """One worker's backend with endpoint ``e`` (and ``f``, another server)."""
    registry = Registry(plugins=[PLUGIN], entry_points=False, shared=redis.url,
                        transport=httpx2.MockTransport(handler),
                        async_transport=httpx2.MockTransport(handler))
    backend = registry.get("echo")
    values = {"api_key": KEY, "max_retries": 0, **settings}
    backend.create_endpoint("e", base_url="http://e.test", **values)
    backend.create_endpoint("f", base_url="http://f.test", **values)
    return backend


def _answer(headers: dict[str, str], status: int = 200) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = OK if status == 200 else {"error": {"message": "no"}}
        return httpx2.Response(status, json=body, headers=headers)
    return handler


# -- rate-limit headers --------------------------------------------------------------------


def test_a_token_budget_the_headers_say_is_spent_pauses_every_worker(
        redis: RedisServer) -> None:
    """One worker's answer says the token budget is spent for 2 s: another worker's next
    admission is a pause for about as long, naming why."""
    a = _worker(redis, _answer({"x-ratelimit-remaining-tokens": "0",
                                "x-ratelimit-reset-tokens": "2s"}))
    b = _worker(redis)
    a.chat(MSG, endpoint_id="e")
    held = b._endpoint("e").shared.admit(0.0, lease="b1")
    assert held.why == "pause" and 1.5 < held.wait <= 2.0
    assert "tokens budget is spent" in held.reason


def test_the_requests_budget_spent_paces_every_worker_until_some_is_left(
        redis: RedisServer) -> None:
    """One worker hears "no request left, back in 1 s": every worker's attempts then go
    one reset apart (the first in about 1 s, the next 1 s after it), not all at once when
    it is back; once an answer says some are left, they go at once again."""
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}
    a = _worker(redis, _answer(headers))  # it reads the dict as it is then
    b = _worker(redis)
    a.chat(MSG, endpoint_id="e")
    shared = b._endpoint("e").shared
    first = shared.admit(0.0, lease="b1")
    second = shared.admit(0.0, lease="b2")
    assert first.why == second.why == "spent"
    assert 0.5 < first.wait <= 1.0
    assert second.wait == pytest.approx(first.wait + 1.0, abs=0.05)
    shared.settle(first.lease, 0.0, None)
    shared.settle(second.lease, 0.0, None)
    headers.update({"x-ratelimit-remaining-requests": "10"})
    a.chat(MSG, endpoint_id="e")
    assert shared.admit(0.0, lease="b3").why == "go"


# -- health --------------------------------------------------------------------------------


def _pool(backend: Any) -> Any:
    """A pool of the worker's ``e`` then ``f``, ``e`` first while it takes calls."""
    return Registry(plugins=[], entry_points=False).pool(
        [(backend, "e"), (backend, "f")], strategy="ordered")


def _counting(seen: list[str]) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.host)
        return httpx2.Response(200, json=OK)
    return handler


def test_an_endpoint_one_worker_finds_unhealthy_is_skipped_by_the_others_pools(
        redis: RedisServer) -> None:
    """Worker A sees ``e`` fail (5xx) until it is unhealthy: worker B's pool, which prefers
    ``e``, sends nothing there and answers from ``f``; B's ``e`` is unhealthy too. A's
    later success tells every worker the endpoint is well again."""
    failing = _answer({}, 500)
    answer = [failing]
    a = _worker(redis, lambda r: answer[0](r), unhealthy_after=1, cooldown=30.0)  # noqa: PLW0108
    seen: list[str] = []
    b = _worker(redis, _counting(seen), unhealthy_after=1, cooldown=30.0)
    with pytest.raises(ServerError):
        a.chat(MSG, endpoint_id="e")
    pool = _pool(b)
    assert pool.chat(MSG).text == "hi"
    assert seen == ["f.test"]
    assert b.get_stats("e").state == "unhealthy"
    health = b._endpoint("e").shared.keys()[5]
    assert redis.command("HGET", health, "until") is not None
    answer[0] = _ok
    assert a.chat(MSG, endpoint_id="e").text == "hi"  # A's own probe, a direct call
    assert redis.command("HGET", health, "until") is None


def test_a_key_refused_in_one_worker_is_disabled_in_the_others(redis: RedisServer) -> None:
    """Worker A's key is refused (401) on ``e``: worker B's pool never sends to ``e``, whose
    state in B is ``disabled``; a direct call on B's ``e`` is still sent (health only steers
    pools, as it does in one process)."""
    a = _worker(redis, _answer({}, 401))
    seen: list[str] = []
    b = _worker(redis, _counting(seen))
    with pytest.raises(AuthenticationError):
        a.chat(MSG, endpoint_id="e")
    pool = _pool(b)
    for _ in range(3):
        assert pool.chat(MSG).text == "hi"
    assert seen == ["f.test"] * 3
    assert b.get_stats("e").state == "disabled"
    assert b.chat(MSG, endpoint_id="e").text == "hi"
    assert seen[-1] == "e.test"


# -- identity --------------------------------------------------------------------------------


def test_a_redis_restarted_empty_gets_the_salt_back(redis: RedisServer) -> None:
    """Redis restarted with nothing in it: the first worker to reconnect installs the salt
    it knew, so a worker started after fingerprints the endpoint as the older one does."""
    old = _worker(redis, rpm=6000)
    old.chat(MSG, endpoint_id="e")
    before = old._endpoint("e").shared.keys()
    redis.stop()
    redis.start()
    assert redis.command("GET", "ipfs-accel:salt") is None
    old._endpoint("e").shared.shared.down_until = 0.0
    old.chat(MSG, endpoint_id="e")
    new = _worker(redis, rpm=6000)
    assert new._endpoint("e").shared.keys() == before

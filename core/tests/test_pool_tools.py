"""A pool sends a call with tools, a response format or images only to members whose
backend takes them; none taking them is a ConfigurationError before anything is sent."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from ipfs_accel import BackendInfo, ConfigurationError, Registry, hookimpl
from test_openai_compat import CHAT, HI, _Compat

WEATHER = {"type": "function", "function": {"name": "get_weather"}}


class _Named(_Compat):
    """The OpenAI format under another name, taking what ``features`` says."""

    def __init__(self, name: str, features: dict[str, frozenset[str]] | None) -> None:
        super().__init__()
        self.name = name
        self.features = features

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name=self.name, default_base_url=f"http://{self.name}.test",
                           default_model="m", operations=frozenset({"chat", "stream_chat"}),
                           features=self.features)


def _pool(*plugins: _Named) -> tuple[Any, dict[str, list[httpx2.Request]]]:
    seen: dict[str, list[httpx2.Request]] = {p.name: [] for p in plugins}

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen[request.url.host.split(".")[0]].append(request)
        return httpx2.Response(200, json=CHAT)

    registry = Registry(plugins=list(plugins), entry_points=False,
                        transport=httpx2.MockTransport(handler))
    members = []
    for plugin in plugins:
        backend = registry.get(plugin.name)
        members.append((backend, backend.create_endpoint()))
    return registry.pool(members, strategy="round-robin"), seen


PLAIN = {"chat": frozenset(), "stream_chat": frozenset()}
TOOLS = {"chat": frozenset({"tools"}), "stream_chat": frozenset({"tools"})}


def test_calls_with_tools_go_only_to_members_that_take_them() -> None:
    """Round robin over a member without tools and one with: every tool call goes to the
    one with tools, plain calls to both."""
    pool, seen = _pool(_Named("plain", PLAIN), _Named("tooled", TOOLS))
    for _ in range(4):
        pool.chat(HI, tools=[WEATHER])
    assert (len(seen["plain"]), len(seen["tooled"])) == (0, 4)
    for _ in range(4):
        pool.chat(HI)
    assert len(seen["plain"]) == 2


def test_a_member_that_declares_nothing_decides_for_itself() -> None:
    """A backend without declared features is not passed over."""
    pool, seen = _pool(_Named("plain", PLAIN), _Named("open", None))
    pool.chat(HI, tools=[WEATHER])
    assert (len(seen["plain"]), len(seen["open"])) == (0, 1)


def test_no_member_takes_it_refused_before_sending() -> None:
    """No member takes images in chat: a ConfigurationError naming it, nothing sent, and
    the pool counts no call."""
    pool, seen = _pool(_Named("plain", PLAIN), _Named("tooled", TOOLS))
    image = {"role": "user", "content": [{"type": "image_url",
                                          "image_url": {"url": "https://x.test/a.png"}}]}
    with pytest.raises(ConfigurationError, match="no member of the pool takes images in 'chat'"):
        pool.chat([image])
    with pytest.raises(ConfigurationError, match="tools must be a list"):
        pool.chat(HI, tools="get_weather")
    assert seen == {"plain": [], "tooled": []}
    assert pool.get_stats().calls == 0

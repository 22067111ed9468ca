"""The kit's per-key rate limits read back by the plugins that parse rate-limit headers
(claude's anthropic-ratelimit-*, openai's x-ratelimit-*): these need the plugins, so they run
with every plugin installed, not in the core's own session."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import ipfs_accel_claude as claude
import ipfs_accel_openai
import pytest
from ipfs_accel import RateLimitError, Registry
from ipfs_accel.testing import FaultServer, RateLimit, Reply
from ipfs_accel_claude._limits import rate_limits

KEY_1 = "sk-key-1-0123456789abcd"
CHAT = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
OK = Reply(200, json={"ok": True})


class Clock:
    """A clock the test moves by hand: budgets never depend on how fast the machine is."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _post(client: httpx2.Client, server: FaultServer, key: str | None = KEY_1,
          json: Any = None) -> httpx2.Response:
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    return client.post(server.base_url + "/v1/chat/completions", json=json or {}, headers=headers)


def test_anthropic_style_round_trip() -> None:
    """anthropic style: anthropic-ratelimit-* with RFC 3339 resets the claude plugin reads
    back, and a 429 it classifies as rate limited with the wait."""
    clock = Clock()
    limit = RateLimit(rpm=6, tpm=10_000)
    with FaultServer(rate_limits={KEY_1: limit}, rate_limit_headers="anthropic", clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        before = time.time()
        first = client.post(server.base_url + "/v1/messages", json={"max_tokens": 196},
                            headers={"x-api-key": KEY_1})  # 196 + 17 bytes // 4 = 200
        after = time.time()
        assert first.status_code == 200
        early = claude.parse_rate_limits(httpx2.Headers(first.headers))
        assert early.requests_limit == 6 and early.requests_remaining == 0
        assert (early.tokens_limit, early.tokens_remaining) == (10_000, 9_800)
        # the reset is a time: counted from before the request it is at least the wait,
        # counted from after it at most the wait (plus the millisecond it is rounded up to)
        assert rate_limits(first.headers, now=before).requests_reset >= 10.0
        assert rate_limits(first.headers, now=after).requests_reset <= 10.001
        refused = client.post(server.base_url + "/v1/messages", json={},
                              headers={"x-api-key": KEY_1})
        assert refused.status_code == 429
        assert refused.json()["type"] == "error"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        backend = Registry(plugins=[claude], entry_points=False).get("claude")
        eid = backend.create_endpoint(base_url=server.base_url, api_key=KEY_1, max_retries=0)
        clock.now += 4
        with pytest.raises(RateLimitError) as caught:
            backend.chat([{"role": "user", "content": "hi"}], endpoint_id=eid)
        assert caught.value.retry_after == 6.0
        assert server.rate_stats() == {KEY_1: (1, 2)}


def test_openai_plugin_raises_rate_limit_error() -> None:
    """Through a Registry endpoint of the openai plugin (max_retries=0), the kit's 429 is a
    RateLimitError carrying the server's exact wait, and the key is in no message."""
    plugin = ipfs_accel_openai
    clock = Clock()
    with FaultServer(rate_limits={KEY_1: RateLimit(rpm=60, burst=2)}, clock=clock,
                     responder=lambda r: Reply(200, json=CHAT)) as server, \
            httpx2.Client() as client:
        backend = Registry(plugins=[plugin], entry_points=False).get("openai")
        eid = backend.create_endpoint(base_url=server.base_url, api_key=KEY_1, max_retries=0)
        hi = [{"role": "user", "content": "hi"}]
        assert backend.chat(hi, endpoint_id=eid).text == "hi"  # the endpoint sees 1 left
        assert _post(client, server).status_code == 200  # another client takes it
        clock.now += 0.25
        with pytest.raises(RateLimitError) as caught:
            backend.chat(hi, endpoint_id=eid)
        assert caught.value.retry_after == pytest.approx(0.75)
        assert KEY_1 not in str(caught.value) and KEY_1 not in repr(caught.value)
        assert server.rate_stats() == {KEY_1: (2, 1)}

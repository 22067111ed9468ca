"""FaultServer's per-key rate limits: GCRA budgets on a test's clock, 429s with Retry-After,
and budget headers the plugins' parse_rate_limits read back."""

from __future__ import annotations

import math
import threading
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import RateLimits, parse_reset
from ipfs_accel.openai_compat import openai_rate_limits
from ipfs_accel.testing import (
    FaultServer,
    Hold,
    RateLimit,
    RateStats,
    RecordedRequest,
    Reply,
    Stream,
)
from ipfs_accel.testing._ratelimit import RateLimiter, mask_key, request_key, request_tokens
from ipfs_accel.testing._ratelimit_wire import go_duration

KEY_1 = "sk-key-1-0123456789abcd"
KEY_2 = "sk-key-2-0123456789wxyz"
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


def _request(key: str | None = KEY_1, body: bytes = b"{}") -> RecordedRequest:
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    return RecordedRequest(method="POST", path="/", query={}, headers=headers, body=body,
                           received_at=0.0, connection=1)


def test_burst_then_refused_then_spaced() -> None:
    """rpm=60, burst=2: two at once pass, the third gets 429 with the exact wait; once the
    clock moves by that wait, the next passes. Refusals are counted, and answered before
    the script (the scripted reply is still there for the next accepted request)."""
    clock = Clock()
    with FaultServer(rate_limits={KEY_1: RateLimit(rpm=60, burst=2)}, clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        assert [_post(client, server).status_code for _ in range(2)] == [200, 200]
        server.script([Reply(201, json={})])
        refused = _post(client, server)
        assert refused.status_code == 429
        assert refused.headers["retry-after-ms"] == "1000"
        assert refused.headers["retry-after"] == "1"
        assert server.pending() == 1
        clock.now += 0.999
        assert _post(client, server).status_code == 429
        clock.now += 0.001
        assert _post(client, server).status_code == 201
        assert server.rate_stats() == {KEY_1: RateStats(accepted=3, refused=2)}
        assert server.rate_stats()[KEY_1] == (3, 2)


def test_default_burst_is_pure_spacing() -> None:
    """By default (burst=1) each request must come 60/rpm s after the one before."""
    clock = Clock()
    with FaultServer(rate_limits={KEY_1: RateLimit(rpm=600)}, clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        codes = []
        for _ in range(5):
            codes.append(_post(client, server).status_code)
            codes.append(_post(client, server).status_code)
            clock.now += 0.1
        assert codes == [200, 429] * 5


def test_openai_headers_round_trip() -> None:
    """Every answer to a limited key carries x-ratelimit-* that openai_compat reads back:
    the limit, the whole requests left now, the time until the budget is whole."""
    clock = Clock()
    limit = RateLimit(rpm=120, burst=3, tpm=10_000)
    with FaultServer(rate_limits={KEY_1: limit}, clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        first = _post(client, server, json={"max_tokens": 100})  # 100 + 19 bytes // 4 = 104
        assert openai_rate_limits(first.headers) == RateLimits(
            requests_limit=120, requests_remaining=2, requests_reset=0.5,
            tokens_limit=10_000, tokens_remaining=9_896, tokens_reset=0.624,
        )
        _post(client, server)
        _post(client, server)
        refused = _post(client, server)
        assert refused.status_code == 429
        limits = openai_rate_limits(refused.headers)
        assert limits is not None
        assert (limits.requests_remaining, limits.requests_reset) == (0, 1.5)
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert refused.json()["error"]["type"] == "requests"


def test_tokens_budget() -> None:
    """tpm counts max_tokens (or max_completion_tokens) plus body bytes // 4; a request the
    tokens budget refuses takes nothing from the requests budget; one larger than the whole
    tokens budget is refused for good (x-should-retry: false)."""
    clock = Clock()
    limit = RateLimit(rpm=6000, burst=10, tpm=600, token_burst=100)
    with FaultServer(rate_limits={KEY_1: limit}, clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        body = {"max_completion_tokens": 71}  # 30 bytes: 71 + 7 = 78 tokens
        assert _post(client, server, json=body).status_code == 200
        refused = _post(client, server, json=body)
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "tokens"
        assert refused.headers["retry-after-ms"] == "5600"  # 56 tokens to earn at 10 per s
        assert refused.headers["x-ratelimit-remaining-requests"] == "9"
        too_big = _post(client, server, json={"max_tokens": 500})
        assert too_big.status_code == 429 and too_big.headers["x-should-retry"] == "false"
        assert "retry-after" not in too_big.headers
        clock.now += 5.6
        assert _post(client, server, json=body).status_code == 200
        assert server.rate_stats() == {KEY_1: (2, 2)}


def test_keys_are_independent_and_read_from_every_place() -> None:
    """Each key has its own budget; the key is found in Bearer, x-api-key, api-key,
    x-goog-api-key or ?key=, and a key without a limit is not limited nor counted."""
    clock = Clock()
    keys = ["k-bearer-0001", "k-xapi-00002", "k-api-000003", "k-goog-00004", "k-query-0005"]
    places: list[dict[str, Any]] = [
        {"headers": {"Authorization": "Bearer k-bearer-0001"}},
        {"headers": {"x-api-key": "k-xapi-00002"}},
        {"headers": {"api-key": "k-api-000003"}},
        {"headers": {"x-goog-api-key": "k-goog-00004"}},
        {"params": {"key": "k-query-0005"}},
    ]
    limits = {key: RateLimit(rpm=60) for key in keys}
    with FaultServer(rate_limits=limits, clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        for place in places:
            assert client.post(server.base_url + "/x", json={}, **place).status_code == 200
        for place in places:
            assert client.post(server.base_url + "/x", json={}, **place).status_code == 429
        other = _post(client, server, key="k-unlimited-1")
        assert other.status_code == 200 and "x-ratelimit-limit-requests" not in other.headers
        assert server.rate_stats() == dict.fromkeys(keys, RateStats(1, 1))


def test_catch_all_limits_every_other_key_on_its_own() -> None:
    """default_rate_limit gives each unnamed key (and keyless requests, together) its own
    budget; a named key keeps its own limit."""
    clock = Clock()
    with FaultServer(rate_limits={KEY_1: RateLimit(rpm=60, burst=3)},
                     default_rate_limit=RateLimit(rpm=60), clock=clock,
                     responder=lambda r: OK) as server, httpx2.Client() as client:
        codes = {key: [_post(client, server, key=key).status_code for _ in range(3)]
                 for key in (KEY_1, KEY_2, "sk-other-key-99", None)}
        assert codes == {KEY_1: [200, 200, 200], KEY_2: [200, 429, 429],
                         "sk-other-key-99": [200, 429, 429], None: [200, 429, 429]}
        assert server.rate_stats()[None] == (1, 2)


def test_limit_key_later_and_reset() -> None:
    """limit_key starts limiting a key at once, with a full budget; reset() refills every
    budget and zeroes the counts, the limits staying."""
    clock = Clock()
    with FaultServer(clock=clock, responder=lambda r: OK) as server, httpx2.Client() as client:
        assert _post(client, server).status_code == 200
        assert server.rate_stats() == {}
        server.limit_key(KEY_1, rpm=30)
        assert [_post(client, server).status_code for _ in range(2)] == [200, 429]
        server.limit_key(None, rpm=30, burst=2)
        assert [_post(client, server, key=None).status_code for _ in range(3)] == [200, 200, 429]
        server.reset()
        assert server.rate_stats() == {}
        assert _post(client, server).status_code == 200


def test_no_header_style() -> None:
    """rate_limit_headers=None: no budget headers, but a 429 still says when to retry."""
    clock = Clock()
    with FaultServer(rate_limits={KEY_1: RateLimit(rpm=60)}, rate_limit_headers=None,
                     clock=clock, responder=lambda r: OK) as server, httpx2.Client() as client:
        ok = _post(client, server)
        refused = _post(client, server)
        assert not [name for name in ok.headers if "ratelimit" in name]
        assert not [name for name in refused.headers if "ratelimit" in name]
        assert refused.status_code == 429 and refused.headers["retry-after-ms"] == "1000"


def test_headers_added_to_every_kind_of_answer() -> None:
    """Streams and held replies carry the budget headers too; a scripted reply's own
    header of the same name wins."""
    clock = Clock()
    go = threading.Event()
    go.set()
    with FaultServer(rate_limits={KEY_1: RateLimit(rpm=60, burst=9)}, clock=clock) as server, \
            httpx2.Client() as client:
        server.script([
            Stream(["data: {}", ""]),
            Hold(release=go, then=Reply(200, json={})),
            Reply(200, json={}, headers={"X-RateLimit-Limit-Requests": "7"}),
        ])
        assert [_post(client, server).headers["x-ratelimit-remaining-requests"]
                for _ in range(2)] == ["8", "7"]
        assert _post(client, server).headers["x-ratelimit-limit-requests"] == "7"


def test_keys_are_masked_and_limits_checked() -> None:
    """The limiter's repr shows only a key's last 4 characters; bad limits are refused."""
    limiter = RateLimiter({KEY_1: RateLimit(rpm=1), None: RateLimit(rpm=1), "short": RateLimit(rpm=1)})
    assert KEY_1 not in repr(limiter) and "...abcd" in repr(limiter) and "short" not in repr(limiter)
    assert mask_key(KEY_1) == "...abcd" and mask_key(None) == "<no key>"
    with pytest.raises(ValueError, match="rpm, tpm"):
        RateLimit()
    with pytest.raises(ValueError, match="rpm"):
        RateLimit(rpm=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(rpm=1, burst=0)
    with pytest.raises(ValueError, match="rate_limit_headers"):
        FaultServer(rate_limit_headers="azure")  # type: ignore[arg-type]


def test_request_key_and_tokens() -> None:
    """A key from a non-Bearer Authorization is not taken; tokens ignore odd max_tokens."""
    basic = RecordedRequest(method="GET", path="/", query={}, body=b"",
                            headers={"authorization": "Basic abc"}, received_at=0, connection=1)
    assert request_key(basic) is None
    assert request_tokens(_request(body=b'{"max_tokens": true}')) == 5
    assert request_tokens(_request(body=b'{"max_tokens": -3, "x": 1}')) == 6
    assert request_tokens(_request(body=b"\xff" * 40)) == 10


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_durations_round_trip(seconds: float) -> None:
    """A reset written as a duration reads back no earlier, and at most 1 ms later."""
    read = parse_reset(go_duration(seconds))
    assert read is not None
    assert seconds - 1e-9 <= read <= seconds + 0.001 + 1e-9


@settings(max_examples=200, deadline=None)
@given(rpm=st.integers(1, 6000), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1,
                     max_size=60))
def test_gcra_never_exceeds_the_rate_and_honours_its_retry_after(
    rpm: int, burst: int, gaps: list[float]
) -> None:
    """Between any two accepted requests i < j: j - i + 1 <= burst + (t_j - t_i) * rpm / 60;
    and a request sent exactly the retry-after-ms of a refusal later is accepted."""
    clock = Clock(0.0)
    limiter = RateLimiter({KEY_1: RateLimit(rpm=rpm, burst=burst)}, clock=clock)
    accepted: list[float] = []
    for gap in gaps:
        clock.now += gap
        refusal, _ = limiter.admit(_request())
        if refusal is None:
            accepted.append(clock.now)
            continue
        wait = int(refusal.headers["retry-after-ms"]) / 1000
        assert wait > 0
        clock.now += wait
        assert limiter.admit(_request()).refusal is None
        accepted.append(clock.now)
    interval = 60 / rpm
    for i, start in enumerate(accepted):
        for j in range(i + 1, len(accepted)):
            assert j - i + 1 <= burst + (accepted[j] - start) / interval + 1e-6
    assert limiter.stats()[KEY_1].accepted == len(accepted)
    assert math.isfinite(sum(accepted))

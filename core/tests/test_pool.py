"""Pools against loopback servers: how each strategy picks, failover and what never fails
over, waiting when every member is paused, the deadline and the retry budget across
members, members added and removed while calls run, health, and the options a pool refuses.

Each member has its own FaultServer, answering with its own letter ("A", "B"...), so a
call's text says which member served it. Times are only checked from below."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import _echo_plugin
import pytest
from _threads import thread, until
from ipfs_accel import (
    AuthenticationError,
    ConfigurationError,
    OverloadedError,
    Pool,
    QueueFullError,
    RateLimitError,
    Registry,
    TimeoutError,
    TransportError,
)
from ipfs_accel import _endpoint as endpoint_module
from ipfs_accel.testing import Drop, FaultServer, Hang, Hold, Reply

MSG = [{"role": "user", "content": "hi"}]
FAST = {"initial_retry_delay": 0.01, "max_retry_delay": 0.05, "retry_jitter": 0}
LETTERS = "ABC"


def body(text: str, usage: tuple[int, int] = (3, 2)) -> dict[str, Any]:
    return {"model": "echo-1", "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}


def failing(status: int, retry_after: float | None = None, code: str | None = None) -> Reply:
    error: dict[str, Any] = {"message": f"status {status}"}
    if code is not None:
        error["code"] = code
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return Reply(status, json={"error": error}, headers=headers)


def dead_url() -> str:
    """A loopback URL where nothing listens (a port bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def servers() -> Iterator[list[FaultServer]]:
    """Three servers; each answers every unscripted request with its letter."""
    with contextlib.ExitStack() as stack:
        out = []
        for letter in LETTERS:
            reply = Reply(200, json=body(letter))
            out.append(stack.enter_context(FaultServer(responder=lambda r, reply=reply: reply)))
        yield out


class Setup:
    """An echo Backend, one endpoint per server, and the pool of them."""

    def __init__(self, urls: list[str], strategy: str, settings: list[dict[str, Any]],
                 weights: list[float] | None, options: dict[str, Any]) -> None:
        self.registry = Registry(plugins=[_echo_plugin], entry_points=False, environ={})
        self.backend = self.registry.get("echo")
        self.eids = [
            self.backend.create_endpoint(base_url=url, api_key=f"k{i}", max_retries=0, **own)
            for i, (url, own) in enumerate(zip(urls, settings, strict=True))
        ]
        members: list[tuple[Any, ...]] = [
            ("echo", eid) if weights is None else ("echo", eid, weights[i])
            for i, eid in enumerate(self.eids)]
        self.pool = self.registry.pool(members, strategy=strategy, **{**FAST, **options})

    def member(self, i: int) -> Any:
        return self.pool.get_stats().members[f"echo/{self.eids[i]}"]

    def endpoint(self, i: int) -> endpoint_module.Endpoint:
        return self.backend._endpoint(self.eids[i])


def make(servers: list[Any], strategy: str = "least-busy", *, n: int = 2,
         settings: list[dict[str, Any]] | dict[str, Any] | None = None,
         weights: list[float] | None = None, **options: Any) -> Setup:
    urls = [s if isinstance(s, str) else s.base_url for s in servers[:n]]
    own = settings if isinstance(settings, list) else [dict(settings or {}) for _ in urls]
    return Setup(urls, strategy, own, weights, options)






def texts(pool: Pool, n: int) -> str:
    return "".join(pool.chat(MSG).text for _ in range(n))


def conserved(s: Setup) -> None:
    """The pool's counters against its members' (nothing in flight)."""
    stats = s.pool.get_stats()
    members = list(stats.members.values())
    assert stats.in_flight == 0 and stats.calls == stats.ok + stats.failed
    assert stats.attempts == sum(m.total_requests for m in members)
    assert stats.ok == sum(m.successful_requests for m in members)
    assert stats.attempts - stats.ok == sum(m.failed_requests for m in members)
    assert stats.attempts == stats.calls - stats.unsent + stats.retries


# -- strategies ---------------------------------------------------------------------------


def test_round_robin_alternates(servers):
    """round-robin sends the calls to each member in turn, the first member first."""
    s = make(servers, "round-robin", n=3)
    got = texts(s.pool, 9)
    assert got == "ABC" * 3
    conserved(s)


def test_weighted_is_proportional_and_smoothly_interleaved(servers):
    """weighted 3:1 gives A three calls in four, never the light member's turn late:
    A A B A, repeated (nginx's smooth weighted round-robin)."""
    s = make(servers, "weighted", weights=[3, 1])
    assert texts(s.pool, 8) == "AABAAABA"


def test_weighted_three_members_proportions(servers):
    """weighted 5:1:1 over 14 calls: 10, 2 and 2, the light ones spread out."""
    s = make(servers, "weighted", n=3, weights=[5, 1, 1])
    got = texts(s.pool, 14)
    assert (got.count("A"), got.count("B"), got.count("C")) == (10, 2, 2)
    assert got[:7] == "AABACAA"  # nginx's own example sequence for {5, 1, 1}


def test_ordered_takes_the_first_and_spills_when_it_is_paused(servers):
    """ordered sends everything to the first member; a 429 pausing it moves the calls to
    the next until the pause ends."""
    s = make(servers, "ordered")
    assert texts(s.pool, 3) == "AAA"
    servers[0].script([failing(429, retry_after=30)])
    assert texts(s.pool, 3) == "BBB"  # the first failed over, the others skip the paused A
    assert len(servers[0].requests) == 4
    assert s.member(0).state == "paused"


def test_ordered_spills_when_the_first_is_full(servers):
    """ordered: while the first member's only slot is busy, calls go to the next; then
    back to the first."""
    go = threading.Event()
    s = make(servers, "ordered", settings=[{"max_concurrent_requests": 1}, {}])
    servers[0].script([Hold(release=go, then=Reply(200, json=body("A")))])
    t, out = thread(lambda: s.pool.chat(MSG).text)
    assert servers[0].wait_for(1)
    assert texts(s.pool, 2) == "BB"
    go.set()
    t.join(10)
    assert out == ["A"]
    assert texts(s.pool, 1) == "A"


def test_least_busy_spreads_ties_and_avoids_the_busy_member(servers):
    """least-busy: an idle pool spreads its calls; a member with a call in flight is
    passed over for an idle one."""
    s = make(servers)
    got = texts(s.pool, 4)
    assert sorted(got) == ["A", "A", "B", "B"] and got[0] != got[1]
    go = threading.Event()
    servers[0].script([Hold(release=go, then=Reply(200, json=body("A")))])
    servers[1].script([Hold(release=go, then=Reply(200, json=body("B")))])
    t, out = thread(lambda: s.pool.chat(MSG).text)
    until(lambda: servers[0].in_progress + servers[1].in_progress == 1, "one call held")
    busy = 0 if servers[0].in_progress else 1
    idle = "AB"[1 - busy]
    servers[1 - busy].reset()  # its Hold is not needed: the idle one answers at once
    assert texts(s.pool, 3) == idle * 3
    go.set()
    t.join(10)
    assert out == ["AB"[busy]]


def test_latency_tries_each_then_prefers_the_fastest(servers):
    """latency: each member is tried once, then every call goes to the member with the
    lowest moving average."""
    s = make(servers, "latency")
    servers[0].script([Reply(200, json=body("A"), delay=0.2)] * 10)
    assert sorted(texts(s.pool, 2)) == ["A", "B"]
    for _ in range(4):
        fastest = min(s.pool._members, key=lambda m: m.latency or 0.0)
        assert s.pool.chat(MSG).text == "AB"[s.pool._members.index(fastest)]
    assert s.pool._members[0].latency is not None and s.pool._members[0].latency >= 0.2


# -- failover ------------------------------------------------------------------------------

FAILURES = {
    "503": failing(503),
    "500": failing(500),
    "429": failing(429, retry_after=30),
    "429-no-retry-after": failing(429),
    "quota": failing(429, code="insufficient_quota"),
    "drop": Drop(),
}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_member_failure_moves_the_call_to_another(servers, failure, use_async):
    """429, quota, overload, 5xx and transport failures of the first member move the
    call to the next one, with the same request ID; both attempts are counted where they ran."""
    s = make(servers, "ordered")
    servers[0].script([FAILURES[failure]])
    if use_async:
        result = asyncio.run(s.pool.achat(MSG, request_id="rid-1"))
    else:
        result = s.pool.chat(MSG, request_id="rid-1")
    assert result.text == "B" and result.request_id == "rid-1"
    ids = [r.header("x-request-id") for srv in servers[:2] for r in srv.requests]
    assert ids == ["rid-1", "rid-1"]
    stats = s.pool.get_stats()
    assert (stats.calls, stats.ok, stats.attempts, stats.failovers) == (1, 1, 2, 1)
    assert (s.member(0).failed_requests, s.member(1).successful_requests) == (1, 1)
    conserved(s)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_refused_connection_moves_the_call(servers, use_async):
    """A member where nothing listens: the call goes on to the next one."""
    s = make([dead_url(), servers[1]], "ordered")
    call = s.pool.achat(MSG) if use_async else None
    result = asyncio.run(call) if call is not None else s.pool.chat(MSG)
    assert result.text == "B"
    assert s.member(0).failed_requests == 1
    conserved(s)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_timeout_moves_the_call(servers, use_async):
    """An attempt that times out on one member is tried on another."""
    s = make(servers, "ordered", settings=[{"timeout": 0.2}, {}])
    servers[0].script([Hang(30)])
    result = asyncio.run(s.pool.achat(MSG)) if use_async else s.pool.chat(MSG)
    assert result.text == "B"
    assert s.pool.get_stats().failovers == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_an_auth_failure_disables_the_member_and_the_call_goes_on(servers, use_async):
    """401 on a member disables it; the call, and every later one, goes to another."""
    s = make(servers, "ordered")
    servers[0].script([failing(401)])
    for _ in range(3):
        result = asyncio.run(s.pool.achat(MSG)) if use_async else s.pool.chat(MSG)
        assert result.text == "B"
    assert len(servers[0].requests) == 1
    stats = s.pool.get_stats()
    assert (stats.disabled, stats.ready) == (1, 1)
    assert s.member(0).state == "disabled"
    s.backend.update_endpoint(s.eids[0], api_key="new")  # a new key brings it back
    assert s.pool.chat(MSG).text == "A"


def test_an_auth_failure_of_the_only_member_ends_the_call(servers):
    """A one-member pool whose key is refused fails with the AuthenticationError."""
    s = make(servers, n=1)
    servers[0].script([failing(401)])
    with pytest.raises(AuthenticationError) as info:
        s.pool.chat(MSG)
    assert info.value.attempts == 1
    assert len(servers[0].requests) == 1


def test_failover_prefers_another_member_over_the_same_one(servers):
    """A member that failed is not tried again while another is ready, even when the
    strategy would pick it first."""
    s = make(servers, "ordered")
    servers[0].script([failing(503), Reply(200, json=body("A"))])
    assert s.pool.chat(MSG).text == "B"
    assert texts(s.pool, 1) == "A"  # the next call starts from the first again


def test_one_member_retries_itself_with_backoff(servers):
    """A one-member pool retries a 503 on that member, within the budget."""
    s = make(servers, n=1)
    servers[0].script([failing(503), failing(503), Reply(200, json=body("A"))])
    assert s.pool.chat(MSG).text == "A"
    stats = s.pool.get_stats()
    assert (stats.attempts, stats.retries, stats.failovers) == (3, 2, 0)


# -- every member paused, the deadline, the budget ------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_when_every_member_is_paused_the_call_waits_and_succeeds(servers, use_async):
    """Both members answer 429 with Retry-After 0.2 s: the call waits for the first back."""
    s = make(servers)
    for srv in servers[:2]:
        srv.script([failing(429, retry_after=0.2)])
    started = time.monotonic()
    result = asyncio.run(s.pool.achat(MSG)) if use_async else s.pool.chat(MSG)
    assert result.text in ("A", "B")
    assert time.monotonic() - started >= 0.2 - 0.01
    stats = s.pool.get_stats()
    assert stats.waits >= 1 and stats.wait_seconds > 0
    assert (stats.ok, stats.attempts, stats.failovers) == (1, 3, 2)
    conserved(s)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_wait_longer_than_max_wait_fails_at_once(servers, use_async):
    """Every member paused for longer than the pool's max_wait: RateLimitError, no wait."""
    s = make(servers, max_wait=1.0)
    for srv in servers[:2]:
        srv.script([failing(429, retry_after=30)])
    with pytest.raises(RateLimitError, match="max_wait") as info:
        asyncio.run(s.pool.achat(MSG)) if use_async else s.pool.chat(MSG)
    assert info.value.retry_after is not None and info.value.retry_after > 1.0
    assert info.value.attempts == 2
    stats = s.pool.get_stats()
    assert (stats.failed, stats.waits, stats.attempts) == (1, 0, 2)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_the_pool_deadline_bounds_a_hanging_attempt(servers, use_async):
    """A pool deadline ends a call whose attempt hangs, and it is not failed over."""
    s = make(servers, "ordered", deadline=0.3)
    servers[0].script([Hang(30)])
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(s.pool.achat(MSG)) if use_async else s.pool.chat(MSG)
    assert time.monotonic() - started >= 0.3 - 0.01
    assert len(servers[1].requests) == 0
    assert s.member(0).state == "ready"  # the call's deadline says nothing of the member


def test_a_pause_past_the_deadline_fails_at_once(servers):
    """Every member paused beyond the pool's deadline: the call ends now with the 429."""
    s = make(servers, deadline=5.0)
    for srv in servers[:2]:
        srv.script([failing(429, retry_after=30)])
    with pytest.raises(RateLimitError):
        s.pool.chat(MSG)
    assert s.pool.get_stats().waits == 0


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_max_retries_is_one_budget_across_members(servers, use_async):
    """max_retries=4 over three members answering 503: five attempts in all, the error
    says so, and each was counted on the member where it ran."""
    s = make(servers, "round-robin", n=3, max_retries=4)
    for srv in servers:
        srv.script([failing(503)] * 5)
    with pytest.raises(OverloadedError) as info:
        asyncio.run(s.pool.achat(MSG)) if use_async else s.pool.chat(MSG)
    assert info.value.attempts == 5
    assert sum(len(srv.requests) for srv in servers) == 5
    stats = s.pool.get_stats()
    assert (stats.attempts, stats.retries, stats.failed) == (5, 4, 1)
    assert stats.failovers == 4  # never the same member twice in a row while others are ready
    conserved(s)


def test_full_queues_everywhere_fail_after_one_attempt_each(servers):
    """Every member's slot busy and no queue: the call tries each member once and fails
    with QueueFullError, rather than spinning through its retry budget."""
    go = threading.Event()
    s = make(servers, "ordered", settings={"max_concurrent_requests": 1, "queue_size": 0})
    for srv, letter in zip(servers[:2], "AB", strict=True):
        srv.script([Hold(release=go, then=Reply(200, json=body(letter)))])
    held = []
    for srv in servers[:2]:  # one at a time: the second finds A busy and goes to B
        held.append(thread(lambda: s.pool.chat(MSG).text))
        assert srv.wait_for(1)
    with pytest.raises(QueueFullError) as info:
        s.pool.chat(MSG)
    assert info.value.attempts == 2
    go.set()
    for t, _ in held:
        t.join(10)
    assert sorted(out[0] for _, out in held) == ["A", "B"]
    assert (s.member(0).rejected, s.member(1).rejected) == (1, 1)
    conserved(s)


def test_a_call_no_member_can_take_in_time_ends_unsent(servers):
    """A call arriving while every member is paused past max_wait fails before any
    attempt: counted as unsent, with no attempt on the error."""
    s = make(servers, max_wait=1.0)
    for srv in servers[:2]:
        srv.script([failing(429, retry_after=30)])
    with pytest.raises(RateLimitError):
        s.pool.chat(MSG)
    with pytest.raises(RateLimitError, match="max_wait") as info:
        s.pool.chat(MSG)
    assert info.value.attempts == 0
    stats = s.pool.get_stats()
    assert (stats.calls, stats.failed, stats.unsent, stats.attempts) == (2, 2, 1, 2)
    assert (stats.paused, stats.ready) == (2, 0)
    conserved(s)


# -- members come and go ------------------------------------------------------------------


def test_members_added_and_removed_while_calls_run(servers):
    """A member added while calls are held takes new calls; a member removed keeps its
    running calls, which finish where they are, and takes no new ones."""
    go = threading.Event()
    s = make(servers, "ordered", n=1, settings=[{"max_concurrent_requests": 2}])
    held = Reply(200, json=body("A"))
    servers[0].script([Hold(release=go, then=held), Hold(release=go, then=held)])
    running = [thread(lambda: s.pool.chat(MSG).text) for _ in range(2)]
    assert servers[0].wait_for(2)
    b = s.backend.create_endpoint(base_url=servers[1].base_url, api_key="kb", max_retries=0)
    s.pool.add("echo", b)
    assert s.pool.chat(MSG).text == "B"  # A is full
    s.pool.remove("echo", s.eids[0])
    assert s.pool.members() == [f"echo/{b}"]
    go.set()
    for t, out in running:
        t.join(10)
        assert out == ["A"]
    assert texts(s.pool, 2) == "BB"
    stats = s.pool.get_stats()
    assert (stats.calls, stats.ok, stats.attempts) == (5, 5, 5)


def test_members_churn_under_concurrent_calls(servers):
    """Threads calling while members are added and removed: every call ends once, with
    a result (a member always remains)."""
    s = make(servers, n=1)
    c = s.backend.create_endpoint(base_url=servers[2].base_url, api_key="kc", max_retries=0)
    b = s.backend.create_endpoint(base_url=servers[1].base_url, api_key="kb", max_retries=0)
    barrier = threading.Barrier(5)
    results: list[Any] = []
    lock = threading.Lock()

    def caller() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                got: Any = s.pool.chat(MSG).text
            except Exception as exc:
                got = exc
            with lock:
                results.append(got)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    barrier.wait()
    for _ in range(10):
        s.pool.add("echo", b)
        s.pool.add(s.backend, c)
        s.pool.remove("echo", b)
        s.pool.remove(s.backend, c)
    for t in threads:
        t.join(30)
    assert len(results) == 40 and set(results) <= {"A", "B", "C"}
    stats = s.pool.get_stats()
    assert (stats.calls, stats.ok, stats.in_flight) == (40, 40, 0)


def test_adding_a_member_twice_or_removing_a_stranger_is_refused(servers):
    """The same endpoint twice, or removing one that is not a member: ConfigurationError."""
    s = make(servers)
    with pytest.raises(ConfigurationError, match="already a member"):
        s.pool.add("echo", s.eids[0])
    with pytest.raises(ConfigurationError, match="not a member"):
        s.pool.remove("echo", "nope")
    with pytest.raises(ConfigurationError):
        s.pool.add("echo", "no-such-endpoint")
    with pytest.raises(ConfigurationError, match="weight"):
        s.pool.add("echo", s.backend.create_endpoint(base_url="http://x"), 0)


# -- health ------------------------------------------------------------------------------


def test_a_dead_member_gets_unhealthy_after_attempts_then_one_probe(servers):
    """A member that drops every connection gets unhealthy_after attempts, then none
    during its cooldown, then exactly one probe while other calls go elsewhere."""
    s = make(servers, "ordered", settings=[{"unhealthy_after": 2, "cooldown": 1.0}, {}])
    servers[0].responder = lambda r: Drop()
    assert texts(s.pool, 2) == "BB"
    assert len(servers[0].requests) == 2
    assert s.member(0).state == "unhealthy"
    a = s.endpoint(0)
    for _ in range(4):  # calls picked during the cooldown all go to B
        if a.ready_at(time.monotonic()) <= time.monotonic():
            break
        assert texts(s.pool, 1) == "B"
        assert len(servers[0].requests) == 2
    until(lambda: a.ready_at(time.monotonic()) <= time.monotonic(), "the cooldown ended")
    go = threading.Event()
    servers[0].responder = lambda r: Reply(200, json=body("A"))
    servers[0].script([Hold(release=go, then=Reply(200, json=body("A")))])
    t, out = thread(lambda: s.pool.chat(MSG).text)
    assert servers[0].wait_for(3)
    assert s.member(0).state == "probing"
    assert texts(s.pool, 3) == "BBB"  # the probe is out: no second attempt on A
    go.set()
    t.join(10)
    assert out == ["A"] and len(servers[0].requests) == 3
    assert s.member(0).state == "ready"
    assert texts(s.pool, 1) == "A"


def test_a_probe_taken_by_another_call_meanwhile_makes_this_one_wait(servers, monkeypatch):
    """Two calls see the cooled-down member ready; the one that loses the probe to the
    other waits for the outcome instead of failing."""
    s = make(servers, n=1, settings={"unhealthy_after": 1, "cooldown": 0.01}, max_retries=0)
    servers[0].script([Drop()])
    with pytest.raises(TransportError):
        s.pool.chat(MSG)
    until(lambda: s.endpoint(0).ready_at(time.monotonic()) <= time.monotonic(), "cooled down")
    real = endpoint_module.Endpoint.take

    def lost_race(self: endpoint_module.Endpoint) -> bool:
        real(self)  # another call takes the probe first
        return real(self)

    monkeypatch.setattr(endpoint_module.Endpoint, "take", lost_race)
    run = s.pool.begin("chat", "rid")
    got = s.pool.pick(run)
    assert isinstance(got, float) and got > 0
    monkeypatch.undo()
    s.endpoint(0).released()  # the other call's probe ends without an outcome
    s.pool.counter.ended(run.tally, ok=False, cancelled=False)


# -- what a pool accepts ----------------------------------------------------------------------


def test_endpoint_id_is_refused(servers):
    """A pool picks the endpoint: endpoint_id on any operation is a ConfigurationError."""
    s = make(servers)
    with pytest.raises(ConfigurationError, match="endpoint_id"):
        s.pool.chat(MSG, endpoint_id=s.eids[0])
    with pytest.raises(ConfigurationError, match="endpoint_id"):
        asyncio.run(s.pool.achat(MSG, endpoint_id=s.eids[0]))
    with pytest.raises(ConfigurationError, match="endpoint_id"):
        s.pool.stream_chat(MSG, endpoint_id=s.eids[0])
    assert s.pool.get_stats().calls == 0


@pytest.mark.parametrize(("options", "named"), [
    ({"strategy": "fastest"}, "fastest"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_wait": -1}, "max_wait"),
    ({"deadline": 0}, "deadline"),
    ({"backoff_factor": 0.5}, "backoff_factor"),
    ({"retry_jitter": 2}, "retry_jitter"),
    ({"max_retries": "many"}, "max_retries"),
    ({"max_retires": 3}, "max_retires"),
])
def test_bad_strategy_or_options_are_refused_by_name(servers, options, named):
    """An unknown strategy, an invalid or an unknown option: ConfigurationError naming it."""
    reg = Registry(plugins=[_echo_plugin], entry_points=False, environ={})
    eid = reg.get("echo").create_endpoint(base_url=servers[0].base_url, api_key="k")
    with pytest.raises(ConfigurationError, match=named):
        reg.pool([("echo", eid)], **options)


def test_members_named_by_backend_are_the_registry_s_own(servers):
    """A member named "echo" is Registry.get("echo")'s Backend; a Pool made without a
    Registry needs the Backend itself; a bad member spec is refused."""
    reg = Registry(plugins=[_echo_plugin], entry_points=False, environ={})
    b = reg.get("echo")
    eid = b.create_endpoint(base_url=servers[0].base_url, api_key="k")
    pool = reg.pool([("echo", eid)])
    assert pool._members[0].backend is reg.get("echo") is b
    other = reg.fresh("echo")
    oid = other.create_endpoint(base_url=servers[1].base_url, api_key="k")
    with pytest.raises(ConfigurationError):
        pool.add("echo", oid)  # not an endpoint of the Registry's own echo Backend
    pool.add(other, oid)
    assert len(pool.members()) == 2
    with pytest.raises(ConfigurationError, match="Registry"):
        Pool([("echo", eid)])
    with pytest.raises(ConfigurationError, match="backend"):
        Pool([(42, eid)])
    assert repr(pool).startswith("<Pool least-busy")

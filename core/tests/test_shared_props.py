"""The shared limiter's arithmetic against a model: whatever the budgets, token counts and
usage corrections, Redis's admit script answers exactly what GCRA on its own clock says
(the model is fed the clock reading each answer carries)."""

from __future__ import annotations

import secrets
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipfs_accel._shared_scripts import ADMIT, SETTLE
from ipfs_accel.testing import RedisServer, import_or_skip

redis_py = import_or_skip("redis")  # shared limits' client: a skip here, a failure under CI


def _kept(x: float) -> float:
    """A number as Redis keeps it from a script (Lua's tostring: 14 significant digits)."""
    return float(f"{x:.14g}")


class Model:
    """GCRA with no burst, booking ahead: one theoretical arrival time per budget, in ms;
    a pause; and while the server says its requests budget is spent, attempts one reset
    apart from when it is back."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.ri = 60000 / rpm if rpm else 0.0
        self.ti = 60000 / tpm if tpm else 0.0
        self.r = 0.0
        self.t = 0.0
        self.until = 0.0
        self.sf = self.sg = self.sn = 0.0

    def admit(self, now: float, tokens: float) -> tuple[float, str]:
        if self.until > now:
            return self.until - now, "pause"
        if not (self.ri or self.ti or self.sf):
            return 0.0, "go"
        start, why = now, "booked"
        if self.ri and self.r > start:
            start = self.r
        if self.ti and self.t > start:
            start = self.t
        if self.sf:
            server = max(self.sf, self.sn)
            if server > start:
                start, why = server, "spent"
            self.sn = _kept(start + self.sg)
        if self.ri:
            self.r = _kept(start + self.ri)
        if self.ti:
            self.t = _kept(start + tokens * self.ti)
        return (start - now, why) if start > now else (0.0, "go")

    def settle(self, now: float, delta: float, pause: int, spent: int) -> None:
        if delta and self.t > 0:
            self.t = _kept(self.t + delta)
        if pause > 0 and now + pause > self.until:
            self.until = _kept(now + pause)
        if spent > 0:
            self.sf, self.sg = _kept(max(self.sf, now + spent)), spent
        elif spent < 0:
            self.sf = self.sg = self.sn = 0.0


ops = st.lists(st.one_of(
    st.tuples(st.just("admit"), st.integers(0, 4000)),
    st.tuples(st.just("settle"), st.integers(-3000, 3000)),
    st.tuples(st.just("pause"), st.integers(1, 2000)),
    st.tuples(st.just("spent"), st.integers(1, 3000)),
    st.tuples(st.just("back"), st.just(-1)),
), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rpm=st.none() | st.sampled_from([1.0, 7.0, 60.0, 600.0, 60000.0]),
       tpm=st.none() | st.sampled_from([100.0, 1000.0, 90000.0]), steps=ops)
def test_admit_answers_as_the_model(redis: RedisServer, rpm: float | None, tpm: float | None,
                                    steps: list[tuple[str, int]]) -> None:
    client: Any = redis_py.Redis.from_url(redis.url)
    base = f"ipfs-accel:{{prop:{secrets.token_hex(6)}}}"
    keys = [f"{base}:{part}" for part in ("budget", "pause", "leases", "queue", "alive",
                                          "health")]
    model = Model(rpm, tpm)

    def clock(sec: Any, usec: Any) -> float:  # the script's clock, as it read it
        return int(sec) * 1000 + int(usec) / 1000

    try:
        for op, n in steps:
            if op == "admit":
                args = [repr(model.ri), repr(model.ti), n, 0, "lease", 10000, 0, 1000]
                wait, why, _, sec, usec, _held, _health = client.eval(ADMIT, 6, *keys, *args)
                want_wait, want_why = model.admit(clock(sec, usec), n)
                assert why.decode() == want_why
                assert abs(float(wait) - want_wait) <= 1e-6
            else:
                delta = n * model.ti if op == "settle" else 0.0
                pause = n if op == "pause" else 0
                spent = n if op in ("spent", "back") else 0
                sec, usec = client.eval(SETTLE, 6, *keys, "", repr(float(delta)), pause,
                                        "429", spent, "", 0, 0, "turn")
                model.settle(clock(sec, usec), delta, pause, spent)
    finally:
        client.delete(*keys)
        client.close()

"""A pool's members and how one is picked for each attempt.

Ready members only: one that is paused, cooling down after failures, disabled, or whose
one probe is already out is skipped while another is ready. The strategies choose among
the ready ones:

- ``least-busy`` (default): the member where the call would go soonest by its pacing
  (``rpm``, ``tpm``, the server's pace: a paced member holds a call rather than refuse it,
  so pacing makes no member unready), then the fewest calls in flight and queued relative
  to the member's concurrency; ties go round in turn, so an idle pool spreads its calls.
- ``round-robin``: each member in turn.
- ``weighted``: in proportion to the members' weights, smoothly interleaved (nginx's smooth
  weighted round-robin: deterministic, never two heavy picks in a row when a light one is due).
- ``latency``: the lowest moving average of successful attempts' latency; members not yet
  measured first, so each is tried.
- ``ordered``: the first member (in the order given) that is ready, has a free slot and
  would send at once (its pacing not holding the call); when each one with a free slot is
  paced, the one that would send soonest; when all ready ones are full, the first ready one
  (its queue takes the call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backend import Backend
    from ._endpoint import Endpoint

__all__ = ["STRATEGIES", "Member", "Picker", "takes"]

STRATEGIES = ("least-busy", "round-robin", "weighted", "latency", "ordered")
_monotonic = time.monotonic
_ALPHA = 0.3  # weight of the newest latency in the moving average


class Member:
    """One endpoint of one backend, as a pool sees it."""

    __slots__ = ("backend", "current", "endpoint_id", "key", "latency", "weight")

    def __init__(self, backend: Backend, endpoint_id: str, weight: float = 1.0) -> None:
        self.backend = backend
        self.endpoint_id = endpoint_id
        self.key = f"{backend.name}/{endpoint_id}"
        self.weight = weight
        self.current = 0.0  # smooth weighted round-robin's running score
        self.latency: float | None = None  # moving average of successful attempts, seconds

    @property
    def endpoint(self) -> Endpoint:
        """The live endpoint (looked up each time: it may have been removed)."""
        return self.backend._endpoint(self.endpoint_id)

    def measured(self, seconds: float) -> None:
        """A successful attempt took ``seconds``."""
        last = self.latency
        self.latency = seconds if last is None else last + _ALPHA * (seconds - last)

    def __repr__(self) -> str:
        return f"<Member {self.key}>"


class Picker:
    """Chooses among ready members by one strategy. Called under the pool's lock."""

    __slots__ = ("_choose", "_turn", "strategy")

    def __init__(self, strategy: str) -> None:
        choose: dict[str, Callable[[Sequence[Member], Sequence[Endpoint]], Member]] = {
            "least-busy": self._least_busy,
            "round-robin": self._round_robin,
            "weighted": self._weighted,
            "latency": self._latency,
            "ordered": self._ordered,
        }
        self.strategy = strategy
        self._choose = choose[strategy]
        self._turn = 0

    def choose(self, ready: Sequence[Member], endpoints: Sequence[Endpoint]) -> Member:
        """One of ``ready`` (non-empty; in pool order), whose live endpoints are
        ``endpoints``."""
        if len(ready) == 1:
            return ready[0]
        return self._choose(ready, endpoints)

    def _next_turn(self) -> int:
        turn = self._turn  # 0 first: round-robin starts with the first member
        self._turn = turn + 1
        return turn

    def _least_busy(self, ready: Sequence[Member], endpoints: Sequence[Endpoint]) -> Member:
        now = _monotonic()
        keys = [(e.eta(now), e.load) for e in endpoints]
        low = min(keys)
        tied = [m for m, key in zip(ready, keys, strict=True) if key == low]
        return tied[self._next_turn() % len(tied)]

    def _round_robin(self, ready: Sequence[Member], endpoints: Sequence[Endpoint]) -> Member:
        return ready[self._next_turn() % len(ready)]

    def _weighted(self, ready: Sequence[Member], endpoints: Sequence[Endpoint]) -> Member:
        total = 0.0
        best = ready[0]
        for member in ready:
            member.current += member.weight
            total += member.weight
            if member.current > best.current:
                best = member
        best.current -= total
        return best

    def _latency(self, ready: Sequence[Member], endpoints: Sequence[Endpoint]) -> Member:
        unmeasured = [m for m in ready if m.latency is None]
        if unmeasured:
            return unmeasured[self._next_turn() % len(unmeasured)]
        return min(ready, key=lambda m: m.latency or 0.0)

    def _ordered(self, ready: Sequence[Member], endpoints: Sequence[Endpoint]) -> Member:
        now = _monotonic()
        roomy = [(m, e) for m, e in zip(ready, endpoints, strict=True) if e.has_room]
        for member, endpoint in roomy:
            if endpoint.eta(now) <= now:
                return member  # the first that would send at once
        if roomy:  # every one with room is paced: the one that would send soonest
            return min(roomy, key=lambda pair: pair[1].eta(now))[0]
        return ready[0]


def takes(member: Member, operation: str, needs: frozenset[str]) -> bool:
    """Whether ``member``'s backend takes what a call needs in ``operation`` (tools, a
    response format, images); one that declares no features decides for itself."""
    features = member.backend.info.features
    return features is None or needs <= features.get(operation, frozenset())

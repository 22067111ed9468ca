"""Anthropic's rate-limit headers, read into :class:`~ipfs_accel.RateLimits`.

Every response carries, per budget, ``anthropic-ratelimit-<budget>-limit``, ``-remaining``
and ``-reset`` (an RFC 3339 time, ``2026-11-30T13:00:59Z``, when the budget is whole
again). The budgets: ``requests``; ``tokens`` (the most restrictive token limit in effect);
``input-tokens`` and ``output-tokens`` (the per-direction budgets, where they apply).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ipfs_accel import RateLimits, parse_count, parse_reset

__all__ = ["rate_limits"]

_PREFIX = "anthropic-ratelimit-"
_TOKEN_BUDGETS = ("tokens", "input-tokens", "output-tokens")

_Budget = tuple[int | None, int | None, float | None]  # limit, remaining, reset


def _budget(headers: Mapping[str, str], name: str, now: float | None) -> _Budget:
    return (parse_count(headers.get(f"{_PREFIX}{name}-limit")),
            parse_count(headers.get(f"{_PREFIX}{name}-remaining")),
            parse_reset(headers.get(f"{_PREFIX}{name}-reset"), now=now))


def _binding(budgets: list[_Budget]) -> _Budget:
    """The token budget that runs out first: the least remaining (the later reset on a
    tie); one that says nothing of its remainder only when none does."""
    told = [b for b in budgets if b != (None, None, None)]
    if not told:
        return None, None, None
    return min(told, key=lambda b: (math.inf if b[1] is None else b[1], -(b[2] or 0.0)))


def rate_limits(headers: Mapping[str, str], *, now: float | None = None) -> RateLimits | None:
    """The ``anthropic-ratelimit-*`` headers as :class:`~ipfs_accel.RateLimits`; ``None``
    when none can be read. A value that cannot be read leaves its field ``None``; never
    raises. Tokens are the binding budget of ``tokens``, ``input-tokens`` and
    ``output-tokens`` (see :func:`_binding`), its limit and reset with it. ``now`` is the
    current ``time.time()`` the reset times are counted from (for tests)."""
    try:
        requests = _budget(headers, "requests", now)
        tokens = _binding([_budget(headers, name, now) for name in _TOKEN_BUDGETS])
    except (TypeError, AttributeError):  # a mapping holding something other than text
        return None
    if requests == tokens == (None, None, None):
        return None
    return RateLimits(
        requests_limit=requests[0], requests_remaining=requests[1], requests_reset=requests[2],
        tokens_limit=tokens[0], tokens_remaining=tokens[1], tokens_reset=tokens[2],
    )

"""What a response's headers say of an endpoint's rate limits, as a plugin reads them."""

from __future__ import annotations

import msgspec

__all__ = ["RateLimits"]


class RateLimits(msgspec.Struct, kw_only=True, frozen=True):
    """What one response says about its endpoint's rate limits (``parse_rate_limits``).

    Every field is optional: a plugin fills what its API sends. ``*_limit`` is the budget
    (as the API counts it), ``*_remaining`` what is left of it now, and ``*_reset`` the
    seconds from now until the budget is whole again (parse the API's durations or times
    with :func:`~ipfs_accel.parse_reset`). Tokens are whichever token budget binds first
    (an API with separate input and output budgets reports the smaller remainder).
    When a budget is spent (remaining 0), the core holds the endpoint's new calls until
    its reset rather than sending them into a 429.
    """

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None

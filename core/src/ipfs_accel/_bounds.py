"""A moment a wait must end by, and which limit set it."""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = ["Bound", "Limit"]

Limit: TypeAlias = Literal["deadline", "attempt", "idle"]


class Bound:
    """``at`` (on ``time.monotonic``) and ``what`` set it: the call's ``"deadline"``, the
    ``"attempt"`` timeout, or the stream's ``"idle"`` limit."""

    __slots__ = ("at", "what")

    def __init__(self, at: float, what: Limit) -> None:
        self.at = at
        self.what: Limit = what

    def __repr__(self) -> str:
        return f"Bound({self.at!r}, {self.what!r})"

"""The one vocabulary of ``finish_reason``, and putting an API's own value in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._types import ChatResult, StreamChunk

__all__ = ["FINISH_REASONS", "fit_finish_reason", "normalize_finish_reason"]


FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "error", "other"})
"""The one vocabulary of ``finish_reason`` (OpenAI's, plus ``error`` and ``other``)."""


def normalize_finish_reason(native: str | None, table: Mapping[str, str]) -> str | None:
    """``native`` (an API's own stop reason) in the one vocabulary: by ``table`` (the API's
    values, in any case, to :data:`FINISH_REASONS`), as it is when already in it, else
    ``"other"``; ``None`` stays ``None``. Plugins keep ``native`` in ``native_finish_reason``.
    """
    if native is None:
        return None
    mapped = table.get(native)
    if mapped is None:
        low = native.lower()
        mapped = next((v for k, v in table.items() if k.lower() == low), None)
    if mapped is not None:
        return mapped
    return native if native in FINISH_REASONS else "other"


def fit_finish_reason(result: ChatResult | StreamChunk) -> None:
    """Hold the core's promise for any plugin: a ``finish_reason`` outside the vocabulary
    moves to ``native_finish_reason`` (unless the plugin set that) and becomes ``"other"``;
    a turn that ends with tool calls and says ``"stop"`` (Ollama, Gemini, some servers
    behind OpenAI's format) says ``"tool_calls"``."""
    reason = result.finish_reason
    if reason == "stop" and result.tool_calls:
        if result.native_finish_reason is None:
            result.native_finish_reason = reason
        result.finish_reason = reason = "tool_calls"
    if reason is not None and reason not in FINISH_REASONS:
        if result.native_finish_reason is None:
            result.native_finish_reason = reason
        result.finish_reason = "other"

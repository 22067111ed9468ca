"""Token usage of a call, as billed."""

from __future__ import annotations

import msgspec

__all__ = ["Usage"]


class Usage(msgspec.Struct, kw_only=True):
    """Token usage of one call, as billed.

    ``output_tokens`` counts every billed output token, reasoning (thinking) tokens
    included; ``reasoning_tokens`` says how many of them were reasoning, where the API
    reports it. ``cache_read_tokens`` and ``cache_write_tokens`` count prompt-cache tokens
    where the API reports them (part of, not added to, the input). ``total_tokens`` is the
    API's own total where the plugin passes it, else input plus output. ``details`` keeps
    any other numbers the API reports (Groq's timings, for example) under the API's names.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    details: dict[str, float] = {}

    def __post_init__(self) -> None:
        if self.total_tokens <= 0:
            self.total_tokens = self.input_tokens + self.output_tokens

    def plus(self, other: Usage) -> Usage:
        """The sum of two usages (a call made of several exchanges)."""
        details = dict(self.details)
        for key, value in other.details.items():
            details[key] = details.get(key, 0) + value
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            details=details,
        )

    def merged(self, later: Usage) -> Usage:
        """This usage updated by a later report of the same call (stream events).

        A field the later report leaves at zero keeps its value: Anthropic's
        ``message_start`` carries the input tokens and ``message_delta`` the output tokens.
        The total is the later report's own where it exceeds its parts (the API's total),
        else input plus output.
        """
        details = {**self.details, **later.details} if later.details else self.details
        input_tokens = later.input_tokens or self.input_tokens
        output_tokens = later.output_tokens or self.output_tokens
        own = later.total_tokens if later.total_tokens > later.input_tokens + later.output_tokens else 0
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=max(own, input_tokens + output_tokens),
            cache_read_tokens=later.cache_read_tokens or self.cache_read_tokens,
            cache_write_tokens=later.cache_write_tokens or self.cache_write_tokens,
            reasoning_tokens=later.reasoning_tokens or self.reasoning_tokens,
            details=details,
        )

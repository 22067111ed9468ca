"""TGI's native routes: ``POST /generate`` and ``POST /generate_stream``.

Request: ``{"inputs": prompt, "parameters": {...}}``. The common ``max_tokens`` becomes
``max_new_tokens`` and a single ``stop`` string becomes a list; ``details`` defaults to true
so the answer says how many tokens were generated and why generation stopped.

Answer: ``{"generated_text", "details": {"finish_reason", "generated_tokens", "prefill",
...}}``. The prompt's token count is only in ``details.prefill`` when the caller asked for
``decoder_input_details``, so the ``x-prompt-tokens`` / ``x-generated-tokens`` headers TGI
sets on every ``/generate`` answer are read too. A stream is SSE: one
``{"index", "token", "generated_text": null}`` event per token, and a last event whose
``generated_text`` is set, with ``details.input_length`` and ``details.generated_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipfs_accel import (
    Call,
    ChatResult,
    Event,
    Response,
    StreamChunk,
    StreamFailure,
    Usage,
)

__all__ = [
    "TIMING_HEADERS",
    "generate_body",
    "header_usage",
    "parse_generate",
    "parse_generate_event",
    "stream_usage",
]

TIMING_HEADERS = (
    "x-total-time",
    "x-validation-time",
    "x-queue-time",
    "x-inference-time",
    "x-time-per-token",
)
"""Timings (milliseconds) TGI reports in headers; kept in ``Usage.details`` by name."""


def generate_body(call: Call) -> dict[str, Any]:
    """The ``/generate`` (and ``/generate_stream``) body for a generate call."""
    parameters = dict(call.params)
    if "max_tokens" in parameters:
        parameters["max_new_tokens"] = parameters.pop("max_tokens")
    stop = parameters.get("stop")
    if isinstance(stop, str):
        parameters["stop"] = [stop]
    elif stop is None and "stop" in parameters:
        del parameters["stop"]  # the schema types it as an array, not nullable
    parameters.setdefault("details", True)
    return {"inputs": call.prompt or "", "parameters": parameters}


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    if isinstance(value, str):
        try:
            return max(int(value.strip()), 0)
        except ValueError:
            return 0
    return 0


def header_usage(headers: Mapping[str, str]) -> Usage:
    """Usage from ``x-prompt-tokens`` / ``x-generated-tokens`` and the timing headers."""
    details: dict[str, float] = {}
    for name in TIMING_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        try:
            details[name] = float(value)
        except ValueError:
            continue
    return Usage(
        input_tokens=_count(headers.get("x-prompt-tokens")),
        output_tokens=_count(headers.get("x-generated-tokens")),
        details=details,
    )


def parse_generate(resp: Response) -> ChatResult:
    """A ``GenerateResponse`` into a :class:`ChatResult`, usage from details and headers."""
    data = resp.data
    if not isinstance(data, Mapping) or not isinstance(data.get("generated_text"), str):
        raise TypeError("the body has no 'generated_text' string")
    details = data.get("details")
    details = details if isinstance(details, Mapping) else {}
    usage = header_usage(resp.headers)
    prefill = details.get("prefill")
    if not usage.input_tokens and isinstance(prefill, list):
        usage = Usage(input_tokens=len(prefill), output_tokens=usage.output_tokens,
                      details=usage.details)
    generated = _count(details.get("generated_tokens"))
    if generated and not usage.output_tokens:
        usage = Usage(input_tokens=usage.input_tokens, output_tokens=generated,
                      details=usage.details)
    reason = details.get("finish_reason")
    return ChatResult(
        text=data["generated_text"],
        finish_reason=reason if isinstance(reason, str) else None,
        usage=usage,
        raw=data,
    )


def stream_usage(data: Any) -> Usage | None:
    """Usage from the last ``/generate_stream`` event (``details``), else ``None``."""
    if not isinstance(data, Mapping):
        return None
    details = data.get("details")
    if not isinstance(details, Mapping):
        return None
    return Usage(
        input_tokens=_count(details.get("input_length")),
        output_tokens=_count(details.get("generated_tokens")),
    )


def parse_generate_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One ``StreamResponse`` SSE event; the one with ``generated_text`` ends the stream.

    Special tokens (``</s>``...) add no text: ``generated_text`` leaves them out too.
    """
    data = event.json
    if not isinstance(data, Mapping):
        return None
    if "error" in data or event.event == "error":
        return StreamFailure(data=data)
    token = data.get("token")
    delta = ""
    if isinstance(token, Mapping) and not token.get("special"):
        text = token.get("text")
        delta = text if isinstance(text, str) else ""
    if data.get("generated_text") is None:
        return StreamChunk(delta=delta, raw=data)
    details = data.get("details")
    reason = details.get("finish_reason") if isinstance(details, Mapping) else None
    return StreamChunk(
        delta=delta, finish_reason=reason if isinstance(reason, str) else None, done=True,
        raw=data,
    )

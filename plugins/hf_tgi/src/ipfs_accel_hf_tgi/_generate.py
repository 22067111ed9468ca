"""TGI's native routes: ``POST /generate`` and ``POST /generate_stream``.

Request: ``{"inputs": prompt, "parameters": {...}}``. The common ``max_tokens`` becomes
``max_new_tokens`` and a single ``stop`` string becomes a list; ``details`` defaults to true
so the answer says how many tokens were generated and why generation stopped. Structured
output: ``response_format`` (OpenAI's ``json_schema`` or ``json_object``) becomes
``parameters.grammar = {"type": "json", "value": <schema>}`` (``{"type": "object"}`` for
``json_object``), and TGI's own ``grammar=`` goes as it is (see :mod:`._request`).

Answer: ``{"generated_text", "details": {"finish_reason", "generated_tokens", "prefill",
...}}``. The prompt's token count is only in ``details.prefill`` when the caller asked for
``decoder_input_details``, so the ``x-prompt-tokens`` / ``x-generated-tokens`` headers TGI
sets on every ``/generate`` answer are read too. A stream is SSE: one
``{"index", "token", "generated_text": null}`` event per token, and a last event whose
``generated_text`` is set, with ``details.input_length`` and ``details.generated_tokens``.

``details.finish_reason`` (``length``, ``eos_token``, ``stop_sequence``) is put in the core's
vocabulary by :data:`FINISH_REASON_TABLE` (``length``, ``stop``, ``stop``); the value as sent
stays in ``native_finish_reason``, on the result and on a stream's last chunk.

The core decodes answers and events into the Structs below (the fields read, with the
defaults of the fields the API may leave out), so a field of the wrong type is a
``ResponseError`` naming it; ``raw`` still carries the whole body or event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from ipfs_accel import (
    Call,
    ChatResult,
    Event,
    Response,
    StreamChunk,
    StreamFailure,
    Usage,
    decode_json,
    normalize_finish_reason,
)

from ._request import grammar

__all__ = [
    "EVENT_TYPES",
    "FINISH_REASON_TABLE",
    "TIMING_HEADERS",
    "GenerateAnswer",
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

FINISH_REASON_TABLE = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}
"""TGI's ``FinishReason`` values to the core's vocabulary (a stop sequence is a stop, as in
OpenAI's)."""


_Count = Annotated[int, msgspec.Meta(ge=0)]


class _PrefillToken(msgspec.Struct):
    """A prompt token of ``details.prefill``: only counted, no field read."""


class _Details(msgspec.Struct):
    """``details`` of a ``GenerateResponse`` (asked for with ``details: true``)."""

    finish_reason: str | None = None
    generated_tokens: _Count = 0
    prefill: list[_PrefillToken] | None = None  # filled with ``decoder_input_details``


class GenerateAnswer(msgspec.Struct):
    """A ``/generate`` answer (``GenerateResponse``)."""

    generated_text: str
    details: _Details | None = None


class _Token(msgspec.Struct):
    """A streamed ``Token``: its text, and whether it is special (``</s>``: no text)."""

    text: str = ""
    special: bool = False


class _StreamDetails(msgspec.Struct):
    """``details`` of the last ``/generate_stream`` event."""

    finish_reason: str | None = None
    generated_tokens: _Count = 0
    input_length: _Count = 0


class _StreamEvent(msgspec.Struct):
    """One ``/generate_stream`` event (``StreamResponse``), or an ``ErrorResponse`` sent
    as an event (``error`` set: its shape is left to ``classify_error``)."""

    token: _Token | None = None
    generated_text: str | None = None
    details: _StreamDetails | None = None
    error: Any = msgspec.UNSET


EVENT_TYPES = {"": _StreamEvent, "message": _StreamEvent}
"""How ``/generate_stream`` events are decoded: TGI names none (``""``); ``message`` is the
SSE default name, which some proxies write out. Others (``error``) are decoded generically."""


def generate_body(call: Call) -> dict[str, Any]:
    """The ``/generate`` (and ``/generate_stream``) body for a generate call."""
    parameters = {k: v for k, v in call.params.items() if k not in ("response_format", "grammar")}
    wanted = grammar(call.params)
    if wanted is not None:
        parameters["grammar"] = wanted
    if "max_tokens" in parameters:
        parameters["max_new_tokens"] = parameters.pop("max_tokens")
    stop = parameters.get("stop")
    if isinstance(stop, str):
        parameters["stop"] = [stop]
    elif stop is None and "stop" in parameters:
        del parameters["stop"]  # the schema types it as an array, not nullable
    parameters.setdefault("details", True)
    return {"inputs": call.prompt or "", "parameters": parameters}


def _count(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return max(int(value.strip()), 0)
    except ValueError:
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
    data: GenerateAnswer = resp.data
    details = data.details or _Details()
    usage = header_usage(resp.headers)
    if not usage.input_tokens and details.prefill is not None:
        usage = Usage(input_tokens=len(details.prefill), output_tokens=usage.output_tokens,
                      details=usage.details)
    if details.generated_tokens and not usage.output_tokens:
        usage = Usage(input_tokens=usage.input_tokens, output_tokens=details.generated_tokens,
                      details=usage.details)
    return ChatResult(
        text=data.generated_text,
        finish_reason=normalize_finish_reason(details.finish_reason, FINISH_REASON_TABLE),
        native_finish_reason=details.finish_reason,
        usage=usage,
        raw=decode_json(resp.content),
    )


def stream_usage(data: Any) -> Usage | None:
    """Usage from the last ``/generate_stream`` event (``details``), else ``None``."""
    if not isinstance(data, _StreamEvent) or data.details is None:
        return None
    return Usage(input_tokens=data.details.input_length,
                 output_tokens=data.details.generated_tokens)


def parse_generate_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One ``StreamResponse`` SSE event; the one with ``generated_text`` ends the stream.

    Special tokens (``</s>``...) add no text: ``generated_text`` leaves them out too.
    """
    data = event.json
    if event.event == "error":  # an error event is an error whatever its data looks like
        return StreamFailure(data=data if data is not None else {"error": event.data})
    if not isinstance(data, _StreamEvent):
        return None  # not JSON, or an event name TGI does not send
    if data.error is not msgspec.UNSET:
        return StreamFailure(data=decode_json(event.data))
    token = data.token
    delta = token.text if token is not None and not token.special else ""
    raw = decode_json(event.data)
    if data.generated_text is None:
        return StreamChunk(delta=delta, raw=raw)
    reason = data.details.finish_reason if data.details is not None else None
    normal = normalize_finish_reason(reason, FINISH_REASON_TABLE)
    return StreamChunk(delta=delta, finish_reason=normal, native_finish_reason=reason, done=True,
                       raw=raw)

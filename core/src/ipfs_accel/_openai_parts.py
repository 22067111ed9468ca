"""Parts of OpenAI-format answers every plugin of that format reads the same way: usage,
tool calls and their stream fragments (re-exported by ``openai_compat``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ._openai_wire import CompletionUsage, DeltaToolCall, FunctionCall, MessageToolCall
from ._toolcall import ToolCall, ToolCallDelta
from ._usage import Usage

__all__ = ["parse_usage", "tool_call_deltas", "tool_calls"]


def parse_usage(data: Any) -> Usage | None:
    """Usage from the ``usage`` of a body or stream chunk, ``None`` when it has none.

    ``data`` is one of the Structs above (or any value with a ``usage`` attribute holding a
    :class:`CompletionUsage`, such as a plugin's own chunk Struct), or a generically decoded
    body, whose ``usage`` is fitted here leniently: usage that cannot be read is no usage,
    never an error, as this backs the ``parse_usage`` hook.
    """
    if type(data) is dict or isinstance(data, Mapping):  # the ABC check is the slow one
        counts: Any = data.get("usage")
    else:
        counts = getattr(data, "usage", None)
    if counts is None:
        return None
    if not isinstance(counts, CompletionUsage):
        try:
            counts = msgspec.convert(counts, CompletionUsage, strict=False)
        except msgspec.ValidationError:
            return None
    details = counts.prompt_tokens_details
    reasoning = counts.completion_tokens_details
    timings = {} if (
        counts.queue_time is None and counts.prompt_time is None
        and counts.completion_time is None and counts.total_time is None
    ) else {
        name: value for name, value in (
            ("queue_time", counts.queue_time), ("prompt_time", counts.prompt_time),
            ("completion_time", counts.completion_time), ("total_time", counts.total_time),
        ) if value is not None
    }
    return Usage(
        input_tokens=counts.prompt_tokens or 0,
        output_tokens=counts.completion_tokens or 0,
        cache_read_tokens=(details.cached_tokens or 0) if details is not None else 0,
        cache_write_tokens=(details.cache_write_tokens or 0) if details is not None else 0,
        reasoning_tokens=(reasoning.reasoning_tokens or 0) if reasoning is not None else 0,
        total_tokens=counts.total_tokens or 0,
        details=timings,
    )


def tool_calls(calls: list[MessageToolCall] | None, raw: Any = None) -> list[ToolCall] | None:
    """A message's ``tool_calls`` as :class:`ToolCall` (``raw``: the same list as the body
    gave it, for each call's ``raw``)."""
    if not calls:
        return None
    raws = raw if isinstance(raw, list) and len(raw) == len(calls) else [None] * len(calls)
    out = []
    for call, one in zip(calls, raws, strict=True):
        fn = call.function or FunctionCall()
        extra = one.get("extra_content") if isinstance(one, Mapping) else None
        out.append(ToolCall.of(id=call.id, name=fn.name or "", arguments=fn.arguments,
                               extra_content=extra if isinstance(extra, dict) else None,
                               raw=one))
    return out


def tool_call_deltas(calls: list[DeltaToolCall] | None) -> list[ToolCallDelta] | None:
    """A chunk's ``delta.tool_calls`` as :class:`ToolCallDelta` fragments."""
    if not calls:
        return None
    out = []
    for call in calls:
        fn = call.function or FunctionCall()
        arguments = fn.arguments
        if isinstance(arguments, dict):  # a server that sends the whole call decoded
            arguments = msgspec.json.encode(arguments).decode()
        out.append(ToolCallDelta(index=call.index, id=call.id, name=fn.name,
                                 arguments=arguments or ""))
    return out


def _raw_calls(raw: Any) -> Any:
    try:
        return raw["choices"][0]["message"]["tool_calls"]
    except (KeyError, IndexError, TypeError):
        return None

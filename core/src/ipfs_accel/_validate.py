"""The guard between a plugin's parser and the user: what comes back has the declared types.

A plugin reads bodies a server wrote, and a server may send ``"finish_reason": 3``, an
embedding holding ``null``, two vectors for three inputs, or a negative token count. The
engine runs these checks on every result, stream chunk and usage a plugin hands back, so a
wrong value never reaches the user or the stats, whichever plugin (ours or a third party's)
read it. A wrong value is a :class:`ResponseError` (not retried: the same server gives the
same answer) whose message names the backend and the field, for example
``openai returned finish_reason of type int, expected a string``.

What is checked, field by field (the types the result classes declare):

- :class:`ChatResult`: ``text`` a string; ``finish_reason``, ``model`` and
  ``server_request_id`` a string or ``None``; ``tool_calls`` a list or ``None``.
- :class:`EmbedResult`: ``vectors`` a list with one vector per input, each a list of finite
  numbers (ints are numbers and become floats; bools are not); ``model`` a string or ``None``.
- :class:`StreamChunk`: ``delta`` a string; ``finish_reason`` and ``server_request_id`` a
  string or ``None``.
- :class:`Usage` (a result's, a chunk's, and what ``parse_usage`` reports): the token counts
  are non-negative ints, so the stats never go negative.

They run on every call, so the accepted path is a handful of ``type() is`` tests (vectors:
one msgspec conversion, in C); only a failure walks the value to name the field. Messages
name types, counts and positions, never a string the server sent.
"""

from __future__ import annotations

import math
import sys
from typing import Annotated, Any

import msgspec

from ._errors import ResponseError
from ._toolcall import ToolCall, ToolCallDelta, fill_ids
from ._types import Call, ChatResult, EmbedResult, InvokeResult, StreamChunk, Usage

__all__ = ["check_chunk", "check_result", "check_usage"]

_Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
_VECTORS = list[list[_Finite]]  # NaN fails both bounds, so this admits finite numbers only
_convert = msgspec.convert
_TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
           "cache_write_tokens", "reasoning_tokens")


def check_result(
    result: ChatResult | EmbedResult | InvokeResult,
    call: Call,
    backend: str,
    endpoint_id: str,
    server_request_id: str | None = None,
    *,
    usage_checked: bool = False,
) -> None:
    """Raise :class:`ResponseError` if a parsed result has a field of the wrong type.

    An embedding result must hold one vector per input (``call.inputs``); its vectors are
    replaced by the same numbers as floats. ``usage_checked``: its usage is one
    :func:`check_usage` passed already (or a sum of such).
    """
    if isinstance(result, ChatResult):
        problem = _chat(result)
        if problem is None and result.tool_calls:
            fill_ids(result.tool_calls, call.request_id)
    elif isinstance(result, EmbedResult):
        problem = _embed(result, call.inputs)
    else:
        problem = None
    if problem is None and not usage_checked:
        problem = _usage(result.usage)
    if problem is not None:
        raise _error(problem, call, backend, endpoint_id, server_request_id)


def check_usage(
    usage: Usage | None,
    call: Call,
    backend: str,
    endpoint_id: str,
    server_request_id: str | None = None,
) -> None:
    """Raise :class:`ResponseError` if a reported usage has a negative or non-int count."""
    if usage is None:
        return
    problem = _usage(usage)
    if problem is not None:
        raise _error(problem, call, backend, endpoint_id, server_request_id)


def check_chunk(
    chunk: StreamChunk,
    call: Call,
    backend: str,
    endpoint_id: str,
    server_request_id: str | None = None,
) -> None:
    """Raise :class:`ResponseError` if a parsed stream chunk has a field of the wrong type."""
    delta, reason, sid, usage = (
        chunk.delta, chunk.finish_reason, chunk.server_request_id, chunk.usage
    )
    calls: Any = chunk.tool_calls
    deltas: Any = chunk.tool_call_deltas
    if (
        type(delta) is str
        and (reason is None or type(reason) is str)
        and (sid is None or type(sid) is str)
        and usage is None and calls is None and deltas is None
    ):
        return
    problem = (
        _text("delta", delta)
        or _optional_text("finish_reason", reason)
        or _optional_text("server_request_id", sid)
        or (None if usage is None else _usage(usage))
        or (None if calls is None else _items("tool_calls", calls, ToolCall))
        or (None if deltas is None else _items("tool_call_deltas", deltas, ToolCallDelta))
    )
    if problem is not None:
        raise _error(problem, call, backend, endpoint_id, server_request_id)


def _error(
    problem: str, call: Call, backend: str, endpoint_id: str, server_request_id: str | None
) -> ResponseError:
    err = ResponseError(
        f"{backend} returned {problem}",
        backend=backend,
        endpoint_id=endpoint_id,
        request_id=call.request_id,
        server_request_id=server_request_id if isinstance(server_request_id, str) else None,
    )
    err.retryable = False
    return err


def _items(name: str, values: Any, type_: type) -> str | None:
    """A list whose items are all ``type_``, else what is wrong with it."""
    if not isinstance(values, list):
        return f"{name} of type {_kind(values)}, expected a list"
    for i, value in enumerate(values):
        if type(value) is not type_:
            return f"{name}[{i}] of type {_kind(value)}, expected {type_.__name__}"
    return None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _text(name: str, value: Any) -> str | None:
    if isinstance(value, str):
        return None
    return f"{name} of type {_kind(value)}, expected a string"


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


def _chat(result: ChatResult) -> str | None:
    # Any: the declared types are what is being checked, not what may be assumed
    text: Any = result.text
    reason: Any = result.finish_reason
    model: Any = result.model
    sid: Any = result.server_request_id
    calls: Any = result.tool_calls
    if (
        type(text) is str
        and (reason is None or type(reason) is str)
        and (model is None or type(model) is str)
        and (sid is None or type(sid) is str)
        and (calls is None or (type(calls) is list and all(type(c) is ToolCall for c in calls)))
    ):
        return None
    if calls is not None and not isinstance(calls, list):
        return f"tool_calls of type {_kind(calls)}, expected a list"
    if calls:
        problem = _items("tool_calls", calls, ToolCall)
        if problem is not None:
            return problem
    return (
        _text("text", text)
        or _optional_text("finish_reason", reason)
        or _optional_text("model", model)
        or _optional_text("server_request_id", sid)
    )


def _embed(result: EmbedResult, inputs: list[str] | None) -> str | None:
    vectors: Any = result.vectors
    if not isinstance(vectors, list):
        return f"vectors of type {_kind(vectors)}, expected a list"
    if inputs is not None and len(vectors) != len(inputs):
        return f"{len(vectors)} vectors for {len(inputs)} inputs"
    try:
        result.vectors = _convert(vectors, _VECTORS)
    except msgspec.ValidationError:
        return _vector_problem(vectors)
    return (
        _optional_text("model", result.model)
        or _optional_text("server_request_id", result.server_request_id)
    )


def _vector_problem(vectors: list[Any]) -> str:
    """Where the first value that is not a finite number is (the slow path, on failure)."""
    for i, vector in enumerate(vectors):
        if not isinstance(vector, list):
            return f"vectors[{i}] of type {_kind(vector)}, expected a list of numbers"
        for j, x in enumerate(vector):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                return f"vectors[{i}][{j}] of type {_kind(x)}, expected a number"
            try:
                finite = math.isfinite(x)
            except OverflowError:  # an int beyond the float range
                finite = False
            if not finite:
                return f"vectors[{i}][{j}] that is not a finite float"
    return "vectors that are not lists of finite floats"


def _usage(usage: Any) -> str | None:
    if not isinstance(usage, Usage):
        return f"usage of type {_kind(usage)}, expected Usage"
    i, o, t, r, w, z = (
        usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.cache_read_tokens,
        usage.cache_write_tokens, usage.reasoning_tokens,
    )
    if (
        type(i) is int and type(o) is int and type(t) is int and type(r) is int
        and type(w) is int and type(z) is int
        and i >= 0 and o >= 0 and t >= 0 and r >= 0 and w >= 0 and z >= 0
    ):
        return None
    for name in _TOKENS:
        value = getattr(usage, name)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"usage.{name} of type {_kind(value)}, expected a non-negative integer"
        if value < 0:
            return f"usage.{name} of {value}, expected a non-negative integer"
    return None

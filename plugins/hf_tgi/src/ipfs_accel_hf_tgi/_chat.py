"""TGI's Messages API answers: ``chat.completion`` bodies and ``chat.completion.chunk`` streams.

A body is OpenAI's (:func:`ipfs_accel.openai_compat.parse_chat`): a tool call comes back as a
typed :class:`~ipfs_accel.ToolCall` whether its ``arguments`` are JSON text (TGI 3.2 and
later) or a JSON object (TGI 2.x to 3.1); TGI names every call ``"0"`` and says
``finish_reason: "stop"`` (``eos_token`` before 2.0), which the core turns into
``tool_calls``. The token-count headers stand in for usage when the body has none.

Streams differ from OpenAI's in two ways, read by :class:`ChatEvents` (one per call):

- TGI 3.2 and later stream a call as OpenAI does (``delta.tool_calls`` a list of fragments,
  the name on the first, whose ``arguments`` is ``"{"``), but send no chunk with a
  ``finish_reason`` after the call: the stream goes on to the usage chunk and ``[DONE]``.
  The ``[DONE]`` of a stream that carried tool-call fragments and no finish says
  ``tool_calls`` (the core puts the joined calls on it).
- TGI 2.x to 3.1 send ``delta.tool_calls`` as one object, not a list, with no name: the
  fragments are the text of TGI's grammar, ``{"function": {"_name": "get_weather", "city":
  "Paris"}}``, followed by the end-of-sequence token (``</s>``, ``<|eot_id|>``). Those
  fragments are kept here, not handed to the core, and the chunk that ends the turn carries
  the call read from them (``get_weather`` with ``{"city": "Paris"}``), or the text of
  TGI's ``no_tool`` answer. Each such chunk is still yielded (no text, an empty
  ``tool_call_deltas``), so the stream is never started over once a call has begun.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from ipfs_accel import (
    ChatResult,
    Event,
    Response,
    StreamChunk,
    StreamFailure,
    ToolCall,
    decode_json,
    normalize_finish_reason,
    openai_compat,
)
from ipfs_accel.openai_compat import CompletionUsage, ContentPart, DeltaToolCall

from ._generate import header_usage

__all__ = ["EVENT_TYPES", "ChatChunk", "ChatEvents", "parse_chat"]


def parse_chat(resp: Response) -> ChatResult:
    """A ``ChatCompletion`` body; usage from the body, else from the token-count headers."""
    result = openai_compat.parse_chat(resp)
    # parse_usage (the body's ``usage``) wins; the headers stand in when the body has none
    result.usage = header_usage(resp.headers)
    return result


class _Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``delta`` of a chunk: text, or tool-call fragments (a list; one object before 3.2)."""

    content: str | list[ContentPart] | None = None
    tool_calls: list[DeltaToolCall] | DeltaToolCall | None = None


class _Choice(msgspec.Struct, kw_only=True, omit_defaults=True):
    delta: _Delta | None = None
    finish_reason: str | None = None


class ChatChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A ``ChatCompletionChunk`` as TGI sends it (the fields read); ``error`` set: a failure."""

    choices: list[_Choice] = []
    model: str | None = None
    usage: CompletionUsage | None = None
    error: Any = None


EVENT_TYPES: Mapping[str, Any] = {"": ChatChunk}
"""Unnamed events are chunks; named ones (``error``) are decoded generically."""

_ENVELOPE = re.compile(r'\{\s*"function"\s*:\s*\{\s*"_name"\s*:')
_decoder = json.JSONDecoder()


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content or ())


def _unwrap(text: str) -> tuple[str, dict[str, Any]] | None:
    """``(name, arguments)`` from TGI's grammar text ``{"function": {"_name": ..., ...}}``
    (what follows it, the end-of-sequence token, ignored)."""
    match = _ENVELOPE.search(text)
    if match is None:
        return None
    try:
        value, _ = _decoder.raw_decode(text, match.start())
    except ValueError:
        return None
    function = value.get("function") if isinstance(value, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("_name"), str):
        return None
    name = function.pop("_name")
    return name, function


class ChatEvents:
    """Reads one ``stream_chat`` call's events (:meth:`parse` is its ``parse_event``)."""

    __slots__ = ("calls", "finished", "legacy")

    def __init__(self) -> None:
        self.calls = False  # tool-call fragments came
        self.finished = False  # a chunk said its finish_reason
        self.legacy: list[str] = []  # TGI 2.x-3.1 grammar text, until the turn ends

    def parse(self, event: Event) -> StreamChunk | StreamFailure | None:
        """One SSE event: a chunk, the end (``[DONE]``), a failure, or nothing."""
        data = openai_compat.read_event(event, ChatChunk)
        if isinstance(data, StreamChunk):  # the end: it carries what the turn left
            self._flush(data)
            if self.calls and not self.finished:
                data.finish_reason = "tool_calls"
            return data
        if not isinstance(data, ChatChunk):
            return data  # a failure, or nothing
        if not data.choices:
            return None  # the usage chunk: parse_usage reads it
        choice = data.choices[0]
        delta = choice.delta or _Delta()
        chunk = StreamChunk(
            delta=_text(delta.content),
            finish_reason=normalize_finish_reason(choice.finish_reason,
                                                  openai_compat.FINISH_REASON_TABLE),
            native_finish_reason=choice.finish_reason,
            model=data.model,
            raw=decode_json(event.data),
        )
        calls = delta.tool_calls
        if isinstance(calls, list):
            chunk.tool_call_deltas = openai_compat.tool_call_deltas(calls)
            self.calls = self.calls or bool(chunk.tool_call_deltas)
        elif calls is not None:
            self._keep(calls)
            chunk.tool_call_deltas = []  # yielded: a call has begun
        if chunk.finish_reason is not None:
            self.finished = True
            self._flush(chunk)
        return chunk

    def _keep(self, call: DeltaToolCall) -> None:
        arguments = call.function.arguments if call.function is not None else None
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments)
        self.legacy.append(arguments or "")
        self.calls = True

    def _flush(self, chunk: StreamChunk) -> None:
        """Put the call read from TGI 2.x-3.1 grammar text on the chunk ending the turn."""
        if not self.legacy:
            return
        text = "".join(self.legacy)
        self.legacy.clear()
        read = _unwrap(text)
        if read is None:
            raise ValueError(f"hf_tgi streamed a tool call it could not read: {text[:200]!r}")
        name, arguments = read
        if name == "no_tool":  # TGI's own "answer in text" function
            self.calls = False
            content = arguments.get("content")
            chunk.delta += content if isinstance(content, str) else json.dumps(arguments)
            return
        chunk.tool_calls = [ToolCall.of(id=None, name=name, arguments=arguments)]

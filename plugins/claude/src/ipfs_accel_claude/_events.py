"""A streamed message: SSE events into chunks, tool-call fragments and thinking kept.

One :class:`EventReader` reads one call's stream (the exchange's ``parse_event``); it
remembers which content blocks are client ``tool_use`` blocks (a ``server_tool_use`` block
streams ``input_json_delta`` too, and is no call for the caller to run) and gathers the
thinking blocks so the chunk that ends the turn can carry them in ``extra_content``. A
``message_start`` clears what it remembers, so an attempt that failed before its first
chunk and was sent again starts afresh.
"""

from __future__ import annotations

from typing import Any

import msgspec
from ipfs_accel import (
    Event,
    StreamChunk,
    StreamFailure,
    ToolCallDelta,
    decode_json,
    normalize_finish_reason,
)

from ._response import FINISH_REASON_TABLE, thinking_block, thinking_extra
from ._wire import BlockDelta, BlockStart, BlockStop, MessageDelta, MessageStart, MessageStop, typed_event

__all__ = ["EventReader"]

_encoder = msgspec.json.Encoder()


class _ToolBlock:
    """A ``tool_use`` block being streamed: its start ``input`` (the API sends ``{}`` and
    the input in ``input_json_delta`` pieces; a relay may send it whole here instead)."""

    __slots__ = ("input", "pieces")

    def __init__(self, input: dict[str, Any] | None) -> None:
        self.input = input
        self.pieces = 0


class EventReader:
    """One stream's events into :class:`StreamChunk` s (call it with each event).

    - ``content_block_start`` of a ``text`` block with text, and ``text_delta``: text;
    - ``content_block_start`` of a ``tool_use`` block: a :class:`ToolCallDelta` with the
      block's index, ``id`` and ``name``; its ``input_json_delta`` pieces: deltas with the
      next piece of the arguments' JSON (the core joins them into a ``ToolCall``);
    - ``thinking`` / ``redacted_thinking`` blocks (``thinking_delta``, ``signature_delta``):
      no text; gathered, and put on the ``message_delta`` chunk as
      ``extra_content={"anthropic": {"thinking": [...]}}`` (so ``stream.result.message``
      sends them back), with the model named by ``message_start``;
    - ``message_delta``: the stop reason (``tool_use`` is ``tool_calls``); ``message_stop``
      ends the stream; ``error``: a failure, classified by ``classify_error``.

    ``ping``, other block types and deltas (server tools, citations) and event types added
    later carry nothing. A chunk's ``raw`` is the event's whole data.
    """

    __slots__ = ("model", "thinking", "tools")

    def __init__(self) -> None:
        self.model: str | None = None
        self.tools: dict[int, _ToolBlock] = {}
        self.thinking: dict[int, dict[str, Any]] = {}

    def __call__(self, event: Event) -> StreamChunk | StreamFailure | None:
        data = event.json
        if event.event == "error" or (isinstance(data, dict) and data.get("type") == "error"):
            return StreamFailure(data=data if data is not None else event.data)
        chunk = self._chunk(typed_event(data))
        if chunk is not None:
            chunk.raw = decode_json(event.data)
        return chunk

    def _chunk(self, data: Any) -> StreamChunk | None:
        if isinstance(data, BlockDelta):
            return self._delta(data)
        if isinstance(data, BlockStart):
            return self._start(data)
        if isinstance(data, BlockStop):
            return self._stop(data)
        if isinstance(data, MessageDelta):
            native = data.delta.stop_reason
            return StreamChunk(
                finish_reason=normalize_finish_reason(native, FINISH_REASON_TABLE),
                native_finish_reason=native, model=self.model,
                extra_content=thinking_extra(b for _, b in sorted(self.thinking.items())),
            )
        if isinstance(data, MessageStop):
            return StreamChunk(done=True)
        if isinstance(data, MessageStart):
            self.model = data.message.model
            self.tools.clear()
            self.thinking.clear()
        return None

    def _start(self, data: BlockStart) -> StreamChunk | None:
        block, index = data.content_block, data.index
        if block.type == "text":
            return StreamChunk(delta=block.text) if block.text else None
        if block.type == "tool_use":
            self.tools[index] = _ToolBlock(block.input)
            return StreamChunk(tool_call_deltas=[
                ToolCallDelta(index=index, id=block.id, name=block.name)])
        thinking = thinking_block(block)
        if thinking is not None:
            self.thinking[index] = thinking
        return None

    def _delta(self, data: BlockDelta) -> StreamChunk | None:
        delta, index = data.delta, data.index
        if delta.type == "text_delta":
            return StreamChunk(delta=delta.text)
        if delta.type == "input_json_delta":
            tool = self.tools.get(index)
            if tool is None or not delta.partial_json:
                return None  # a server tool's input, or an empty piece
            tool.pieces += 1
            return StreamChunk(tool_call_deltas=[
                ToolCallDelta(index=index, arguments=delta.partial_json)])
        thinking = self.thinking.get(index)
        if thinking is not None and delta.type == "thinking_delta":
            thinking["thinking"] += delta.thinking
        elif thinking is not None and delta.type == "signature_delta":
            thinking["signature"] += delta.signature
        return None

    def _stop(self, data: BlockStop) -> StreamChunk | None:
        tool = self.tools.get(data.index)
        if tool is None or tool.pieces or not tool.input:
            return None
        # no input_json_delta came: the input the block started with is the whole input
        return StreamChunk(tool_call_deltas=[ToolCallDelta(
            index=data.index, arguments=_encoder.encode(tool.input).decode())])

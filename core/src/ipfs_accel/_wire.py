"""Reading streamed bodies: server-sent events and newline-delimited JSON.

Both produce :class:`Event` values with the JSON already decoded once, so the plugin's
event parser and its ``parse_usage`` hook share one decode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Literal

import msgspec

__all__ = ["Event", "aiter_events", "decode_json", "iter_events"]

_decode = msgspec.json.decode


class Event(msgspec.Struct, kw_only=True):
    """One stream event: the SSE ``event`` name (``""`` for NDJSON), its raw ``data`` text,
    and ``json``, the data decoded as JSON (``None`` when it is not JSON, e.g. ``[DONE]``)."""

    event: str = ""
    data: str = ""
    json: Any = None


def decode_json(content: bytes | str) -> Any:
    """JSON from a body, or ``None`` when it is empty or not JSON."""
    if not content:
        return None
    try:
        return _decode(content)
    except msgspec.DecodeError:
        return None


class _SSEDecoder:
    """Line-by-line SSE per the HTML living standard (fields event and data; id and retry
    are ignored: reconnection is the retry loop's business, not the stream's)."""

    __slots__ = ("data", "event")

    def __init__(self) -> None:
        self.event = ""
        self.data: list[str] = []

    def line(self, line: str) -> Event | None:
        if not line:
            return self.flush()
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        return None

    def flush(self) -> Event | None:
        if not self.data:
            self.event = ""
            return None
        data = "\n".join(self.data)
        event = Event(event=self.event, data=data, json=decode_json(data))
        self.event = ""
        self.data = []
        return event


def _ndjson(line: str) -> Event | None:
    line = line.strip()
    if not line:
        return None
    return Event(data=line, json=decode_json(line))


def iter_events(lines: Iterable[str], kind: Literal["sse", "ndjson"]) -> Iterator[Event]:
    """Events from the lines of a streamed body (sync)."""
    if kind == "ndjson":
        for line in lines:
            event = _ndjson(line)
            if event is not None:
                yield event
        return
    decoder = _SSEDecoder()
    for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
    # An event not ended by a blank line is incomplete and is dropped, as the SSE standard says.


async def aiter_events(lines: AsyncIterator[str], kind: Literal["sse", "ndjson"]) -> AsyncIterator[Event]:
    """Events from the lines of a streamed body (async)."""
    if kind == "ndjson":
        async for line in lines:
            event = _ndjson(line)
            if event is not None:
                yield event
        return
    decoder = _SSEDecoder()
    async for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
    # An event not ended by a blank line is incomplete and is dropped, as the SSE standard says.

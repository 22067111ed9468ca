"""Reading streamed bodies: server-sent events and newline-delimited JSON.

Both produce :class:`Event` values with the JSON already decoded once, so the plugin's
event parser and its ``parse_usage`` hook share one decode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, TypeAlias

import msgspec

__all__ = [
    "Event",
    "EventDecoder",
    "aiter_events",
    "decode_json",
    "decode_typed",
    "event_decoder",
    "is_json",
    "iter_events",
]

_decode = msgspec.json.decode
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

EventDecoder: TypeAlias = Callable[[str, str], Any]
"""Decodes one event's data, given its SSE event name (``""`` for NDJSON)."""


class Event(msgspec.Struct, kw_only=True):
    """One stream event: the SSE ``event`` name (``""`` for NDJSON), its raw ``data`` text,
    and ``json``, the data decoded as JSON, or into the exchange's ``event_type`` when it
    declares one (``None`` when the data is not JSON, e.g. ``[DONE]``)."""

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


def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    return decoder


def decode_typed(content: bytes | str, type_: Any) -> Any:
    """``content`` decoded straight into ``type_`` (a msgspec Struct, a union of them...)
    by one reused decoder per type; fields the type does not declare are skipped.

    Raises ``msgspec.ValidationError`` when the JSON does not fit the type (its message
    names the field, as ``$.choices[0].finish_reason``) and ``msgspec.DecodeError`` when
    the content is not JSON at all.
    """
    return _decoder(type_).decode(content)


def event_decoder(types: Any) -> EventDecoder:
    """How each event of a stream is decoded: generically (``types`` is ``None``), into
    one type, or by SSE event name (a mapping; names it lacks are decoded generically).

    Data that is not JSON at all (``[DONE]``) decodes to ``None``, as the plugin expects;
    JSON that does not fit its type raises ``msgspec.ValidationError``.
    """
    if types is None:
        return lambda name, data: decode_json(data)
    if isinstance(types, Mapping):
        by_name = {name: _decoder(type_) for name, type_ in types.items()}

        def by_event(name: str, data: str) -> Any:
            decoder = by_name.get(name)
            return decode_json(data) if decoder is None else _fit(decoder, data)

        return by_event
    decoder = _decoder(types)
    return lambda name, data: _fit(decoder, data)


def _fit(decoder: msgspec.json.Decoder[Any], data: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError:
        if not is_json(data):  # "[DONE]" reads as the start of an array of the wrong type
            return None
        raise
    except msgspec.DecodeError:
        return None


def is_json(content: bytes | str) -> bool:
    """Whether ``content`` is JSON at all (a type mismatch can be reported before a syntax
    error, so a failed typed decode does not tell)."""
    try:
        _decode(content)
    except msgspec.DecodeError:
        return False
    return True


class _SSEDecoder:
    """Line-by-line SSE per the HTML living standard (fields event and data; id and retry
    are ignored: reconnection is the retry loop's business, not the stream's)."""

    __slots__ = ("data", "decode", "event")

    def __init__(self, decode: EventDecoder) -> None:
        self.event = ""
        self.data: list[str] = []
        self.decode = decode

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
        event = Event(event=self.event, data=data, json=self.decode(self.event, data))
        self.event = ""
        self.data = []
        return event


def _ndjson(line: str, decode: EventDecoder) -> Event | None:
    line = line.strip()
    if not line:
        return None
    return Event(data=line, json=decode("", line))


def iter_events(
    lines: Iterable[str], kind: Literal["sse", "ndjson"], decode: EventDecoder | None = None
) -> Iterator[Event]:
    """Events from the lines of a streamed body (sync); ``decode`` (see
    :func:`event_decoder`) fills each event's ``json``."""
    decode = decode or _GENERIC
    if kind == "ndjson":
        for line in lines:
            event = _ndjson(line, decode)
            if event is not None:
                yield event
        return
    decoder = _SSEDecoder(decode)
    for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
    # An event not ended by a blank line is incomplete and is dropped, as the SSE standard says.


async def aiter_events(
    lines: AsyncIterator[str], kind: Literal["sse", "ndjson"], decode: EventDecoder | None = None
) -> AsyncIterator[Event]:
    """Events from the lines of a streamed body (async)."""
    decode = decode or _GENERIC
    if kind == "ndjson":
        async for line in lines:
            event = _ndjson(line, decode)
            if event is not None:
                yield event
        return
    decoder = _SSEDecoder(decode)
    async for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
    # An event not ended by a blank line is incomplete and is dropped, as the SSE standard says.


_GENERIC: EventDecoder = event_decoder(None)

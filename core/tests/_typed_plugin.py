"""A test backend that declares its wire types: the core decodes bodies and events into them."""

from __future__ import annotations

from typing import Any

import msgspec
from ipfs_accel import (
    BackendInfo,
    Call,
    ChatResult,
    Classification,
    EndpointConfig,
    Event,
    Exchange,
    Failure,
    Response,
    StreamChunk,
    Usage,
    decode_json,
    default_classification,
    hookimpl,
)


class Message(msgspec.Struct):
    content: str | None = None


class Choice(msgspec.Struct):
    message: Message
    finish_reason: str | None = None


class Counts(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Completion(msgspec.Struct):
    choices: list[Choice]
    model: str | None = None
    usage: Counts | None = None


class Delta(msgspec.Struct):
    content: str = ""


class ChunkChoice(msgspec.Struct):
    delta: Delta
    finish_reason: str | None = None


class Chunk(msgspec.Struct):
    choices: list[ChunkChoice] = []
    usage: Counts | None = None


class Note(msgspec.Struct):
    """A named event (``event: note``) with a shape of its own."""

    note: str


SEEN: list[Any] = []  # what parse and parse_usage were handed, for the tests to inspect


@hookimpl
def backend_info() -> BackendInfo:
    return BackendInfo(name="typed", default_base_url="http://typed.test",
                       operations=frozenset({"chat", "stream_chat"}))


def _chat(resp: Response) -> ChatResult:
    data: Completion = resp.data
    SEEN.append(data)
    choice = data.choices[0]
    return ChatResult(text=choice.message.content or "", finish_reason=choice.finish_reason,
                      model=data.model, raw=decode_json(resp.content))


def _event(event: Event) -> StreamChunk | None:
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    SEEN.append(event.json)
    if isinstance(event.json, Note):
        return StreamChunk(delta=f"[{event.json.note}]")
    if not isinstance(event.json, Chunk) or not event.json.choices:
        return None
    choice = event.json.choices[0]
    return StreamChunk(delta=choice.delta.content, finish_reason=choice.finish_reason)


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    body = {"model": call.model, "messages": call.messages}
    if call.operation == "stream_chat":
        return Exchange(path="/chat", json=body, stream="sse", parse_event=_event,
                        event_type={"": Chunk, "note": Note})
    return Exchange(path="/chat", json=body, parse=_chat, response_type=Completion)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    usage = getattr(data, "usage", None)
    if usage is None:
        return None
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)


@hookimpl
def classify_error(failure: Failure) -> Classification:
    return default_classification(failure)

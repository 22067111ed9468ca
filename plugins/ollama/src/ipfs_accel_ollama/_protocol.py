"""Ollama's native wire format: request bodies, response and NDJSON event parsers.

The core decodes each answer and line into its Struct (``_answers``) before a parser runs.

Routes (docs/openapi.yaml, "Ollama API" 0.1.0): ``POST /api/chat``, ``POST /api/generate``,
``POST /api/embed``, ``GET /api/tags``. ``stream`` defaults to true on the server, so every
unary request says ``"stream": false``; streams are NDJSON, one JSON object a line, the last
with ``"done": true``, ``done_reason`` and the token counts. Sampling parameters live in the
``options`` object, not at the top level. ``done_reason`` is put in the core's finish-reason
vocabulary by :data:`FINISH_REASON_TABLE` and kept, as sent, in ``native_finish_reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from ipfs_accel import (
    Call,
    ChatResult,
    ConfigurationError,
    EmbedResult,
    Event,
    InvokeResult,
    Response,
    StreamChunk,
    StreamFailure,
    ToolCall,
    Usage,
    decode_json,
    normalize_finish_reason,
)
from msgspec import UNSET

from . import _request as request
from ._answers import (
    ChatAnswer,
    ChatLine,
    EmbedAnswer,
    GenerateAnswer,
    GenerateLine,
    Line,
    Metered,
    Tags,
    WireToolCall,
)

__all__ = [
    "FINISH_REASON_TABLE",
    "OPTION_NAMES",
    "chat_body",
    "embed_body",
    "generate_body",
    "parse_chat",
    "parse_chat_event",
    "parse_embed",
    "parse_generate",
    "parse_generate_event",
    "parse_tags",
    "tool_calls",
    "usage_of",
]

OPTION_NAMES: dict[str, str] = {
    "max_tokens": "num_predict",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
}
"""The common parameters and their names inside Ollama's ``options`` object."""

FINISH_REASON_TABLE: Mapping[str, str] = {
    "stop": "stop",
    "length": "length",
    # the answer to a request with no prompt or messages, which only loads or unloads
    # the model (api.md, "Load a model" / "Unload a model"): nothing was generated
    "load": "other",
    "unload": "other",
}
"""Ollama's ``done_reason`` values in the core's vocabulary; any value not listed becomes
``"other"``. A chat answer that ends in ``stop`` with tool calls is ``tool_calls``, as
Ollama's own OpenAI-compatible routes say it."""


def _finish(native: str | None, tool_calls: list[Any] | None = None) -> str | None:
    reason = normalize_finish_reason(native, FINISH_REASON_TABLE)
    return "tool_calls" if reason == "stop" and tool_calls else reason


_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_decode = msgspec.json.decode


def _model(call: Call) -> str:
    if not call.model:
        raise ConfigurationError(
            f"ollama {call.operation} needs a model: pass model=, or set it on the endpoint"
        )
    return call.model


def _common(call: Call, keep_alive: str | int | None,
            mapped: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Model, the pass-through params, and the common params moved into ``options``;
    ``mapped`` params are left to the caller."""
    params = {name: value for name, value in call.params.items() if name not in mapped}
    given = params.pop("options", None)
    options: dict[str, Any] = dict(given) if isinstance(given, Mapping) else {}
    for ours, theirs in OPTION_NAMES.items():
        if ours in params:
            options[theirs] = params.pop(ours)
    body: dict[str, Any] = {"model": _model(call)}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    body.update(params)
    if options:
        body["options"] = options
    return body


def _format(body: dict[str, Any], call: Call) -> None:
    fmt = request.output_format(call.params)
    if fmt is not None:
        body["format"] = fmt


def chat_body(call: Call, *, stream: bool, keep_alive: str | int | None = None) -> dict[str, Any]:
    """The ``/api/chat`` request body: tools, tool turns, images and ``response_format``
    mapped to Ollama's form (:mod:`._request`)."""
    body = _common(call, keep_alive, request.MAPPED)
    tools = request.chat_tools(call.params)
    if tools is not None:
        body["tools"] = tools
    _format(body, call)
    body["messages"] = request.chat_messages(call.messages)
    body["stream"] = stream
    return body


def generate_body(
    call: Call, *, stream: bool, keep_alive: str | int | None = None
) -> dict[str, Any]:
    """The ``/api/generate`` request body (``response_format`` as ``format``; images go as
    Ollama's own ``images=[base64, ...]``)."""
    body = _common(call, keep_alive, frozenset({"response_format"}))
    _format(body, call)
    body["prompt"] = call.prompt or ""
    body["stream"] = stream
    return body


def embed_body(call: Call, *, keep_alive: str | int | None = None) -> dict[str, Any]:
    """The ``/api/embed`` request body (``input`` as a list: one vector per string)."""
    body = _common(call, keep_alive)
    body["input"] = list(call.inputs or [])
    return body


def tool_calls(wire: list[WireToolCall] | None, raw: Any) -> list[ToolCall] | None:
    """``message.tool_calls`` as typed calls: the spec gives them no ID (left empty, the
    core makes a stable one; a server's own ``id`` is kept), the arguments as an object;
    ``raw`` is each call as sent (``raw``: the body or line they came in)."""
    if not wire:
        return None
    message = raw.get("message") if isinstance(raw, dict) else None
    sent = message.get("tool_calls") if isinstance(message, dict) else None
    sent = sent if isinstance(sent, list) and len(sent) == len(wire) else [None] * len(wire)
    return [
        ToolCall.of(id=call.id or "", name=call.function.name,
                    arguments=call.function.arguments, raw=one)
        for call, one in zip(wire, sent, strict=True)
    ]


def _thinking(text: str | None) -> dict[str, Any] | None:
    # the model's thinking (``think``): kept with the turn, sent back by chat_body
    return {"ollama": {"thinking": text}} if text else None


def parse_chat(resp: Response) -> ChatResult:
    """A non-streamed ``/api/chat`` answer (decoded into :class:`ChatAnswer` by the core)."""
    answer: ChatAnswer = resp.data
    message = answer.message
    raw = decode_json(resp.content)
    calls = tool_calls(message.tool_calls, raw) if message is not None else None
    return ChatResult(
        text=message.content if message is not None else "",
        finish_reason=_finish(answer.done_reason, calls),
        native_finish_reason=answer.done_reason,
        model=answer.model,
        tool_calls=calls,
        extra_content=_thinking(message.thinking) if message is not None else None,
        raw=raw,
    )


def parse_generate(resp: Response) -> ChatResult:
    """A non-streamed ``/api/generate`` answer."""
    answer: GenerateAnswer = resp.data
    return ChatResult(
        text=answer.response,
        finish_reason=_finish(answer.done_reason),
        native_finish_reason=answer.done_reason,
        model=answer.model,
        extra_content=_thinking(answer.thinking),
        raw=decode_json(resp.content),
    )


def parse_embed(resp: Response) -> EmbedResult:
    """An ``/api/embed`` answer: ``embeddings`` holds one vector per input, in order.

    The rows carry no index, so they are kept as sent, every one of them: the core refuses
    a row that is not a list of numbers, or a count that differs from the inputs', instead
    of dropping a row and shifting the rest onto the wrong inputs. ``raw`` holds the body's
    other fields: the vectors are decoded once, into ``vectors``.
    """
    answer: EmbedAnswer = resp.data
    return EmbedResult(
        vectors=answer.embeddings,
        model=answer.model,
        raw=_without_vectors(resp.content),
    )


def _without_vectors(content: bytes) -> dict[str, Any]:
    # msgspec.Raw only marks where each value is: the vectors are skipped, never rebuilt
    fields = _FIELDS.decode(content)
    return {name: _decode(value) for name, value in fields.items() if name != "embeddings"}


def parse_tags(resp: Response) -> InvokeResult:
    """``GET /api/tags``: the local models (``models``, a list of model summaries)."""
    tags: Tags = resp.data
    return InvokeResult(data=tags.models)


def _chunk(event: Event, line: Line, text: str,
           wire: list[WireToolCall] | None = None) -> StreamChunk:
    raw = decode_json(event.data)
    calls = tool_calls(wire, raw)
    if line.done:
        return StreamChunk(delta=text, finish_reason=_finish(line.done_reason, calls),
                           native_finish_reason=line.done_reason, done=True,
                           tool_calls=calls, raw=raw)
    return StreamChunk(delta=text, tool_calls=calls, raw=raw)


def _failure(event: Event) -> StreamFailure:
    # the status stays 200 once the stream has started: the error comes as a line, and
    # classify_error reads it as any error body, generically decoded
    return StreamFailure(data=decode_json(event.data))


def parse_chat_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One NDJSON line of a streamed ``/api/chat`` (decoded into :class:`ChatLine`)."""
    line: ChatLine | None = event.json
    if line is None:
        return None  # not JSON: skip it; a stream without "done" ends interrupted
    if line.error is not UNSET:
        return _failure(event)
    message = line.message
    if message is None:
        return _chunk(event, line, "")
    # Ollama streams tool calls whole, in a line with no text: the core keeps that chunk,
    # and turns the "stop" that ends the stream into "tool_calls"
    return _chunk(event, line, message.content, message.tool_calls)


def parse_generate_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One NDJSON line of a streamed ``/api/generate`` (decoded into :class:`GenerateLine`)."""
    line: GenerateLine | None = event.json
    if line is None:
        return None
    if line.error is not UNSET:
        return _failure(event)
    return _chunk(event, line, line.response)


def usage_of(data: object) -> Usage | None:
    """Usage from ``prompt_eval_count`` (input) and ``eval_count`` (output); durations in ns
    go to ``details``. ``None`` when the body or line reports neither count."""
    if not isinstance(data, Metered):
        return None
    given, taken = data.prompt_eval_count, data.eval_count
    if given is None and taken is None:
        return None
    durations = (
        ("total_duration", data.total_duration),
        ("load_duration", data.load_duration),
        ("prompt_eval_duration", data.prompt_eval_duration),
        ("eval_duration", data.eval_duration),
    )
    return Usage(
        input_tokens=given or 0,
        output_tokens=taken or 0,
        details={name: value for name, value in durations if value is not None},
    )

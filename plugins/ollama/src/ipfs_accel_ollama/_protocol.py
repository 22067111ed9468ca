"""Ollama's native wire format: request bodies, response and NDJSON event parsers.

Routes (docs/openapi.yaml, "Ollama API" 0.1.0): ``POST /api/chat``, ``POST /api/generate``,
``POST /api/embed``, ``GET /api/tags``. ``stream`` defaults to true on the server, so every
unary request says ``"stream": false``; streams are NDJSON, one JSON object a line, the last
with ``"done": true``, ``done_reason`` and the token counts. Sampling parameters live in the
``options`` object, not at the top level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    Usage,
)

__all__ = [
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
    "usage_of",
]

OPTION_NAMES: dict[str, str] = {
    "max_tokens": "num_predict",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
}
"""The common parameters and their names inside Ollama's ``options`` object."""

_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def _model(call: Call) -> str:
    if not call.model:
        raise ConfigurationError(
            f"ollama {call.operation} needs a model: pass model=, or set it on the endpoint"
        )
    return call.model


def _common(call: Call, keep_alive: str | int | None) -> dict[str, Any]:
    """Model, the pass-through params, and the common params moved into ``options``."""
    params = dict(call.params)
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


def chat_body(call: Call, *, stream: bool, keep_alive: str | int | None = None) -> dict[str, Any]:
    """The ``/api/chat`` request body."""
    body = _common(call, keep_alive)
    body["messages"] = call.messages or []
    body["stream"] = stream
    return body


def generate_body(
    call: Call, *, stream: bool, keep_alive: str | int | None = None
) -> dict[str, Any]:
    """The ``/api/generate`` request body."""
    body = _common(call, keep_alive)
    body["prompt"] = call.prompt or ""
    body["stream"] = stream
    return body


def embed_body(call: Call, *, keep_alive: str | int | None = None) -> dict[str, Any]:
    """The ``/api/embed`` request body (``input`` as a list: one vector per string)."""
    body = _common(call, keep_alive)
    body["input"] = list(call.inputs or [])
    return body


def _object(resp: Response) -> Mapping[str, Any]:
    data = resp.data
    if not isinstance(data, Mapping):
        raise TypeError("the body is not a JSON object")
    return data


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_chat(resp: Response) -> ChatResult:
    """A non-streamed ``/api/chat`` answer."""
    data = _object(resp)
    message = data.get("message")
    message = message if isinstance(message, Mapping) else {}
    tool_calls = message.get("tool_calls")
    return ChatResult(
        text=_str(message.get("content")) or "",
        finish_reason=_str(data.get("done_reason")),
        model=_str(data.get("model")),
        tool_calls=list(tool_calls) if isinstance(tool_calls, list) and tool_calls else None,
        raw=data,
    )


def parse_generate(resp: Response) -> ChatResult:
    """A non-streamed ``/api/generate`` answer."""
    data = _object(resp)
    return ChatResult(
        text=_str(data.get("response")) or "",
        finish_reason=_str(data.get("done_reason")),
        model=_str(data.get("model")),
        raw=data,
    )


def parse_embed(resp: Response) -> EmbedResult:
    """An ``/api/embed`` answer: ``embeddings`` holds one vector per input, in order.

    The rows carry no index, so they are kept as sent, every one of them: the core refuses
    a row that is not a list of numbers, or a count that differs from the inputs', instead
    of dropping a row and shifting the rest onto the wrong inputs.
    """
    data = _object(resp)
    vectors = data.get("embeddings")
    if not isinstance(vectors, list):
        raise TypeError("the body has no 'embeddings' list")
    return EmbedResult(
        vectors=list(vectors),
        model=_str(data.get("model")),
        raw=data,
    )


def parse_tags(resp: Response) -> InvokeResult:
    """``GET /api/tags``: the local models (``models``, a list of model summaries)."""
    data = _object(resp)
    models = data.get("models")
    return InvokeResult(data=list(models) if isinstance(models, list) else [])


def _chunk(event: Event, text: str) -> StreamChunk:
    data = event.json
    if data.get("done") is True:
        return StreamChunk(
            delta=text, finish_reason=_str(data.get("done_reason")), done=True, raw=data
        )
    return StreamChunk(delta=text, raw=data)


def _event_data(event: Event) -> Mapping[str, Any] | StreamFailure | None:
    data = event.json
    if not isinstance(data, Mapping):
        return None  # not a JSON object: skip it; a stream without "done" ends interrupted
    if "error" in data:
        # the status stays 200 once the stream has started: the error comes as a line
        return StreamFailure(data=dict(data))
    return data


def parse_chat_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One NDJSON line of a streamed ``/api/chat``."""
    data = _event_data(event)
    if not isinstance(data, Mapping):
        return data
    message = data.get("message")
    text = _str(message.get("content")) if isinstance(message, Mapping) else None
    return _chunk(event, text or "")


def parse_generate_event(event: Event) -> StreamChunk | StreamFailure | None:
    """One NDJSON line of a streamed ``/api/generate``."""
    data = _event_data(event)
    if not isinstance(data, Mapping):
        return data
    return _chunk(event, _str(data.get("response")) or "")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_of(data: Any) -> Usage | None:
    """Usage from ``prompt_eval_count`` (input) and ``eval_count`` (output); durations in ns
    go to ``details``. ``None`` when the body or line reports neither count."""
    if not isinstance(data, Mapping):
        return None
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    details = {
        name: float(data[name])
        for name in _DURATIONS
        if isinstance(data.get(name), (int, float)) and not isinstance(data.get(name), bool)
    }
    return Usage(
        input_tokens=_count(data.get("prompt_eval_count")),
        output_tokens=_count(data.get("eval_count")),
        details=details,
    )

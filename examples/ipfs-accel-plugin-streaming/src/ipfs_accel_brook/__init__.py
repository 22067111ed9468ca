"""An example third-party ipfs-accel backend for the (made-up) Brook API.

The Brook API has two routes. ``POST /v2/chat`` answers one reply, or with ``"stream": true``
a server-sent event stream (``start``, ``text``... ``end``); ``POST /v2/embed`` answers one
vector per input text. The key travels as ``Authorization: Key <key>``, our request ID as
``X-Client-Request-ID``; the server's ID comes back in ``Brook-Request-ID`` (and in the body).
Errors are ``{"error": {"message", "code", "retry_in"}}``.

Tool calls: a chat (unary or streamed) may offer ``tools`` and a ``tool_mode``, and carry
assistant turns with ``calls`` and ``tool`` turns with the answers; a reply's message carries
its ``calls`` (each with Brook's ``id``), a stream sends them as ``call`` and ``call_input``
events. ``_tools`` maps OpenAI's vocabulary to that form and back. ``backend_info`` declares
``features``: tools on chat and stream_chat, nothing on generate, so the core refuses tools
there (and response formats and images everywhere) before anything is sent.

The plugin only translates, and reads every answer into the Structs of ``_wire``: the core
queues, retries, counts and propagates request IDs. ``docs/writing-a-plugin.md`` walks
through this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from ipfs_accel import (
    BackendInfo,
    Call,
    ChatResult,
    Classification,
    ConfigurationError,
    EmbedResult,
    EndpointConfig,
    ErrorKind,
    Event,
    Exchange,
    Failure,
    Response,
    StreamChunk,
    StreamFailure,
    Usage,
    decode_json,
    default_classification,
    hookimpl,
    normalize_finish_reason,
    tools,
)

from ._tools import MAPPED, call_delta, chat_tools, tool_calls, turn_fields
from ._wire import EVENTS, CallInput, CallStart, ChatReply, EmbedReply, End, Meter, Start, Text

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = [
    "FINISH",
    "backend_info",
    "classify_error",
    "conformance_case",
    "parse_usage",
    "send",
]

FINISH = {
    "end_of_turn": "stop",
    "stop_sequence": "stop",
    "max_length": "length",
    "filtered": "content_filter",
    "tool_call": "tool_calls",
}
"""Brook's ``end`` values (matched in any case) in the core's finish_reason vocabulary."""

_COMMON = {"max_tokens": "max_new_tokens", "temperature": "temperature", "top_p": "nucleus",
           "stop": "stop_sequences"}
"""The common call parameters under their Brook names; any other parameter passes through."""

_TOOLS = frozenset({"tools"})
_FEATURES = {"chat": _TOOLS, "stream_chat": _TOOLS,
             "generate": frozenset[str](), "stream_generate": frozenset[str]()}
"""What each text operation's requests may carry beyond text: tools on the chat routes only
(generate is one user turn: no tools, no tool turns). No response formats, no images."""


@hookimpl
def backend_info() -> BackendInfo:
    """The brook backend: its name, defaults (a chat model and an embedding model), env vars,
    operations and what each text operation takes (tools on chat and stream_chat)."""
    return BackendInfo(
        name="brook",
        description="The made-up Brook API (an example plugin with streams and embeddings).",
        provider="brook",
        default_base_url="http://localhost:8766",
        base_url_env=("BROOK_BASE_URL",),
        api_key_env=("BROOK_API_KEY",),
        default_model="brook-chat-1",
        default_models={"embed": "brook-embed-1"},
        operations=frozenset({"chat", "generate", "stream_chat", "stream_generate", "embed"}),
        request_id_header="X-Client-Request-ID",
        server_request_id_headers=("brook-request-id",),
        features=_FEATURES,
    )


def _auth(endpoint: EndpointConfig) -> dict[str, str]:
    key = endpoint.api_key
    return {"authorization": f"Key {key.reveal()}"} if key is not None else {}


def _text(content: Any) -> str:
    """OpenAI-style message content (a string, or a list of text parts) as Brook's text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise ConfigurationError("brook takes text only: content must be a string or text parts")


def _turns(call: Call) -> list[dict[str, Any]]:
    if call.messages is None:  # generate: the prompt is one user turn
        return [{"role": "user", "text": call.prompt or ""}]
    names = tools.tool_names(call.messages)  # tool answers name their call's tool in Brook
    return [_turn(m, i, names) for i, m in enumerate(call.messages)]


def _turn(message: Mapping[str, Any], i: int, names: Mapping[str, str]) -> dict[str, Any]:
    # content None: an assistant turn that only calls tools (as ChatResult.message gives it)
    turn = {"role": str(message.get("role", "user")), "text": _text(message.get("content") or "")}
    return {**turn, **turn_fields(message, i, names)}


def _chat_body(call: Call, *, stream: bool) -> dict[str, Any]:
    # A dict, not a Struct: parameters this plugin does not know go to the API unchanged.
    body: dict[str, Any] = {"model": call.model, "messages": _turns(call)}
    if not call.model_named:
        # Our default, not the caller's choice: the server may answer from a sibling model
        # when this one is busy. A model the caller named is sent as given and kept.
        body["allow_fallback"] = True
    body.update(chat_tools(call.params))
    for name, value in call.params.items():
        if name in MAPPED:
            continue
        if name == "stop" and isinstance(value, str):
            value = [value]  # noqa: PLW2901 - the one parameter whose form changes
        body[_COMMON.get(name, name)] = value
    if stream:
        body["stream"] = True
    return body


def _chat(resp: Response) -> ChatResult:
    reply: ChatReply = resp.data  # already a ChatReply: the core decoded it
    raw = decode_json(resp.content)
    return ChatResult(
        text=reply.message.text,
        tool_calls=tool_calls(reply.message.calls, raw),
        finish_reason=normalize_finish_reason(reply.end, FINISH),
        native_finish_reason=reply.end,
        model=reply.model,
        server_request_id=reply.id,  # stands in only when there is no Brook-Request-ID header
        raw=raw,
    )


def _event(event: Event) -> StreamChunk | StreamFailure | None:
    data = event.json  # a Struct of EVENTS by the event's name; anything else generic
    if isinstance(data, Text):
        return StreamChunk(delta=data.text)
    if isinstance(data, (CallStart, CallInput)):
        # one fragment of a tool call: the core joins them into the call on the end chunk
        return StreamChunk(tool_call_deltas=[call_delta(data)])
    if isinstance(data, Start):
        return StreamChunk(server_request_id=data.id)  # no text: the core only notes the ID
    if isinstance(data, End):
        # the last event: without done=True the stream would count as cut off
        return StreamChunk(done=True, finish_reason=normalize_finish_reason(data.end, FINISH),
                           native_finish_reason=data.end)
    if event.event == "error":
        return StreamFailure(data=data)  # classified by classify_error, raised, never text
    return None  # a ping, or an event type newer than this plugin


def _embed(resp: Response) -> EmbedResult:
    reply: EmbedReply = resp.data
    rows = sorted(reply.embeddings, key=lambda row: row.index)
    if [row.index for row in rows] != list(range(len(rows))):
        raise ValueError("the embedding rows' indexes are not 0..n-1")  # a ResponseError
    # raw left out: the body is mostly the vectors, which the result already holds
    return EmbedResult(vectors=[row.values for row in rows], model=reply.model)


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """One call as the Brook API's exchange: ``/v2/chat`` (unary or SSE) or ``/v2/embed``."""
    headers = _auth(endpoint)
    if call.operation == "embed":
        # Never allow_fallback here: vectors from another model are not comparable.
        body = {"model": call.model, "texts": call.inputs or [], **call.params}
        return Exchange(path="/v2/embed", json=body, headers=headers, parse=_embed,
                        response_type=EmbedReply)
    if call.operation in ("stream_chat", "stream_generate"):
        return Exchange(path="/v2/chat", json=_chat_body(call, stream=True), headers=headers,
                        stream="sse", parse_event=_event, event_type=EVENTS)
    return Exchange(path="/v2/chat", json=_chat_body(call, stream=False), headers=headers,
                    parse=_chat, response_type=ChatReply)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Tokens from a reply's or a stream event's ``meter``.

    In a stream ``start`` carries the prompt's tokens and ``end`` the reply's; the core
    merges the two reports.
    """
    meter = getattr(data, "meter", None)  # a ChatReply, EmbedReply, Start or End has one
    if not isinstance(meter, Meter):
        return None
    return Usage(input_tokens=meter.read, output_tokens=meter.written)


class _Problem(msgspec.Struct):
    message: str | None = None
    code: str | None = None
    retry_in: float | None = None


class _ErrorBody(msgspec.Struct):
    error: _Problem


_CODES = {
    "quota_exhausted": (ErrorKind.QUOTA_EXCEEDED, False),
    "context_too_long": (ErrorKind.CONTEXT_LENGTH, False),
    "busy": (ErrorKind.OVERLOADED, True),
}


@hookimpl
def classify_error(failure: Failure) -> Classification:
    """The core's default, refined by Brook's ``code`` and its ``retry_in`` seconds."""
    c = default_classification(failure)
    try:  # error bodies come generic (any shape at all): fit them here, never raise
        problem = msgspec.convert(failure.data, _ErrorBody).error
    except msgspec.ValidationError:
        return c
    if problem.code is not None:
        c.code = problem.code
        if problem.code in _CODES:
            c.kind, c.retryable = _CODES[problem.code]
    if c.retry_after is None and problem.retry_in is not None and problem.retry_in >= 0:
        c.retry_after = problem.retry_in  # a Retry-After header, when sent, wins
    return c


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs_accel.testing`` and ``ipfs-accel report`` drive this backend."""
    from ._case import case  # noqa: PLC0415 - the kit loads only here

    return case()

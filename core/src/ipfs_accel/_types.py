"""Typed values that cross the core/plugin boundary and come back to the user: msgspec
Structs, cheap to build, typed, and with a repr that says what is there."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import msgspec

from ._batch_types import BatchLimits, LinesBody
from ._errors import ErrorKind
from ._finish import FINISH_REASONS, fit_finish_reason, normalize_finish_reason
from ._ratelimits import RateLimits
from ._secrets import mask_secret_values
from ._toolcall import ToolCall, ToolCallDelta
from ._usage import Usage

__all__ = [
    "FINISH_REASONS",
    "BackendInfo",
    "Call",
    "ChatResult",
    "Classification",
    "EmbedResult",
    "Exchange",
    "Failure",
    "InvokeResult",
    "Operation",
    "RateLimits",
    "Response",
    "StreamChunk",
    "StreamFailure",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "fit_finish_reason",
    "normalize_finish_reason",
]

class _Shown:
    """A stand-in whose repr is a fixed text (``<12 bytes>``), for masked reprs."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _summary(value: Any) -> _Shown:
    if value is None:
        return _Shown("None")
    if isinstance(value, bytes | bytearray):
        return _Shown(f"<{len(value)} bytes>")
    return _Shown(f"<{type(value).__name__}>")


def _names(headers: Mapping[str, str]) -> _Shown:
    return _Shown(f"<headers {sorted(headers)!r}>" if headers else "{}")


def _repr(obj: object, fields: list[tuple[str, Any]]) -> str:
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in fields)})"


class Operation(str, enum.Enum):
    """The operations every backend is called with. Plugins may offer more via ``invoke``."""

    CHAT = "chat"
    GENERATE = "generate"
    EMBED = "embed"
    STREAM_CHAT = "stream_chat"
    STREAM_GENERATE = "stream_generate"


class BackendInfo(msgspec.Struct, kw_only=True, frozen=True):
    """What a plugin declares about its backend (the ``backend_info`` hook).

    ``options`` is a Struct type of the plugin's own endpoint settings (for example the
    ``anthropic_version`` header); the core validates ``create_endpoint`` keywords that are not
    core settings against it, and hands the instance to ``send`` as ``endpoint.options``.

    ``default_models`` names a default per operation (``{"embed": "text-embedding-3-small"}``)
    where one model cannot serve them all; ``default_model`` serves the operations it does not
    name. A default is used only when neither the call nor the endpoint names a model.

    ``features`` says, per operation, what its requests may carry beyond plain text:
    ``"tools"`` (``tools``, ``tool_choice``, tool calls and tool results in the messages),
    ``"json_schema"`` and ``"json_object"`` (``response_format``), ``"images"``
    (``image_url`` parts). The core refuses a call that needs one its operation lacks with a
    ``ConfigurationError`` before anything is sent. ``None`` (a plugin that declares
    nothing) leaves it to the plugin.

    ``batch``: the limits of the API's batches (:class:`~ipfs_accel.BatchLimits`), for a
    plugin that implements the ``batch_exchange`` and ``batch_result`` hooks; ``None``: no
    batches.
    """

    name: str
    description: str = ""
    default_base_url: str | None = None
    base_url_env: tuple[str, ...] = ()
    api_key_env: tuple[str, ...] = ()
    api_key_required: bool = False
    default_model: str | None = None
    default_models: Mapping[str, str] = {}
    operations: frozenset[str] = frozenset()
    request_id_header: str = "X-Request-ID"
    server_request_id_headers: tuple[str, ...] = ("x-request-id", "request-id")
    options: type[msgspec.Struct] | None = None
    features: Mapping[str, frozenset[str]] | None = None
    provider: str = ""
    batch: BatchLimits | None = None


class Call(msgspec.Struct, kw_only=True):
    """One call as the user made it, handed to the plugin's ``send`` hook.

    ``params`` holds the keyword parameters: the common ``max_tokens``, ``temperature``,
    ``top_p`` and ``stop`` (the plugin maps them to its API's names) and anything else,
    which the plugin passes through to the API unchanged.

    ``model`` is always filled when there is one: the call's ``model=``, else the endpoint's
    ``model`` setting, else the backend's default for the operation. ``model_named`` says
    whether the user named it (the call or the endpoint): a named model is sent as given,
    never swapped for another.
    """

    operation: str
    model: str | None = None
    model_named: bool = False
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    inputs: list[str] | None = None
    params: dict[str, Any] = {}
    request_id: str = ""


class Response(msgspec.Struct, kw_only=True):
    """One HTTP response as plugins see it: status, headers, raw body and decoded JSON.

    ``data`` is the body decoded as JSON, or ``None`` when it is empty or not JSON.
    The repr shows the status, the header names and the body's size, never a header value
    or the body: a server may echo the key in either.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    data: Any = None

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("status", self.status),
            ("headers", _names(self.headers)),
            ("content", _summary(self.content)),
            ("data", _summary(self.data)),
        ]

    def __repr__(self) -> str:
        return _repr(self, self.__rich_repr__())


class ChatResult(msgspec.Struct, kw_only=True):
    """The result of ``chat`` or ``generate``, the same shape for every backend.

    ``finish_reason`` is one of :data:`FINISH_REASONS` whatever the backend;
    ``native_finish_reason`` is the API's own value (``end_turn``, ``STOP``, ``COMPLETE``...).
    ``tool_calls`` are the functions the model asked to call (``finish_reason`` is then
    ``"tool_calls"``); :attr:`message` is the assistant turn to append to the messages
    before the tools' answers. ``extra_content`` is what the backend needs back with that
    turn that OpenAI's form has no field for (by vendor); it travels in :attr:`message`.
    """

    text: str
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    model: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    request_id: str = ""
    server_request_id: str | None = None
    tool_calls: list[ToolCall] | None = None
    extra_content: dict[str, Any] | None = None
    raw: Any = None

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message of this answer in OpenAI's form, to append to the
        conversation: ``messages += [result.message, *tool_answers]``."""
        out: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            out["tool_calls"] = [call.to_message() for call in self.tool_calls]
            if not self.text:
                out["content"] = None
        if self.extra_content:
            out["extra_content"] = self.extra_content
        return out


class EmbedResult(msgspec.Struct, kw_only=True):
    """The result of ``embed``: one vector per input, in input order."""

    vectors: list[list[float]]
    model: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    request_id: str = ""
    server_request_id: str | None = None
    raw: Any = None


class InvokeResult(msgspec.Struct, kw_only=True):
    """The result of a backend-specific operation called through ``invoke``."""

    data: Any
    usage: Usage = msgspec.field(default_factory=Usage)
    request_id: str = ""
    server_request_id: str | None = None


class StreamChunk(msgspec.Struct, kw_only=True):
    """One piece of a streamed reply.

    ``delta`` is the new text. The plugin sets ``done`` on the event that ends the stream;
    the core then yields one last chunk with ``done=True`` and the call's final ``usage``.
    A plugin may set ``server_request_id`` from an event when the server sends its ID only
    in the body; the core then puts it on this and later chunks (a header's ID wins).
    ``finish_reason`` and ``native_finish_reason`` are as on :class:`ChatResult`.

    Tool calls: a plugin puts the fragments an event carries in ``tool_call_deltas`` (or
    whole calls in ``tool_calls``, where its API sends them whole); the core joins the
    fragments and puts the whole calls in ``tool_calls`` of the chunk that ends the turn
    (the one with a ``finish_reason``; a stream that ends without one after tool calls
    ends with ``"tool_calls"``). A chunk with ``tool_call_deltas`` set (even to an empty
    list) reaches the caller, and so ends the window in which a failed stream is opened
    again. ``model`` and ``extra_content`` (as on :class:`ChatResult`) are set by a plugin
    where an event carries them.
    """

    delta: str = ""
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    done: bool = False
    usage: Usage | None = None
    request_id: str = ""
    server_request_id: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_deltas: list[ToolCallDelta] | None = None
    model: str | None = None
    extra_content: dict[str, Any] | None = None
    raw: Any = None


class StreamFailure(msgspec.Struct, kw_only=True):
    """Returned by a plugin's event parser when the server reports an error mid-stream.

    The core hands it to ``classify_error`` (as a :class:`Failure` with ``in_stream=True``)
    and raises the resulting error: an error event never reaches the user as text.
    """

    data: Any
    status: int | None = None

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("data", _summary(self.data)),  # an error event may quote the key back
            ("status", self.status),
        ]

    def __repr__(self) -> str:
        return _repr(self, self.__rich_repr__())


ResponseParser: TypeAlias = Callable[[Response], "ChatResult | EmbedResult | InvokeResult | Exchange"]
EventParser: TypeAlias = Callable[[Any], "StreamChunk | StreamFailure | None"]


class Exchange(msgspec.Struct, kw_only=True):
    """One HTTP exchange a plugin asks the core to perform (the ``send`` hook's answer).

    ``path`` is joined to the endpoint's base URL (an absolute URL is used as it is).
    ``json`` is encoded by the core. For a unary call ``parse`` turns the response into
    a result, or into a further Exchange (a follow-up request, such as the next batch).
    For a stream, ``stream`` is ``"sse"`` or ``"ndjson"`` and ``parse_event`` turns one
    event (an SSE event's ``(event, data)`` pair, or one decoded NDJSON line) into a chunk.

    Typed decoding: with ``response_type`` (a msgspec Struct, or any type msgspec decodes)
    the core decodes a 2xx body straight into it, once, and ``parse`` and ``parse_usage``
    receive that value as the response's ``data``. Fields the type does not declare are
    skipped; JSON that does not fit (a field of the wrong type, a missing required one) is
    a :class:`~ipfs_accel.ResponseError` that names the backend and the field. ``event_type``
    does the same for each stream event's ``json``: one type for every event, or a mapping
    from SSE event name to type (events it does not name are decoded generically). Data
    that is not JSON at all (``[DONE]``) still gives ``None``.

    ``body`` (instead of ``json``): a body the core streams from a file of JSON lines, as
    a JSON document or a multipart upload (:class:`~ipfs_accel.LinesBody`; a batch's).

    ``resume``: on a follow-up exchange, a retry of the call starts again here, not from
    its first exchange: what came before it is done and must not be sent again (a batch
    created from a file already uploaded). Without it a retry starts the chain over.
    """

    method: str = "POST"
    path: str
    json: Any = None
    body: LinesBody | None = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = {}
    stream: Literal["sse", "ndjson"] | None = None
    parse: ResponseParser | None = None
    parse_event: EventParser | None = None
    response_type: Any = None
    event_type: Any = None
    resume: bool = False

    # The repr masks headers and query parameters whose names look secret (the auth
    # header is here): an exchange sits in the locals of every frame on a failing call.
    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("method", self.method),
            ("path", self.path),
            ("json", self.json),
            ("params", mask_secret_values(self.params)),
            ("headers", mask_secret_values(self.headers)),
            ("stream", self.stream),
            ("parse", self.parse),
            ("parse_event", self.parse_event),
        ]

    def __repr__(self) -> str:
        return _repr(self, self.__rich_repr__())


class Failure(msgspec.Struct, kw_only=True):
    """A failed exchange, handed to ``classify_error``.

    Either ``exception`` is set (no usable response: a transport error or timeout) or
    ``status``, ``headers``, ``content`` and ``data`` describe the error response.
    ``in_stream`` is true for an error event received inside a 2xx stream. Like
    :class:`Response`, the repr shows header names and sizes, never values or the body.
    """

    operation: str
    status: int | None = None
    headers: Mapping[str, str] = {}
    content: bytes = b""
    data: Any = None
    exception: BaseException | None = None
    in_stream: bool = False

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("operation", self.operation),
            ("status", self.status),
            ("headers", _names(self.headers)),
            ("content", _summary(self.content)),
            ("data", _summary(self.data)),
            ("exception", self.exception),
            ("in_stream", self.in_stream),
        ]

    def __repr__(self) -> str:
        return _repr(self, self.__rich_repr__())


class Classification(msgspec.Struct, kw_only=True):
    """What ``classify_error`` decided about a failure.

    ``retry_after`` is the wait in seconds the server asked for (``None`` if it did not
    say). ``retryable`` decides whether the core tries again.
    """

    kind: ErrorKind
    retryable: bool
    message: str = ""
    code: str | None = None
    retry_after: float | None = None

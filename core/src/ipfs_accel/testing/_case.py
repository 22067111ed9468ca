"""What a plugin tells the conformance suite about its API: a :class:`Case`."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgspec

from .._backend import Backend
from .._registry import Registry
from ._actions import Reply, Stream
from ._batch_case import BatchCase

__all__ = ["TOOL", "Case", "CheckResult", "ToolCase", "chat_call", "openai_chat_case",
           "registry_for"]

CallFn = Callable[[Backend, str, str], Any]


def chat_call(backend: Backend, endpoint_id: str, request_id: str) -> Any:
    """The usual valid call: a one-message ``chat`` (the endpoint's default model)."""
    return backend.chat(
        [{"role": "user", "content": "ping"}], endpoint_id=endpoint_id, request_id=request_id
    )


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}


TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
"""The tool the kit's tool check offers; the case's replies call it as
``get_weather({"city": "Paris"})``."""


@dataclass(frozen=True, kw_only=True)
class ToolCase:
    """How a backend with tools answers the kit's tool round trip.

    - ``reply``: the API's answer (as it sends it) to a chat offering :data:`TOOL`, asking
      for one call: ``get_weather`` with ``{"city": "Paris"}``.
    - ``stream``: the same answer streamed (the API's lines, as for ``Case.stream``);
      ``None`` where the backend has no stream_chat.
    - ``id``: the call's ID as the API sends it; ``None`` for an API that sends none (the
      core then makes one, and the check only asks that it is there and round-trips).

    The check then sends the turn back (``result.message`` and a ``tool`` message with the
    answer ``"sunny, 21 C"``), replied to with the case's chat reply, and looks for the
    function's name, the answer (and the ID, where the API has one) in that request.
    """

    reply: Reply
    stream: Stream | None = None
    id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Case:
    """How to drive one backend through the conformance checks.

    - ``backend``: the backend name (``backend_info().name``).
    - ``plugin``: the plugin module (or its import name) to register directly; ``None``
      finds ``backend`` through the installed entry points.
    - ``call(backend, endpoint_id, request_id)``: make one valid call and return its result
      (which must carry ``request_id``); :func:`chat_call` by default.
    - ``success``: the canned success reply of that call, shaped as the real API answers.
    - ``tokens``: ``(input, output)`` token counts the plugin reads from ``success``.
    - ``auth``: ``(header, template)``, how the key travels, e.g. ``("authorization",
      "Bearer {key}")`` or ``("x-api-key", "{key}")``.
    - ``request_id_header``: the header that carries our request ID to the server.
    - ``settings``: extra ``create_endpoint`` settings the call needs (a model, options).
    - ``bad_request``, ``overloaded``, ``rate_limited``: the API's error replies for 400,
      503/529 and 429 (the checks set ``retry-after`` on ``rate_limited`` themselves).

    Optional parts, each letting the kit drive one more operation itself (sync and async,
    with one user message ``"ping"``, the endpoint's ``settings`` giving the model); a case
    without them is checked exactly as before, and the checks that need them say they
    were skipped:

    - ``text``: what the chat reply says. Declaring it means ``chat`` is covered, replied to
      with ``chat`` (or ``success`` when ``chat`` is ``None``), whose usage is ``tokens``.
    - ``finish``: the ``finish_reason`` the chat reply and the stream end with, in the one
      vocabulary (:data:`ipfs_accel.FINISH_REASONS`), e.g. ``"stop"`` for ``end_turn``.
    - ``stream``: the streamed chat reply (a :class:`Stream`: the API's lines, ending with
      its terminal event, ``[DONE]`` or whatever the API ends with); its deltas spell
      ``text`` and its usage is ``tokens``.
    - ``embed``: the reply to ``embed`` of ``inputs``, one vector per input.
    - ``params``: where each common parameter (``max_tokens``, ``temperature``, ``top_p``,
      ``stop``) must appear in the chat request body, as a dotted path (``"p"``,
      ``"stop_sequences"``, ``"generationConfig.maxOutputTokens"``); ``None`` for one the
      API has no room for (the plugin drops it and the call still succeeds).
    - ``tools``: the backend's answers for the tool round trip (a :class:`ToolCase`); a
      backend that declares ``tools`` in ``BackendInfo.features`` should declare it.
    - ``batch``: how the provider's batch API answers (a :class:`BatchCase`); a backend
      that declares ``BackendInfo.batch`` should declare it.
    """

    backend: str
    success: Reply | Stream
    auth: tuple[str, str] | None
    tokens: tuple[int, int] = (0, 0)
    call: CallFn = chat_call
    plugin: ModuleType | object | str | None = None
    request_id_header: str = "x-request-id"
    settings: Mapping[str, Any] = field(default_factory=dict)
    bad_request: Reply = field(
        default_factory=lambda: Reply(400, json=_error("conformance: bad request")))
    overloaded: Reply = field(
        default_factory=lambda: Reply(503, json=_error("conformance: overloaded")))
    rate_limited: Reply = field(
        default_factory=lambda: Reply(429, json=_error("conformance: rate limited")))
    text: str | None = None
    finish: str | None = None
    chat: Reply | None = None
    stream: Stream | None = None
    embed: Reply | None = None
    inputs: tuple[str, ...] = ("ping",)
    params: Mapping[str, str | None] = field(default_factory=dict)
    tools: ToolCase | None = None
    batch: BatchCase | None = None


def openai_chat_case(
    *,
    backend: str,
    plugin: ModuleType | object | str | None = None,
    model: str,
    auth: tuple[str, str] | None = ("authorization", "Bearer {key}"),
    extra: Mapping[str, Any] | None = None,
    call: CallFn = chat_call,
    request_id_header: str = "x-request-id",
    settings: Mapping[str, Any] | None = None,
    stream: bool | Stream = False,
    embed: bool | Reply = False,
    params: Mapping[str, str | None] | None = None,
    tools: bool = False,
) -> Case:
    """A :class:`Case` for a backend that answers chat in the OpenAI Chat Completions shape.

    The canned success is a ``chat.completion`` naming ``model`` whose one choice says
    ``"pong"`` and finishes with ``stop``, with ``usage`` of 9 prompt and 3 completion tokens
    (so ``text="pong"``, ``finish="stop"``, ``tokens=(9, 3)``); ``extra`` adds the server's
    own top-level fields (``system_fingerprint``, ``x_groq``...). ``stream=True`` declares the
    OpenAI stream of the same answer (``"po"``, ``"ng"``, the finish, a usage chunk, then
    ``[DONE]``), or pass your own :class:`Stream`; ``embed=True`` the OpenAI ``/embeddings``
    answer (a :class:`Reply` of your own otherwise). ``params`` is :attr:`Case.params`.
    ``tools=True`` declares the OpenAI answer (and, with ``stream``, the OpenAI stream, the
    arguments in two pieces) calling :data:`TOOL` for the tool round trip.
    The error replies are the kit's defaults (``{"error": {"message": ...}}``). The other
    arguments are those of :class:`Case`; the key travels as a bearer token by default.
    """
    body: dict[str, Any] = {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1764201600,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "pong"},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        **(extra or {}),
    }
    return Case(
        backend=backend, plugin=plugin, success=Reply(200, json=body), tokens=(9, 3),
        auth=auth, call=call, request_id_header=request_id_header, settings=dict(settings or {}),
        text="pong", finish="stop",
        stream=_openai_stream(model, extra) if stream is True else stream or None,
        embed=_openai_embeddings(model) if embed is True else embed or None,
        params=dict(params or {}),
        tools=_openai_tools(model, extra, stream=bool(stream)) if tools else None,
    )


def _openai_tools(model: str, extra: Mapping[str, Any] | None, *, stream: bool) -> ToolCase:
    call = {"id": "call_abc123", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    body = {
        "id": "chatcmpl-tool1", "object": "chat.completion", "created": 1764201600,
        "model": model, **(extra or {}),
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }

    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_abc123", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    return ToolCase(reply=Reply(200, json=body), id="call_abc123",
                    stream=_sse("chatcmpl-tool1", model, extra, deltas) if stream else None)


def _sse(cid: str, model: str, extra: Mapping[str, Any] | None,
         deltas: list[tuple[dict[str, Any], str | None]]) -> Stream:
    """An OpenAI chat stream: a chunk per ``(delta, finish_reason)``, then the usage chunk
    (9 prompt and 3 completion tokens) and ``[DONE]``."""
    events = [
        {"id": cid, "object": "chat.completion.chunk", "created": 1764201600, "model": model,
         **(extra or {}),
         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        for delta, finish in deltas
    ]
    events.append({"id": cid, "object": "chat.completion.chunk", "created": 1764201600,
                   "model": model, "choices": [],
                   "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
    lines: list[str] = []
    for event in events:
        lines += [f"data: {json.dumps(event)}", ""]
    return Stream([*lines, "data: [DONE]", ""])


def _openai_stream(model: str, extra: Mapping[str, Any] | None) -> Stream:
    return _sse("chatcmpl-abc123", model, extra, [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "po"}, None),
        ({"content": "ng"}, None),
        ({}, "stop"),
    ])


def _openai_embeddings(model: str) -> Reply:
    return Reply(200, json={
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0123, -0.0456, 0.0789]}],
        "model": model,
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    })


def registry_for(case: Case) -> Registry:
    """A registry that holds the case's plugin (directly, or through entry points)."""
    plugin = case.plugin
    if plugin is None:
        return Registry()
    if isinstance(plugin, str):
        plugin = importlib.import_module(plugin)
    return Registry(plugins=[plugin], entry_points=False)


class CheckResult(msgspec.Struct, kw_only=True, frozen=True):
    """The outcome of one check on one backend: passed, failed, or skipped, with the reason.

    ``skipped`` (``passed`` is then false) means there was nothing to check: the backend
    lacks the operation, or the case does not declare what the check compares; ``reason``
    says which. ``detail`` says what was verified; neither ever holds an API key.
    """

    check: str
    feature: str
    passed: bool
    skipped: bool = False
    reason: str = ""
    detail: str = ""
    seconds: float = 0.0

"""ipfs-accel backend for Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``).

Install ``ipfs-accel-plugin-ollama`` and ``Registry().get("ollama")`` finds it. The base URL
comes from ``base_url=``, else ``OLLAMA_HOST`` (``localhost:11434`` without a scheme works),
else ``http://localhost:11434``. A key (``api_key=`` or ``OLLAMA_API_KEY``) is only needed
for hosted Ollama (ollama.com) and is sent as ``Authorization: Bearer``.

Operations: ``chat``, ``generate``, ``embed``, ``stream_chat``, ``stream_generate`` (NDJSON)
and, through ``invoke``, ``list_models`` (``GET /api/tags``).

Tools, structured output and images, in OpenAI's vocabulary (mapped in ``_request``):

- ``tools`` (chat only): sent as Ollama takes them, ``{"type": "function", "function":
  {"name", "description", "parameters"}}``. ``tool_choice``: Ollama has none; ``"auto"`` is
  dropped, anything else is a ``ConfigurationError`` before sending. Tools on ``generate``
  are refused by the core (``BackendInfo.features``).
- Tool calls out: ``message.tool_calls`` become :class:`~ipfs_accel.ToolCall` with the
  arguments object as sent and a stable ID made by the core (the spec's calls have none; a
  server's own ``id`` is kept where it sends one). Streams carry the calls whole in a line
  with no text; that line is a chunk with ``tool_calls`` and the stream's ``"stop"``
  becomes ``"tool_calls"``.
- Round trip: ``result.message`` goes back as an assistant message whose ``tool_calls`` have
  object arguments (no ID); ``{"role": "tool", "tool_call_id", "content"}`` goes as a tool
  message with ``tool_name``, the function the answered call named.
- ``response_format``: ``json_schema`` -> ``format: <schema>``, ``json_object`` ->
  ``format: "json"`` (chat and generate).
- Images: ``image_url`` parts with ``data:`` URLs -> the message's ``images`` (base64);
  ``https:`` URLs are a ``ConfigurationError`` (Ollama fetches nothing). ``generate`` takes
  Ollama's own ``images=[base64, ...]``.

Billed tokens: ``input_tokens`` is ``prompt_eval_count``, ``output_tokens`` is
``eval_count``, which counts every token generated, the thinking of a ``think`` request
included (Ollama splits the thinking out of the generated text after counting). Ollama
reports no thinking count, so ``reasoning_tokens`` stays 0, and no total, so
``total_tokens`` is input plus output. The thinking text (``message.thinking``, generate's
``thinking``) is kept in ``extra_content`` as ``{"ollama": {"thinking": ...}}`` on unary
results and goes back with ``result.message``; a stream's thinking lines carry no text and
are not yielded.
"""

from __future__ import annotations

from typing import Any

import ipfs_accel
import msgspec
from ipfs_accel import (
    BackendInfo,
    Call,
    Classification,
    EndpointConfig,
    Exchange,
    Failure,
    UnsupportedOperationError,
    Usage,
    default_classification,
)
from ipfs_accel.openai_compat import bearer_headers

from . import _protocol as p
from ._answers import ChatAnswer, ChatLine, EmbedAnswer, GenerateAnswer, GenerateLine, Tags
from ._case import conformance_case as conformance_case  # the kit's optional hook

__all__ = ["OllamaOptions", "backend_info", "classify_error", "parse_usage", "send"]

_NDJSON = {"accept": "application/x-ndjson"}
_OPERATIONS = frozenset({"chat", "generate", "embed", "stream_chat", "stream_generate",
                         "list_models"})
_CHAT = frozenset({"tools", "json_schema", "json_object", "images"})
_GENERATE = frozenset({"json_schema", "json_object", "images"})
_FEATURES = {"chat": _CHAT, "stream_chat": _CHAT, "generate": _GENERATE,
            "stream_generate": _GENERATE}
"""What each text operation's requests may carry: tools only on ``/api/chat``; both routes
take ``format`` and ``images``."""


class OllamaOptions(msgspec.Struct, kw_only=True, frozen=True):
    """Ollama endpoint settings, given to ``create_endpoint``.

    ``keep_alive`` is sent with every model call (``"10m"``, seconds, ``-1`` to keep the
    model loaded); a ``keep_alive=`` passed to a call wins.
    """

    keep_alive: str | int | None = None


@ipfs_accel.hookimpl
def backend_info() -> BackendInfo:
    """Ollama: local by default, several replicas as several endpoints."""
    return BackendInfo(
        name="ollama",
        description="Ollama native API (/api/chat, /api/generate, /api/embed)",
        provider="ollama",
        default_base_url="http://localhost:11434",
        base_url_env=("OLLAMA_HOST",),
        api_key_env=("OLLAMA_API_KEY",),
        operations=_OPERATIONS,
        options=OllamaOptions,
        features=_FEATURES,
    )


@ipfs_accel.hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    """The Ollama request for one call."""
    headers = bearer_headers(endpoint)
    options = endpoint.options
    keep_alive = options.keep_alive if isinstance(options, OllamaOptions) else None
    op = call.operation
    if op == "chat":
        return Exchange(path="/api/chat",
                        json=p.chat_body(call, stream=False, keep_alive=keep_alive),
                        headers=headers, parse=p.parse_chat, response_type=ChatAnswer)
    if op == "generate":
        return Exchange(path="/api/generate",
                        json=p.generate_body(call, stream=False, keep_alive=keep_alive),
                        headers=headers, parse=p.parse_generate, response_type=GenerateAnswer)
    if op == "stream_chat":
        return Exchange(path="/api/chat",
                        json=p.chat_body(call, stream=True, keep_alive=keep_alive),
                        headers={**headers, **_NDJSON}, stream="ndjson",
                        parse_event=p.parse_chat_event, event_type=ChatLine)
    if op == "stream_generate":
        return Exchange(path="/api/generate",
                        json=p.generate_body(call, stream=True, keep_alive=keep_alive),
                        headers={**headers, **_NDJSON}, stream="ndjson",
                        parse_event=p.parse_generate_event, event_type=GenerateLine)
    if op == "embed":
        return Exchange(path="/api/embed", json=p.embed_body(call, keep_alive=keep_alive),
                        headers=headers, parse=p.parse_embed, response_type=EmbedAnswer)
    if op == "list_models":
        return Exchange(method="GET", path="/api/tags", headers=headers,
                        parse=p.parse_tags, response_type=Tags)
    raise UnsupportedOperationError(f"ollama has no operation {op!r}")


@ipfs_accel.hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    """``prompt_eval_count`` / ``eval_count`` from a body or the stream's last line, both
    already decoded into this plugin's Structs."""
    return p.usage_of(data)


@ipfs_accel.hookimpl
def classify_error(failure: Failure) -> Classification:
    """Ollama's errors are ``{"error": "..."}`` with the usual statuses (errors.mdx).

    404 (model not found: pull it first) is final; 429, 500, 502 and 503 are retried.
    An error line inside a 200 stream is a server error, retried only if nothing was
    yielded yet (the core decides that).
    """
    return default_classification(failure)

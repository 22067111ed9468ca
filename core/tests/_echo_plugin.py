"""A small OpenAI-shaped test backend, registered in fixtures and never shipped."""

from __future__ import annotations

from typing import Any

import msgspec
from ipfs_accel import (
    BackendInfo,
    Call,
    ChatResult,
    Classification,
    EmbedResult,
    EndpointConfig,
    ErrorKind,
    Event,
    Exchange,
    Failure,
    InvokeResult,
    Response,
    StreamChunk,
    StreamFailure,
    ToolCall,
    ToolCallDelta,
    Usage,
    default_classification,
    hookimpl,
)


class EchoOptions(msgspec.Struct, kw_only=True, frozen=True):
    """A plugin-specific endpoint setting, to test option validation."""

    flavour: str = "plain"


@hookimpl
def backend_info() -> BackendInfo:
    return BackendInfo(
        name="echo",
        description="test backend",
        provider="echo",
        default_base_url="http://echo.test",
        api_key_env=("ECHO_API_KEY",),
        default_model="echo-1",
        operations=frozenset({"chat", "generate", "embed", "stream_chat", "count"}),
        options=EchoOptions,
    )


def _chat(resp: Response) -> ChatResult:
    data = resp.data
    choice = data["choices"][0]
    calls = [ToolCall.of(id=c.get("id"), name=c["function"]["name"],
                         arguments=c["function"].get("arguments"), raw=c)
             for c in choice["message"].get("tool_calls") or ()]
    return ChatResult(
        text=choice["message"]["content"] or "",
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
        tool_calls=calls or None,
        raw=data,
    )


def _embed(resp: Response) -> EmbedResult:
    rows = sorted(resp.data["data"], key=lambda r: r["index"])
    return EmbedResult(vectors=[r["embedding"] for r in rows], model=resp.data.get("model"))


def _event(event: Event) -> StreamChunk | StreamFailure | None:
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    data = event.json
    if data is None:
        return None
    if "error" in data:
        return StreamFailure(data=data)
    choices = data.get("choices") or []
    if not choices:
        return None
    given = choices[0].get("delta", {})
    deltas = [ToolCallDelta(index=c.get("index", 0), id=c.get("id"),
                            name=c.get("function", {}).get("name"),
                            arguments=c.get("function", {}).get("arguments") or "")
              for c in given.get("tool_calls") or ()]
    return StreamChunk(delta=given.get("content") or "",
                       finish_reason=choices[0].get("finish_reason"),
                       tool_call_deltas=deltas or None, raw=data)


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    headers = {}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.reveal()}"
    if endpoint.options.flavour != "plain":
        headers["x-flavour"] = endpoint.options.flavour
    body: dict[str, Any] = {"model": call.model, **call.params}
    if call.operation == "embed":
        body["input"] = call.inputs
        return Exchange(path="/embeddings", json=body, headers=headers, parse=_embed)
    if call.operation == "count":
        # two exchanges in a chain: the first's answer decides the second
        def second(resp: Response) -> Exchange:
            return Exchange(
                path="/count/2", json={"n": resp.data["n"]}, headers=headers,
                parse=lambda r: InvokeResult(data=str(r.data["n"])),
                resume=bool(call.params.get("resume")),  # a retry starts here, if asked
            )

        return Exchange(path="/count/1", json=body, headers=headers, parse=second)
    if call.operation == "generate":
        body["messages"] = [{"role": "user", "content": call.prompt}]
    else:
        body["messages"] = call.messages
    if call.operation == "stream_chat":
        body["stream"] = True
        return Exchange(
            path="/chat/completions", json=body, headers=headers, stream="sse", parse_event=_event
        )
    return Exchange(path="/chat/completions", json=body, headers=headers, parse=_chat)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)
    )


@hookimpl
def classify_error(failure: Failure) -> Classification:
    c = default_classification(failure)
    data = failure.data
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
        if code == "insufficient_quota":
            return Classification(
                kind=ErrorKind.QUOTA_EXCEEDED, retryable=False, message=c.message, code=code
            )
        if code:
            c.code = code
    return c

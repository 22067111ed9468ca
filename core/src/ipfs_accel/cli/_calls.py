"""``chat`` and ``embed``: one call from the command line, its answer on stdout."""

# typer commands take their options as parameters
# ruff: noqa: PLR0917

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import msgspec
import typer
from rich.markup import escape

from .._errors import IpfsAccelError
from .._registry import Registry
from .._types import Usage
from ._common import CliError, describe_error, exit_code_for, open_backend
from ._options import (
    BackendOpt,
    JsonOpt,
    KeyEnvOpt,
    ModelOpt,
    RequestIdOpt,
    RetriesOpt,
    TimeoutOpt,
    UrlOpt,
    err,
    out,
    read_stdin,
    settings,
)

__all__ = ["chat", "embed"]


def _usage(usage: Usage) -> dict[str, Any]:
    """All of it, the cache counts and the API's own ``details`` included."""
    out: dict[str, Any] = msgspec.structs.asdict(usage)
    return out


def chat(
    backend: BackendOpt,
    prompt: Annotated[str | None, typer.Argument(help="The message; read from stdin when "
                                                  "omitted.", show_default=False)] = None,
    model: ModelOpt = None,
    endpoint_url: UrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    request_id: RequestIdOpt = None,
    json_out: JsonOpt = False,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System message.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    timeout: TimeoutOpt = None,
    max_retries: RetriesOpt = None,
) -> None:
    """Send one message and stream the reply to the terminal (--json: print the full result).

    Example: ipfs-accel chat -b openai -m gpt-4o-mini "Hello"
    """
    text = prompt if prompt is not None else read_stdin("prompt")
    be, ids, urls, env = open_backend(
        Registry(), backend, endpoint_urls=[endpoint_url] if endpoint_url else [],
        api_key_env=api_key_env, model=model, settings=settings(timeout, max_retries))
    params: dict[str, Any] = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}]
    ops = be.info.operations
    try:
        with be:
            if "chat" not in ops and "stream_chat" not in ops and "generate" not in ops:
                raise CliError(f"backend {backend} does not offer chat",
                               hint="see `ipfs-accel backends`")
            if json_out or "stream_chat" not in ops:
                if "chat" in ops:
                    result = be.chat(messages, request_id=request_id, **params)
                else:
                    result = be.generate(text, request_id=request_id, **params)
                if json_out:
                    out.print_json(json.dumps({
                        "text": result.text, "finish_reason": result.finish_reason,
                        "native_finish_reason": result.native_finish_reason,
                        "model": result.model, "usage": _usage(result.usage),
                        "request_id": result.request_id,
                        "server_request_id": result.server_request_id, "endpoint": ids[0],
                    }))
                else:
                    sys.stdout.write(result.text + "\n")
                return
            for chunk in be.stream_chat(messages, request_id=request_id, **params):
                if chunk.delta:
                    sys.stdout.write(chunk.delta)
                    sys.stdout.flush()
            sys.stdout.write("\n")
    except IpfsAccelError as exc:
        raise CliError(describe_error(exc, action="chat", base_urls=urls, env=env),
                       code=exit_code_for(exc)) from exc


def embed(
    backend: BackendOpt,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed; read from stdin "
                                                       "(one per line) when omitted.",
                                                       show_default=False)] = None,
    model: ModelOpt = None,
    endpoint_url: UrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    request_id: RequestIdOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    max_retries: RetriesOpt = None,
) -> None:
    """Embed texts: one vector per text (--json: the vectors in full).

    Example: ipfs-accel embed -b hf_tei "first text" "second text"
    """
    inputs = list(texts or []) or [t for t in read_stdin("text").splitlines() if t.strip()]
    if not inputs:
        raise CliError("nothing to embed", hint="pass texts as arguments or on stdin")
    be, ids, urls, env = open_backend(
        Registry(), backend, endpoint_urls=[endpoint_url] if endpoint_url else [],
        api_key_env=api_key_env, model=model, settings=settings(timeout, max_retries))
    try:
        with be:
            result = be.embed(inputs, request_id=request_id)
    except IpfsAccelError as exc:
        raise CliError(describe_error(exc, action="embed", base_urls=urls, env=env),
                       code=exit_code_for(exc)) from exc
    if json_out:
        out.print_json(json.dumps({
            "vectors": result.vectors, "model": result.model, "usage": _usage(result.usage),
            "request_id": result.request_id, "server_request_id": result.server_request_id,
            "endpoint": ids[0]}))
        return
    for text, vector in zip(inputs, result.vectors, strict=False):
        head = ", ".join(f"{v:.4f}" for v in vector[:4])
        label = text if len(text) <= 40 else text[:37] + "..."
        out.print(f"{escape(label)!s:42} dim={len(vector)} [{head}, ...]")
    err.print(f"[dim]request {result.request_id}, {result.usage.input_tokens} input tokens[/]")

"""Shared helpers for the gemini plugin tests: a recording fake server and spec-shaped bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx2
import ipfs_accel_gemini
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, Recorder, mock_backend

KEY = "AIzaTEST-key-0123456789abcdef"
OTHER_KEY = "AIzaOTHER-key-fedcba9876543210"
BASE = "https://generativelanguage.googleapis.com"

Handler = Callable[[httpx2.Request], httpx2.Response]


def backend(recorder: Recorder, environ: dict[str, str] | None = None, **defaults: Any) -> Backend:
    """A gemini backend whose HTTP goes to ``recorder``."""
    return mock_backend(ipfs_accel_gemini, recorder, environ=environ, **defaults)


def endpoint(b: Backend, key: str = KEY, **settings: Any) -> str:
    """An endpoint with fast, real retries."""
    return b.create_endpoint(**{"api_key": key, **FAST_RETRIES, **settings})


def usage_metadata(prompt: int = 11, candidates: int = 5, **extra: int) -> dict[str, int]:
    """``usageMetadata`` whose total is what the API adds up: prompt, candidates, thoughts
    and tool-use prompt (the cached tokens are part of the prompt already)."""
    billed = sum(v for k, v in extra.items() if k != "cachedContentTokenCount")
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + billed,
        **extra,
    }


def generate_response(
    text: str = "Hello there", *, finish: str | None = "STOP", response_id: str = "resp-123",
    usage: dict[str, int] | None = None, parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``GenerateContentResponse`` as the spec shapes it."""
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts if parts is not None else [{"text": text}]},
        "index": 0,
    }
    if finish is not None:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-flash",
        "responseId": response_id,
    }
    if usage is not None:
        body["usageMetadata"] = usage
    return body


def error_body(
    code: int, status: str, message: str = "something went wrong",
    details: list[Any] | None = None,
) -> dict[str, Any]:
    """A google.rpc error body: ``{"error": {"code", "message", "status", "details"}}``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def retry_info(delay: str) -> dict[str, str]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def json_response(status: int, body: Any) -> httpx2.Response:
    return httpx2.Response(status, json=body)


def sse(events: Iterable[Any], *, raw_tail: str = "") -> httpx2.Response:
    """An SSE response: ``data: <json>`` per event, as ``alt=sse`` streams are framed."""
    text = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events) + raw_tail
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=text.encode()
    )

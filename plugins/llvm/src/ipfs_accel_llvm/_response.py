"""Reading the llvm server's answers: result text, token usage and error bodies.

Text of ``/infer`` (for ``generate`` and ``chat``): the first of ``result``, ``outputs`` and
``output`` that holds text, where text is a string, the first item of a list (one input,
one output) or the ``text`` of an object. Usage is read from an optional ``usage`` object
(``prompt_tokens``/``completion_tokens`` or ``input_tokens``/``output_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from ipfs_accel import (
    ChatResult,
    Classification,
    ErrorKind,
    Failure,
    InvokeResult,
    Response,
    Usage,
    default_classification,
)

__all__ = [
    "TEXT_FIELDS",
    "classify",
    "parse_batch",
    "parse_chat",
    "parse_json",
    "parse_reload",
    "read_text",
    "read_usage",
]

TEXT_FIELDS = ("result", "outputs", "output")
_INPUT_FIELDS = ("prompt_tokens", "input_tokens")
_OUTPUT_FIELDS = ("completion_tokens", "output_tokens")
_CONTEXT_HINTS = ("context length", "context window", "maximum context", "too many tokens")


def _as_text(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return value
    if depth > 3:
        return None
    if isinstance(value, list):
        return _as_text(value[0], depth + 1) if value else None
    if isinstance(value, dict):
        return _as_text(value.get("text"), depth + 1)
    return None


def read_text(data: Any) -> str:
    """The generated text of an ``/infer`` answer; :class:`ValueError` if it has none."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        for name in TEXT_FIELDS:
            text = _as_text(data.get(name))
            if text is not None:
                return text
    raise TypeError(f"no text in any of {', '.join(TEXT_FIELDS)}")


def parse_chat(model: str) -> Callable[[Response], ChatResult]:
    """The parser of ``generate`` and ``chat`` answers for ``model``."""

    def parse(resp: Response) -> ChatResult:
        data = resp.data
        text = read_text(data)
        finish = data.get("finish_reason") if isinstance(data, dict) else None
        named = data.get("model") if isinstance(data, dict) else None
        return ChatResult(
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            model=named if isinstance(named, str) else model,
            raw=data,
        )

    return parse


def parse_json(resp: Response) -> InvokeResult:
    """The decoded JSON body as it is (``infer``, ``list_models``, ``model_info``, ``status``)."""
    if resp.data is None:
        raise ValueError("the body is not JSON")
    return InvokeResult(data=resp.data)


def parse_batch(resp: Response) -> InvokeResult:
    """The ``results`` list of a ``batch_infer`` answer, one per input."""
    data = resp.data
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise TypeError("no 'results' list in the batch_infer answer")
    return InvokeResult(data=results)


def parse_reload(resp: Response) -> InvokeResult:
    """A reload succeeds by its status alone; the body, if JSON, is passed along."""
    return InvokeResult(data=resp.data)


def _count(usage: dict[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def read_usage(data: Any) -> Usage | None:
    """Token counts from the body's ``usage`` object, or ``None`` when it reports none."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    given = _count(usage, _INPUT_FIELDS)
    taken = _count(usage, _OUTPUT_FIELDS)
    if given is None and taken is None:
        return None
    return Usage(input_tokens=given or 0, output_tokens=taken or 0)


def _short(value: Any) -> str:
    try:
        return msgspec.json.encode(value).decode("utf-8", "replace")[:500]
    except (TypeError, msgspec.EncodeError):
        return repr(value)[:500]


def classify(failure: Failure) -> Classification:
    """The core's default classification, refined for ``{"error": ...}`` bodies.

    429 and 503 (Retry-After honoured), other 5xx, 408 and transport errors are retried;
    every other 4xx is not (unless the server sends ``x-should-retry: true``). A 400/413/422
    whose message speaks of the context length is a context-length error.
    """
    c = default_classification(failure)
    try:
        _refine(failure, c)
    except Exception:  # the hook must never raise; the default is good enough
        return default_classification(failure)
    return c


def _refine(failure: Failure, c: Classification) -> None:
    status = failure.status
    if (
        failure.exception is None
        and status is not None
        and 400 <= status < 500
        and status not in (408, 429)
        and failure.headers.get("x-should-retry") != "true"
    ):
        c.retryable = False  # the core retries 409; this contract gives it no transient meaning
        if c.kind is ErrorKind.SERVER:
            c.kind = ErrorKind.BAD_REQUEST  # a 4xx is the request's fault, not the server's
    data = failure.data
    if isinstance(data, dict):
        err = data.get("error")
        unread = err is not None and not isinstance(err, str | dict)
        if unread or (isinstance(err, dict) and not isinstance(err.get("message"), str)):
            c.message = _short(err)  # a shape error_message does not know: keep it readable
        code = data.get("code")
        if code is None and isinstance(err, dict):
            code = err.get("code")
        if isinstance(code, str) and code:
            c.code = code[:100]
        elif isinstance(code, int) and not isinstance(code, bool):
            c.code = str(code)
    lowered = c.message.lower()
    if status in (400, 413, 422) and any(hint in lowered for hint in _CONTEXT_HINTS):
        c.kind = ErrorKind.CONTEXT_LENGTH
        c.retryable = False

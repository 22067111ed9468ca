"""Reading the llvm server's answers: result text, token usage and error bodies.

The core decodes each answer into the Struct its exchange declares (``response_type``):
:data:`TEXT_ANSWER` (``generate``, ``chat``), :data:`ANY_INFER_ANSWER` (``infer``),
:class:`BatchAnswer` (``batch_infer``). ``list_models``, ``model_info``, ``status`` and
``reload`` are passed on as the server sent them, so they stay generically decoded.

Text of ``/infer`` (for ``generate`` and ``chat``): the first of ``result``, ``outputs`` and
``output`` that holds text, where text is a string, the first item of a list (one input,
one output) or the ``text`` of an object. Usage is read from an optional ``usage`` object
(``prompt_tokens``/``completion_tokens`` or ``input_tokens``/``output_tokens``).
``finish_reason`` is put in the core's vocabulary by :data:`FINISH_REASON_TABLE` and kept as
sent in ``native_finish_reason``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from ipfs_accel import (
    ChatResult,
    Classification,
    ErrorKind,
    Failure,
    InvokeResult,
    Response,
    Usage,
    decode_json,
    default_classification,
    normalize_finish_reason,
)

__all__ = [
    "ANY_INFER_ANSWER",
    "FINISH_REASON_TABLE",
    "TEXT_ANSWER",
    "TEXT_FIELDS",
    "BatchAnswer",
    "InferAnswer",
    "classify",
    "parse_batch",
    "parse_chat",
    "parse_infer",
    "parse_json",
    "parse_reload",
    "read_text",
    "read_usage",
]

TEXT_FIELDS = ("result", "outputs", "output")

FINISH_REASON_TABLE = {
    "stop": "stop",
    "length": "length",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "error": "error",
}
"""The contract's ``finish_reason`` (a free string; its example is ``stop``) to the core's
vocabulary: OpenAI's values, which servers of the contract send, and the engine names for the
same two ends (end of sequence, a stop sequence, the token limit). Anything else is ``other``."""
_CONTEXT_HINTS = ("context length", "context window", "maximum context", "too many tokens")

Count = Annotated[int, msgspec.Meta(ge=0)]
"""A token count: an int, never negative (``minimum: 0`` in the document)."""


class Answer(msgspec.Struct, kw_only=True):
    """Base of every incoming shape: unknown fields are skipped (msgspec's default)."""


class Counts(Answer):
    """The ``usage`` object; either name of each count may be sent."""

    prompt_tokens: Count | None = None
    input_tokens: Count | None = None
    completion_tokens: Count | None = None
    output_tokens: Count | None = None


class Metered(Answer):
    """An answer that may report token usage."""

    usage: Counts | None = None


class InferAnswer(Metered):
    """An ``/infer`` answer read as text (``generate``, ``chat``).

    ``result``, ``outputs`` and ``output`` may hold any JSON value (the contract's older
    servers used the last two), so they are kept as sent and searched by :func:`read_text`.
    """

    result: Any = None
    outputs: Any = None
    output: Any = None
    finish_reason: str | None = None
    model: str | None = None


class BatchAnswer(Metered, kw_only=True):
    """A ``batch_infer`` answer: ``results``, one per input, in input order."""

    results: list[Any]


TEXT_ANSWER: Any = InferAnswer | str
"""What ``generate`` and ``chat`` accept: an :class:`InferAnswer`, or the text as a bare
JSON string."""

ANY_INFER_ANSWER: Any = Metered | list[Any] | str | int | float | bool
"""What ``invoke("infer")`` accepts: any JSON value but ``null``, passed on as sent; when it
is an object, its ``usage`` is read (and must have the right shape)."""


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


def read_text(answer: InferAnswer | str) -> str:
    """The generated text of an ``/infer`` answer; :class:`TypeError` if it has none."""
    if isinstance(answer, str):
        return answer
    for value in (answer.result, answer.outputs, answer.output):
        text = _as_text(value)
        if text is not None:
            return text
    raise TypeError(f"no text in any of {', '.join(TEXT_FIELDS)}")


def parse_chat(model: str) -> Callable[[Response], ChatResult]:
    """The parser of ``generate`` and ``chat`` answers for ``model`` (a bare string answer
    is the text itself)."""

    def parse(resp: Response) -> ChatResult:
        answer: InferAnswer | str = resp.data
        if isinstance(answer, str):
            finish, named = None, None
        else:
            finish, named = answer.finish_reason, answer.model
        return ChatResult(
            text=read_text(answer),
            finish_reason=normalize_finish_reason(finish, FINISH_REASON_TABLE),
            native_finish_reason=finish,
            model=named if named is not None else model,
            raw=decode_json(resp.content),
        )

    return parse


def parse_infer(resp: Response) -> InvokeResult:
    """An ``infer`` answer: the body as it is (its ``usage``, if any, was read typed)."""
    return InvokeResult(data=decode_json(resp.content))


def parse_json(resp: Response) -> InvokeResult:
    """The decoded JSON body as it is (``list_models``, ``model_info``, ``status``)."""
    if resp.data is None:
        raise ValueError("the body is not JSON")
    return InvokeResult(data=resp.data)


def parse_batch(resp: Response) -> InvokeResult:
    """The ``results`` list of a ``batch_infer`` answer, one per input."""
    answer: BatchAnswer = resp.data
    return InvokeResult(data=answer.results)


def parse_reload(resp: Response) -> InvokeResult:
    """A reload succeeds by its status alone; the body, if JSON, is passed along."""
    return InvokeResult(data=resp.data)


def read_usage(data: object) -> Usage | None:
    """Token counts from the answer's ``usage`` object, or ``None`` when it reports none
    (or the answer is one of the generically decoded ones, which carry no usage)."""
    if not isinstance(data, Metered) or data.usage is None:
        return None
    usage = data.usage
    given = usage.prompt_tokens if usage.prompt_tokens is not None else usage.input_tokens
    taken = (
        usage.completion_tokens if usage.completion_tokens is not None else usage.output_tokens
    )
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

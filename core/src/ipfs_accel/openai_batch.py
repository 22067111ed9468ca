"""The OpenAI Batch API's wire, once, for every backend that speaks it (OpenAI, Groq).

A plugin makes one :class:`OpenAIBatches` with its own ``send`` (each request line is the
online request, built as an online call builds it) and headers, and answers its
``batch_exchange`` and ``batch_result`` hooks with its :meth:`~OpenAIBatches.exchange` and
:meth:`~OpenAIBatches.result`.

Every path is relative to the endpoint's base URL (OpenAI's ends in ``/v1``, Groq's in
``/openai/v1``), while a line's ``url`` and the batch's ``endpoint`` name the route as the
provider does, ``/v1/...`` (:data:`BATCH_URLS`). The steps:

- a call's line: ``{"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
  "body": <the online request's JSON>}``;
- submit: ``POST /files`` (multipart: ``purpose=batch`` and the lines as the ``file``),
  whose answer's ``id`` goes into ``POST /batches`` (``input_file_id``, ``endpoint``,
  ``completion_window`` ``24h``, ``metadata.label``), which answers the Batch object;
- poll: ``GET /batches/{id}``; cancel: ``POST /batches/{id}/cancel``; both a Batch object;
- fetch: ``GET /files/{id}/content`` of ``output_file_id`` and ``error_file_id``, JSONL.

A Batch object is read by :func:`describe` (its fields may be absent or ``null``). Its
``status`` names are the core's own (:data:`STATES`); one outside them is a
``ValueError`` (a status not known may be an end, and polling it forever is worse).
``request_counts`` gives total, completed and failed; a batch that expired or was
cancelled counts the rest of its items (never run) as expired or cancelled.

A result line is read by :func:`outcome`: ``response.status_code`` 2xx is the online
answer, read by the operation's own parser with its usage; any other status is that
item's failure, its body the error the online API sends (classified as an online call's);
``error.code`` ``batch_expired`` / ``batch_cancelled`` is an item that never ran. Any
other ``error`` (no HTTP answer at all: the provider could not run the item) is a
failure of status 500, so the core classifies it as a server error (retryable), its code
and message kept in ``{"error": {...}}`` for ``classify_error`` to refine (a context
length or quota code is still read as such). A line that is none of these is a
``ValueError`` saying what is wrong with it.

:func:`batch_case` is the same API's side for the conformance kit (``BatchCase``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import msgspec

from ._batch_types import (
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchLine,
    BatchOutcome,
    BatchPoll,
    BatchState,
    BatchSubmit,
    LinesBody,
    VendorBatch,
)
from ._errors import ConfigurationError, UnsupportedOperationError
from ._openai_parts import parse_usage as _parse_usage
from ._openai_requests import bearer_headers
from ._settings import EndpointConfig
from ._types import Call, ChatResult, EmbedResult, Exchange, Failure, InvokeResult, Response, Usage
from .openai_compat import parse_chat, parse_completion, parse_embeddings

if TYPE_CHECKING:
    from .testing import BatchCase

__all__ = [
    "BATCH_URLS",
    "PARSERS",
    "STATES",
    "BatchObject",
    "FileObject",
    "OpenAIBatches",
    "batch_case",
    "describe",
    "outcome",
]

BATCH_URLS: Mapping[str, str] = {"chat": "/v1/chat/completions", "embed": "/v1/embeddings",
                                 "generate": "/v1/completions"}
"""Each operation's route as a line's ``url`` and a batch's ``endpoint`` name it."""

PARSERS: Mapping[str, Callable[[Response], ChatResult | EmbedResult]] = {
    "chat": parse_chat, "embed": parse_embeddings, "generate": parse_completion}
"""Each operation's reader of an answer's ``body`` (the online call's)."""

STATES: Mapping[str, BatchState] = {
    "validating": "validating", "in_progress": "in_progress", "finalizing": "finalizing",
    "completed": "completed", "failed": "failed", "expired": "expired",
    "cancelling": "cancelling", "cancelled": "cancelled"}
"""The Batch object's ``status`` to the core's state (the same eight words)."""

_NEVER_RAN: Mapping[str, Literal["expired", "cancelled"]] = {
    "batch_expired": "expired", "batch_cancelled": "cancelled"}
_NOT_RUN_STATUS = 500  # an item the provider reports an error for with no HTTP answer
_ERRORS_SHOWN = 3
_ENCODE = msgspec.json.Encoder()


class FileObject(msgspec.Struct, kw_only=True):
    """The uploaded file (``POST /files``): its ``id`` is all that is read."""

    id: str


class _Counts(msgspec.Struct, kw_only=True):
    total: int = 0
    completed: int = 0
    failed: int = 0


class _Error(msgspec.Struct, kw_only=True):
    code: str | None = None
    message: str | None = None
    line: int | None = None


class _Errors(msgspec.Struct, kw_only=True):
    data: list[_Error] | None = None


class BatchObject(msgspec.Struct, kw_only=True):
    """What is read of a Batch object; every field but ``id`` and ``status`` may be absent
    or ``null`` (OpenAI's spec omits them, its examples print nulls)."""

    id: str
    status: str
    request_counts: _Counts | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: _Errors | None = None


def describe(data: Any) -> VendorBatch:
    """A Batch object (a :class:`BatchObject`, or the decoded JSON) as a :class:`VendorBatch`."""
    batch = data if isinstance(data, BatchObject) else msgspec.convert(data, BatchObject)
    state = STATES.get(batch.status)
    if state is None:
        raise ValueError(f"batch {batch.id}: unknown status {batch.status!r} "
                         f"(known: {', '.join(STATES)})")
    given = batch.request_counts or _Counts()
    counts = BatchCounts(total=given.total, completed=given.completed, failed=given.failed)
    rest = max(0, given.total - given.completed - given.failed)
    if state == "expired":
        counts.expired = rest
    elif state == "cancelled":
        counts.cancelled = rest
    outputs = tuple(f for f in (batch.output_file_id, batch.error_file_id) if f)
    return VendorBatch(id=batch.id, state=state, native_state=batch.status,
                       counts=counts, outputs=outputs, error=_error(batch.errors))


def _error(errors: _Errors | None) -> str | None:
    """The batch's errors in one line (the first few, with the input line each names)."""
    items = (errors.data if errors is not None else None) or []
    said = []
    for e in items[:_ERRORS_SHOWN]:
        where = f" (line {e.line})" if e.line is not None else ""
        said.append(f"{e.code or 'error'}: {e.message or ''}{where}".strip())
    if len(items) > _ERRORS_SHOWN:
        said.append(f"and {len(items) - _ERRORS_SHOWN} more")
    return "; ".join(said) or None


def _described(resp: Response) -> InvokeResult:
    return InvokeResult(data=describe(resp.data))


def outcome(data: Any, operation: str, *,
            parsers: Mapping[str, Callable[[Response], ChatResult | EmbedResult]] = PARSERS,
            parse_usage: Callable[[Any], Usage | None] = _parse_usage) -> BatchOutcome:
    """One line of an output or error file as a :class:`BatchOutcome` (see the module)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a batch result line must be a JSON object, not {type(data).__name__}")
    key = data.get("custom_id")
    if not isinstance(key, str) or not key:
        raise ValueError("a batch result line has no custom_id")
    response, error = data.get("response"), data.get("error")
    if isinstance(response, Mapping):
        status, body = response.get("status_code"), response.get("body")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ValueError(f"batch result {key!r}: response.status_code is not an integer")
        if not 200 <= status < 300:
            return BatchOutcome(key=key, state="failed", failure=Failure(
                operation=operation, status=status, data=body, content=_ENCODE.encode(body)))
        parse = parsers.get(operation)
        if parse is None:
            raise ValueError(f"batch result {key!r}: no reader for {operation!r} answers")
        try:
            result = parse(Response(status=status, headers={}, content=b"", data=body))
        except (ValueError, TypeError) as exc:  # msgspec's ValidationError names the field
            raise ValueError(f"batch result {key!r}: its {operation} answer could not be "
                             f"read: {exc}") from exc
        usage = parse_usage(body)
        if usage is not None:
            result.usage = usage
        rid = response.get("request_id")
        if isinstance(rid, str) and rid:
            result.server_request_id = rid
        return BatchOutcome(key=key, result=result)
    if isinstance(error, Mapping):
        message = error.get("message")
        message = message if isinstance(message, str) else ""
        never = _NEVER_RAN.get(str(error.get("code")))
        if never is not None:
            return BatchOutcome(key=key, state=never, message=message)
        body = {"error": dict(error)}
        return BatchOutcome(key=key, state="failed", failure=Failure(
            operation=operation, status=_NOT_RUN_STATUS, data=body, content=_ENCODE.encode(body)))
    raise ValueError(f"batch result {key!r} has neither a response nor an error")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _filename(label: str) -> str:
    """The upload's file name: the label, in characters any form header takes."""
    return (_UNSAFE.sub("-", label).strip("-")[:200] or "batch") + ".jsonl"


@dataclass(frozen=True, kw_only=True)
class OpenAIBatches:
    """How one OpenAI-compatible API takes batches: a plugin's ``batch_exchange`` and
    ``batch_result`` hooks, answered by :meth:`exchange` and :meth:`result`.

    - ``send``: the plugin's own ``send`` (each line's ``body`` is its request's JSON);
    - ``headers(endpoint)``: the auth (and other) headers of every step, as ``send`` sends;
    - ``urls``: the operations batched, to their route (:data:`BATCH_URLS`);
    - ``parsers``, ``parse_usage``: how an answer's body is read (the online readers);
    - ``files``, ``batches``: the routes, relative to the endpoint's base URL;
    - ``completion_window``: the window asked for; ``download_accept``: the ``Accept`` of a
      download where the API declares one other than JSON (``None``: the core's).
    """

    send: Callable[[Call, EndpointConfig], Exchange]
    headers: Callable[[EndpointConfig], Mapping[str, str]] = bearer_headers
    urls: Mapping[str, str] = field(default_factory=lambda: dict(BATCH_URLS))
    parsers: Mapping[str, Callable[[Response], ChatResult | EmbedResult]] = field(
        default_factory=lambda: dict(PARSERS))
    parse_usage: Callable[[Any], Usage | None] = _parse_usage
    files: str = "/files"
    batches: str = "/batches"
    completion_window: str = "24h"
    download_accept: str | None = None

    def exchange(self, step: Any, endpoint: EndpointConfig) -> Exchange | None:
        """The exchange of one step (``batch_exchange``); ``None`` for a step it does not
        know."""
        if isinstance(step, BatchLine):
            return self.line(step, endpoint)
        headers = dict(self.headers(endpoint))
        if isinstance(step, BatchSubmit):
            return self.submit(step, headers)
        if isinstance(step, BatchPoll):
            return Exchange(method="GET", path=f"{self.batches}/{quote(step.batch_id, safe='')}",
                            headers=headers, parse=_described, response_type=BatchObject)
        if isinstance(step, BatchCancel):
            return Exchange(path=f"{self.batches}/{quote(step.batch_id, safe='')}/cancel",
                            headers=headers, parse=_described, response_type=BatchObject)
        if isinstance(step, BatchFetch):
            if self.download_accept is not None:
                headers["accept"] = self.download_accept
            return Exchange(method="GET", path=f"{self.files}/{quote(step.output, safe='')}"
                            "/content", headers=headers)
        return None

    def url(self, operation: str) -> str:
        url = self.urls.get(operation)
        if url is None:
            raise UnsupportedOperationError(
                f"{operation!r} calls cannot be batched here (batches take "
                f"{', '.join(sorted(self.urls))})")
        return url

    def line(self, step: BatchLine, endpoint: EndpointConfig) -> Exchange:
        """A call's request line: its online request's JSON as the ``body``."""
        url = self.url(step.call.operation)
        online = self.send(step.call, endpoint)
        if online.stream is not None or online.json is None:
            raise ConfigurationError(
                f"a {step.call.operation} call's request has no JSON body to batch")
        return Exchange(path=url, json={"custom_id": step.key, "method": "POST", "url": url,
                                        "body": online.json})

    def submit(self, step: BatchSubmit, headers: Mapping[str, str]) -> Exchange:
        """Upload the lines, then (from the answer's file ID) create the batch."""
        create = {"endpoint": self.url(step.operation),
                  "completion_window": self.completion_window,
                  "metadata": {"label": step.label[:512]}}

        def created(resp: Response) -> Exchange:
            uploaded = resp.data if isinstance(resp.data, FileObject) else msgspec.convert(
                resp.data, FileObject)
            # resume: a retry of the create (a 429, a 5xx) does not upload the file again
            return Exchange(path=self.batches, headers=headers, parse=_described,
                            response_type=BatchObject, resume=True,
                            json={"input_file_id": uploaded.id, **create})

        return Exchange(path=self.files, headers=headers, parse=created, response_type=FileObject,
                        body=LinesBody(path=step.lines, multipart={"purpose": "batch"},
                                       field="file", filename=_filename(step.label)))

    def result(self, data: Any, operation: str) -> BatchOutcome:
        """One result line as a :class:`BatchOutcome` (``batch_result``; :func:`outcome`)."""
        return outcome(data, operation, parsers=self.parsers, parse_usage=self.parse_usage)


# --- The API's side, for the conformance kit --------------------------------------------

_EXPIRED = "This request could not be executed before the completion window expired."
_CANCELLED = "This request was not executed because the batch was cancelled."
_AT = 1764201600
_STAMPS = {"validating": (), "in_progress": ("in_progress",),
           "finalizing": ("in_progress", "finalizing"),
           "completed": ("in_progress", "finalizing", "completed"), "failed": ("failed",),
           "expired": ("in_progress", "expired"), "cancelling": ("in_progress", "cancelling"),
           "cancelled": ("in_progress", "cancelling", "cancelled")}


def batch_case(*, model: str, text: str = "pong", tokens: tuple[int, int] = (9, 3),
               id_sep: str = "-", file_extra: Mapping[str, Any] | None = None,
               extra: Mapping[str, Any] | None = None) -> BatchCase:
    """A :class:`~ipfs_accel.testing.BatchCase` of the OpenAI Batch API as it answers.

    Files named ``file{id_sep}...`` (OpenAI ``file-``, Groq ``file_``), ``file_extra`` the
    file object's fields beyond Groq's (OpenAI's required ``status``); ``extra`` the
    completed chat answer's own fields. Unset fields are left out, never ``null``.
    """
    from .testing import BatchCase, Reply  # noqa: PLC0415 - the kit loads only here

    def submitted(bid: str) -> tuple[Reply, ...]:
        uploaded = {"id": f"file{id_sep}{bid}-in", "object": "file", "bytes": 966,
                    "created_at": _AT, "filename": "ipfs-accel-1.jsonl", "purpose": "batch",
                    **(file_extra or {})}
        return Reply(200, json=uploaded), described(bid, "validating", ())

    def described(bid: str, state: str, outcomes: Any) -> Reply:
        ran = state not in ("validating", "in_progress", "failed")  # failed: none ran
        kinds = [kind for _, kind in outcomes] if ran else []
        body: dict[str, Any] = {
            "id": bid, "object": "batch", "endpoint": "/v1/chat/completions",
            "input_file_id": f"file{id_sep}{bid}-in", "completion_window": "24h",
            "status": state, "created_at": _AT, "expires_at": _AT + 86400,
            "metadata": {"label": "ipfs-accel-1"},
            "request_counts": {"total": len(outcomes) if state == "in_progress" or ran else 0,
                               "completed": kinds.count("completed"),
                               "failed": kinds.count("failed")}}
        for n, stamp in enumerate(_STAMPS[state], start=1):
            body[f"{stamp}_at"] = _AT + 60 * n
        if state == "failed":
            body["errors"] = {"object": "list", "data": [{
                "code": "invalid_json_line", "line": 1,
                "message": "This line is not parseable as valid JSON."}]}
        elif state in ("completed", "expired", "cancelled"):
            if "completed" in kinds:
                body["output_file_id"] = f"file{id_sep}{bid}-out"
            if any(k != "completed" for k in kinds):
                body["error_file_id"] = f"file{id_sep}{bid}-err"
        return Reply(200, json=body)

    def line(n: int, key: str, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": f"batch_req_{n}", "custom_id": key, "response": None,
                               "error": None}
        if kind == "completed":
            out["response"] = {"status_code": 200, "request_id": f"req_{n}", "body": {
                "id": f"chatcmpl-{n}", "object": "chat.completion", "created": _AT,
                "model": model, **(extra or {}), "choices": [{
                    "index": 0, "message": {"role": "assistant", "content": text},
                    "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                          "total_tokens": sum(tokens)}}}
        elif kind == "failed":
            out["response"] = {"status_code": 400, "request_id": f"req_{n}", "body": {
                "error": {"message": "conformance: bad request", "type": "invalid_request_error",
                          "param": None, "code": None}}}
        else:
            out["error"] = {"code": f"batch_{kind}",
                            "message": _EXPIRED if kind == "expired" else _CANCELLED}
        return out

    def results(bid: str, outcomes: Any) -> tuple[Reply, ...]:
        numbered = list(enumerate(outcomes, start=1))
        files = ([(n, k, kind) for n, (k, kind) in numbered if kind == "completed"],
                 [(n, k, kind) for n, (k, kind) in numbered if kind != "completed"])
        return tuple(
            Reply(200, headers={"content-type": "application/octet-stream"}, body=b"".join(
                _ENCODE.encode(line(n, key, kind)) + b"\n" for n, key, kind in items))
            for items in files if items)

    return BatchCase(submitted=submitted, described=described, results=results, text=text,
                     tokens=tokens)

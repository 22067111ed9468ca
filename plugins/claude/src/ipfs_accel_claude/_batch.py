"""Anthropic's Message Batches API (``/v1/messages/batches``), translated for the core's
batch jobs.

Requests (all with the online calls' headers: the key, ``anthropic-version``,
``anthropic-beta`` when set; paths under the endpoint's base URL, which, as for
``/v1/messages``, does not end in ``/v1``):

- a call's line: ``{"custom_id": key, "params": <the /v1/messages body send builds for the
  call, without "stream">}``; a key that is not a ``custom_id`` the API takes (1 to 64
  letters, digits, ``_`` or ``-``) is a ``ConfigurationError`` before anything is sent;
- submit: ``POST /v1/messages/batches`` with ``{"requests": [<the lines>]}``, streamed from
  the core's file of lines; poll: ``GET /v1/messages/batches/{id}``; cancel:
  ``POST /v1/messages/batches/{id}/cancel``; each answers a ``MessageBatch``;
- results: ``GET`` of the batch's ``results_url`` (JSONL, one
  ``MessageBatchIndividualResponse`` a line). The URL is used as given when it lies under
  the endpoint's base URL; otherwise (a gateway or proxy in front of the API relays the
  API's own URL) the documented route ``/v1/messages/batches/{id}/results`` under the base
  URL is read instead, so the key never goes to a host the endpoint does not name.

States: ``processing_status`` ``in_progress`` is ``in_progress``, ``canceling`` is
``cancelling``. ``ended`` means every request has its outcome, each in its own result line
(succeeded, errored, canceled, expired): the batch is ``cancelled`` when a cancel was asked
for (``cancel_initiated_at``; the requests that ran before keep their results, as
OpenAI's cancelled batches do), ``expired`` when no request ran and some expired,
``cancelled`` when none ran and some were canceled, else ``completed``. Counts: succeeded
-> ``completed``, errored -> ``failed``, ``expired``, canceled -> ``cancelled``; the total
includes the requests still processing (those counts stay 0 until the batch ends).

Result lines: ``succeeded`` is read by the online ``Message`` reader, usage included;
``errored`` is a ``Failure`` with the error body as the online API sends it (the envelope
``{"type": "error", "error": {"type", "message"}, ...}``) and the status the API answers
that error type with (``invalid_request_error`` 400, ``rate_limit_error`` 429,
``overloaded_error`` 529...; an unknown type 500), for ``classify_error``; ``canceled`` and
``expired`` never ran.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import msgspec
from ipfs_accel import (
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchLimits,
    BatchLine,
    BatchOutcome,
    BatchPoll,
    BatchSubmit,
    ConfigurationError,
    EndpointConfig,
    Exchange,
    Failure,
    InvokeResult,
    LinesBody,
    Response,
    UnsupportedOperationError,
    Usage,
    VendorBatch,
)

from ._errors import ERROR_STATUS, error_fields
from ._request import messages_body, options_of, request_headers
from ._response import chat_result, usage_of
from ._wire import Message

__all__ = ["BATCHES_PATH", "BATCH_LIMITS", "MessageBatch", "RequestCounts", "batch_state",
           "exchange", "outcome", "vendor_batch"]

BATCHES_PATH = "/v1/messages/batches"
_PREFIX, _SEPARATOR, _SUFFIX = b'{"requests":[', b",", b"]}"
_MAX_REQUESTS = 100_000
# 256 MB (decimal, the stricter reading) per batch, less what the core does not count of
# the body: the document around the lines and the commas between them
_MAX_BYTES = 256_000_000 - len(_PREFIX) - len(_SUFFIX) - (_MAX_REQUESTS - 1) * len(_SEPARATOR)

BATCH_LIMITS = BatchLimits(max_requests=_MAX_REQUESTS, max_bytes=_MAX_BYTES,
                           operations=frozenset({"chat"}))
"""A Message Batch holds up to 100,000 requests and 256 MB."""

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_JSONL = "application/x-jsonl"  # the results' media type in the spec


class RequestCounts(msgspec.Struct):
    """A ``MessageBatch``'s ``request_counts`` (every count but ``processing`` is 0 until
    the batch ends)."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0


class MessageBatch(msgspec.Struct):
    """The ``MessageBatch`` the create, retrieve and cancel routes answer (what is read)."""

    id: str
    processing_status: str
    request_counts: RequestCounts = msgspec.field(default_factory=RequestCounts)
    results_url: str | None = None
    cancel_initiated_at: str | None = None
    ended_at: str | None = None


State = Literal["in_progress", "cancelling", "cancelled", "expired", "completed"]


def batch_state(batch: MessageBatch) -> State:
    """The core's word for the batch's state (see the module's docstring)."""
    status = batch.processing_status
    if status == "canceling":
        return "cancelling"
    if status != "ended":
        return "in_progress"  # in_progress, or a status added later: keep polling
    if batch.cancel_initiated_at is not None:
        return "cancelled"
    counts = batch.request_counts
    if counts.succeeded + counts.errored == 0:
        if counts.expired and not counts.canceled:
            return "expired"
        if counts.canceled and not counts.expired:
            return "cancelled"
    return "completed"


def vendor_batch(batch: MessageBatch) -> VendorBatch:
    """A ``MessageBatch`` as the core's :class:`VendorBatch`."""
    c = batch.request_counts
    ended = batch.processing_status == "ended"
    return VendorBatch(
        id=batch.id, state=batch_state(batch), native_state=batch.processing_status,
        counts=BatchCounts(total=c.processing + c.succeeded + c.errored + c.canceled + c.expired,
                           completed=c.succeeded, failed=c.errored, expired=c.expired,
                           cancelled=c.canceled),
        outputs=(batch.results_url,) if ended and batch.results_url else (),
    )


def _described(resp: Response) -> InvokeResult:
    return InvokeResult(data=vendor_batch(resp.data))


def _line(step: BatchLine, endpoint: EndpointConfig) -> Exchange:
    key = step.key
    if not isinstance(key, str) or _CUSTOM_ID.fullmatch(key) is None:
        raise ConfigurationError(
            f"claude batch key {key!r} is not a custom_id Anthropic takes: 1 to 64 letters, "
            "digits, '_' or '-' (^[a-zA-Z0-9_-]{1,64}$)")
    call = step.call
    if call.operation not in ("chat", "generate"):
        raise UnsupportedOperationError(f"claude batches do not take {call.operation!r}")
    params = messages_body(call, options_of(endpoint), stream=False)
    return Exchange(path="", json={"custom_id": key, "params": params})


def _results_url(step: BatchFetch, endpoint: EndpointConfig) -> str:
    url = step.output
    if url.startswith(endpoint.base_url + "/") or url.startswith("/"):
        return url
    return f"{BATCHES_PATH}/{quote(step.batch.id, safe='')}/results"


def exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    """The ``batch_exchange`` hook: the exchange of one step (``None``: not a batch step)."""
    if isinstance(step, BatchLine):
        return _line(step, endpoint)
    headers = request_headers(endpoint, options_of(endpoint))
    if isinstance(step, BatchSubmit):
        body = LinesBody(path=step.lines, prefix=_PREFIX, separator=_SEPARATOR, suffix=_SUFFIX)
        return Exchange(path=BATCHES_PATH, body=body, headers=headers, parse=_described,
                        response_type=MessageBatch)
    if isinstance(step, BatchPoll | BatchCancel):
        path = f"{BATCHES_PATH}/{quote(step.batch_id, safe='')}"
        if isinstance(step, BatchPoll):
            return Exchange(method="GET", path=path, headers=headers, parse=_described,
                            response_type=MessageBatch)
        return Exchange(path=path + "/cancel", headers=headers, parse=_described,
                        response_type=MessageBatch)
    if isinstance(step, BatchFetch):
        return Exchange(method="GET", path=_results_url(step, endpoint),
                        headers={**headers, "accept": _JSONL})
    return None


def _envelope(error: Any) -> dict[str, Any]:
    """The errored item's error as the online API sends it: the spec's ``ErrorResponse``
    envelope as it is, a bare ``{"type", "message"}`` put in one."""
    if isinstance(error, Mapping) and error.get("type") == "error":
        return dict(error)
    if isinstance(error, Mapping):
        return {"type": "error", "error": dict(error), "request_id": None}
    return {"type": "error", "error": {"type": "api_error", "message": str(error)},
            "request_id": None}


def outcome(data: Any, operation: str) -> BatchOutcome:
    """The ``batch_result`` hook: one result line as a :class:`BatchOutcome`. A line that
    is no ``MessageBatchIndividualResponse`` raises ``ValueError`` (the core counts its
    call as missing)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a claude batch result line is a {type(data).__name__}, not an object")
    key, result = data.get("custom_id"), data.get("result")
    if not isinstance(key, str) or not isinstance(result, Mapping):
        raise ValueError("a claude batch result line without custom_id and result")
    kind = result.get("type")
    if kind == "succeeded":
        raw = result.get("message")
        message = msgspec.convert(raw, Message)  # a ValidationError is a ValueError
        answer = chat_result(message, raw)
        answer.usage = usage_of(message) or Usage()
        return BatchOutcome(key=key, result=answer)
    if kind == "errored":
        body = _envelope(result.get("error"))
        error_type, message_text, _ = error_fields(body)
        status = ERROR_STATUS.get(error_type or "", 500)
        return BatchOutcome(key=key, state="failed", message=message_text or "", failure=Failure(
            operation=operation, status=status, data=body, content=msgspec.json.encode(body)))
    if kind == "canceled":
        return BatchOutcome(key=key, state="cancelled",
                            message="the batch was canceled before this request ran")
    if kind == "expired":
        return BatchOutcome(key=key, state="expired",
                            message="the batch's 24-hour window ended before this request ran")
    raise ValueError(f"a claude batch result of unknown type {kind!r}")

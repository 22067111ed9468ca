"""Gemini's Batch API: each step's exchange, and the batch as the API describes it (a
long-running ``Operation``).

Routes (under the endpoint's base URL, ``{v}`` the endpoint's ``api_version``)::

    submit   POST /{v}/models/{model}:batchGenerateContent   (inline, or after an upload)
    poll     GET  /{v}/batches/{id}
    cancel   POST /{v}/batches/{id}:cancel        (answers {}; then a poll)
    fetch    GET  /download/{v}/files/{id}:download?alt=media   (a responsesFile)

A call's line is ``{"request": <its GenerateContentRequest, as generateContent takes it>,
"metadata": {"key": <key>}}``; the submit streams the lines into ``{"batch":
{"displayName": <label>, "inputConfig": {"requests": {"requests": [<lines>]}}}}``. The
request is the whole ``GenerateContentRequest`` online calls send (``systemInstruction``,
``tools``, ``toolConfig``, ``safetySettings`` included), as the API takes it; the community
OpenAPI file allows only ``contents``, ``generationConfig`` and ``model`` there.

The answer of submit and poll is an ``Operation`` named ``batches/{id}``: its ``metadata``
(the batch) holds the ``state``, spelt ``JOB_STATE_*`` in the spec and ``BATCH_STATE_*`` on
the wire (both are read), and ``batchStats`` (int64 counts as strings); once it succeeded,
the answers are in ``response`` (or ``metadata.output``): ``inlinedResponses.
inlinedResponses`` (one per request, each echoing its ``metadata``), or a ``responsesFile``
for file input, downloaded as JSONL.

A part that does not fit inline (more than 10,000 calls, or a body of 20 MB or more) goes
as a JSONL file uploaded through the Files API, and the batch is created from it
(``inputConfig.fileName``), as :mod:`._batch_file` says; its answers then come as a
``responsesFile``.

Limits: a batch holds at most :data:`MAX_REQUESTS` calls (Google documents no count; ours)
and :data:`MAX_BYTES` of request lines (an input file may be up to 2 GB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import msgspec
from ipfs_accel import (
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchLimits,
    BatchLine,
    BatchPoll,
    BatchSubmit,
    Exchange,
    InvokeResult,
    LinesBody,
    Response,
    VendorBatch,
)

from ._batch_file import (
    FILE_MAX_BYTES,
    FILE_MAX_REQUESTS,
    BatchInput,
    create_body,
    fits_inline,
    upload_exchange,
)
from ._request import generate_body, model_id
from ._wire import _In

__all__ = [
    "BATCH_LIMITS",
    "MAX_BYTES",
    "MAX_REQUESTS",
    "Operation",
    "batch_exchange",
    "core_state",
    "vendor_batch",
]

MAX_REQUESTS = FILE_MAX_REQUESTS
"""Calls per batch (a part of more than 10,000 goes as a file)."""
MAX_BYTES = FILE_MAX_BYTES
"""Request lines per batch: an input file may be up to 2 GB (a part whose inline body
would be 20 MB or more goes as a file)."""
BATCH_LIMITS = BatchLimits(max_requests=MAX_REQUESTS, max_bytes=MAX_BYTES,
                           operations=frozenset({"chat"}))

_SUFFIX = b"]}}}}"

State = Literal["validating", "in_progress", "finalizing", "completed", "failed", "expired",
                "cancelling", "cancelled"]
# BatchState / BatchJobState without their prefix -> the core's words
_STATES: Mapping[str, State] = {
    "UNSPECIFIED": "validating",
    "QUEUED": "validating",
    "PENDING": "validating",
    "RUNNING": "in_progress",
    "UPDATING": "in_progress",
    "PAUSED": "in_progress",
    "SUCCEEDED": "completed",
    "PARTIALLY_SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLING": "cancelling",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}
_CANCELLED_CODE = 1  # google.rpc.Code CANCELLED: how a cancelled operation's error says so


class _Stats(_In):
    """``batchStats``: int64 counts, which the API sends as strings."""

    request_count: int | str | None = None
    successful_request_count: int | str | None = None
    failed_request_count: int | str | None = None
    pending_request_count: int | str | None = None


class _Inlined(_In):
    inlined_responses: list[Any] | None = None


class _Output(_In):
    """``BatchOperationOutput`` / ``GenerateContentBatchOutput``: inline answers or a file."""

    inlined_responses: _Inlined | None = None
    responses_file: str | None = None


class _Metadata(_In):
    """The batch itself (``GenerateContentBatch``), as the operation's ``metadata``."""

    name: str | None = None
    state: str | None = None
    batch_stats: _Stats | None = None
    output: _Output | None = None


class _Status(_In):
    """A google.rpc ``Status`` (``JobError`` in the spec)."""

    code: int | None = None
    message: str | None = None


class Operation(_In):
    """The long-running ``Operation`` that submit and poll answer."""

    name: str | None = None
    done: bool = False
    error: _Status | None = None
    metadata: _Metadata | None = None
    response: _Output | None = None


def core_state(native: str | None, done: bool, error: _Status | None) -> State:
    """The core's word for the API's state (either spelling); from ``done`` and ``error``
    when the state is absent or unknown."""
    word = (native or "").removeprefix("JOB_STATE_").removeprefix("BATCH_STATE_")
    if word in _STATES:
        return _STATES[word]
    if not done:
        return "in_progress"
    if error is None:
        return "completed"
    return "cancelled" if error.code == _CANCELLED_CODE else "failed"


def _count(value: int | str | None) -> int:
    if isinstance(value, int):
        return max(value, 0)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _counts(stats: _Stats | None, state: State) -> BatchCounts:
    if stats is None:
        return BatchCounts()
    counts = BatchCounts(total=_count(stats.request_count),
                         completed=_count(stats.successful_request_count),
                         failed=_count(stats.failed_request_count))
    left = _count(stats.pending_request_count)
    if state == "expired":  # what was still pending never ran
        counts.expired = left
    elif state == "cancelled":
        counts.cancelled = left
    return counts


def _batch_id(name: str) -> str:
    """``batches/x`` for ``x`` or ``batches/x``."""
    return name if name.startswith("batches/") else f"batches/{name}"


def vendor_batch(op: Operation) -> VendorBatch:
    """The batch an ``Operation`` describes."""
    meta = op.metadata or _Metadata()
    name = op.name or meta.name
    if not name:
        raise ValueError("the batch has no name (the operation has no 'name', nor its "
                         "metadata)")
    state = core_state(meta.state, op.done, op.error)
    outputs = [out for out in (op.response, meta.output) if out is not None]
    inline = next((out.inlined_responses.inlined_responses for out in outputs
                   if out.inlined_responses is not None
                   and out.inlined_responses.inlined_responses is not None), None)
    responses_file = next((out.responses_file for out in outputs if out.responses_file), None)
    error = None
    if op.error is not None and (op.error.message or op.error.code):
        error = op.error.message or f"error code {op.error.code}"
    return VendorBatch(
        id=_batch_id(name), state=state, native_state=meta.state or "",
        counts=_counts(meta.batch_stats, state),
        outputs=(responses_file,) if responses_file else (),
        inline=inline, error=error,
    )


def _described(resp: Response) -> InvokeResult:
    return InvokeResult(data=vendor_batch(resp.data))


def _escape(name: str, collection: str) -> str:
    """``{collection}/{id}`` with the ID escaped for the path (``x`` or ``coll/x`` given)."""
    return f"{collection}/" + quote(name.removeprefix(f"{collection}/"), safe="-._~")


def _poll(prefix: str, batch_id: str, headers: Mapping[str, str]) -> Exchange:
    return Exchange(method="GET", path=f"{prefix}/{_escape(batch_id, 'batches')}",
                    headers=headers, parse=_described, response_type=Operation)


def _cancelled(prefix: str, batch_id: str,
               headers: Mapping[str, str]) -> Callable[[Response], InvokeResult | Exchange]:
    def parse(resp: Response) -> InvokeResult | Exchange:
        data = resp.data
        if isinstance(data, dict) and ("name" in data or "metadata" in data):
            return InvokeResult(data=vendor_batch(msgspec.convert(data, Operation)))
        return _poll(prefix, batch_id, headers)  # {}: the batch is described by a poll

    return parse


def line(step: BatchLine) -> Any:
    """The request line of one call."""
    return {"request": generate_body(step.call), "metadata": {"key": step.key}}


def _submit(step: BatchSubmit, headers: Mapping[str, str], prefix: str, base_url: str,
            batch_input: BatchInput) -> Exchange:
    path = f"{prefix}/models/{model_id(step.model, 'batch')}:batchGenerateContent"
    label = msgspec.json.encode(step.label)
    head = b'{"batch":{"displayName":' + label + b',"inputConfig":{"requests":{"requests":['
    if fits_inline(step, len(head) + len(_SUFFIX), batch_input):
        return Exchange(
            path=path, body=LinesBody(path=step.lines, prefix=head, separator=b",",
                                      suffix=_SUFFIX),
            headers=headers, parse=_described, response_type=Operation,
        )

    def create(file_name: str) -> Exchange:
        # resume: a retry of the create (a 429, a 5xx) does not upload the file again
        return Exchange(path=path, json=create_body(step.label, file_name), headers=headers,
                        parse=_described, response_type=Operation, resume=True)

    return upload_exchange(step, headers, prefix.lstrip("/"), base_url=base_url,
                           create=create)


def batch_exchange(step: Any, headers: Mapping[str, str], version: str, *,
                   base_url: str, batch_input: BatchInput = "auto") -> Exchange | None:
    """The exchange of one batch step (``headers``: the key's; ``version``: the path's;
    ``base_url``: the endpoint's, the only origin an upload URL may be on;
    ``batch_input``: ``"file"`` sends every part as a file)."""
    prefix = f"/{version}"
    if isinstance(step, BatchLine):
        return Exchange(path="", json=line(step))
    if isinstance(step, BatchSubmit):
        return _submit(step, headers, prefix, base_url, batch_input)
    if isinstance(step, BatchPoll):
        return _poll(prefix, step.batch_id, headers)
    if isinstance(step, BatchCancel):
        return Exchange(method="POST", path=f"{prefix}/{_escape(step.batch_id, 'batches')}"
                        ":cancel", headers=headers,
                        parse=_cancelled(prefix, step.batch_id, headers))
    if isinstance(step, BatchFetch):
        return Exchange(method="GET", path=f"/download{prefix}/{_escape(step.output, 'files')}"
                        ":download", params={"alt": "media"}, headers=headers)
    return None

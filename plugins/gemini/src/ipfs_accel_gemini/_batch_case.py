"""The Gemini Batch API's answers for the kit's batch check (:class:`BatchCase`).

Shaped as the spec (gemini-native.openapi.json) accepts them, which is stricter than the
wire: the operation's ``metadata`` carries no ``@type``, ``name`` or ``inputConfig``, its
``state`` is spelt ``JOB_STATE_*`` (the wire's ``BATCH_STATE_*`` is read as well), and the
answers are in the operation's ``response`` (``inlinedResponses.inlinedResponses``, one per
request in order, each echoing its ``metadata``). An item that failed carries its
google.rpc ``Status`` (``INVALID_ARGUMENT``, 3, for the kit's 400); one that expired
``DEADLINE_EXCEEDED`` (4); one cancelled ``CANCELLED`` (1). The kit is imported only when
the case is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipfs_accel.testing import BatchCase, Outcomes, Reply

__all__ = ["NATIVE_STATES", "batch_case", "operation"]

TEXT = "pong"
TOKENS = (7, 2)
MODEL = "gemini-2.5-flash"
_CREATED = "2025-07-14T09:30:00.000000Z"
_UPDATED = "2025-07-14T09:41:12.000000Z"

NATIVE_STATES: dict[str, str] = {
    "validating": "JOB_STATE_PENDING",
    "in_progress": "JOB_STATE_RUNNING",
    "finalizing": "JOB_STATE_RUNNING",
    "completed": "JOB_STATE_SUCCEEDED",
    "failed": "JOB_STATE_FAILED",
    "expired": "JOB_STATE_EXPIRED",
    "cancelling": "JOB_STATE_CANCELLING",
    "cancelled": "JOB_STATE_CANCELLED",
}
"""The API's word for each of the core's (the case's ``states`` are the API's already)."""

# kind -> the google.rpc Status of an item that did not answer
_ERRORS: dict[str, dict[str, Any]] = {
    "failed": {"code": 3, "message": "conformance: * GenerateContentRequest.contents: "
               "contents is not specified"},
    "expired": {"code": 4, "message": "The batch's time window ended before this request "
                "was processed."},
    "cancelled": {"code": 1, "message": "The batch was cancelled before this request ran."},
}
_ENDED = frozenset({"SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})


def _answer(key: str) -> dict[str, Any]:
    """A ``GenerateContentResponse`` saying :data:`TEXT` with usage :data:`TOKENS`."""
    prompt, out = TOKENS
    return {
        "candidates": [{"content": {"parts": [{"text": TEXT}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": out,
                          "totalTokenCount": prompt + out},
        "modelVersion": MODEL,
        "responseId": f"resp-{key}",
    }


def _inlined(key: str, kind: str) -> dict[str, Any]:
    if kind == "completed":
        return {"response": _answer(key), "metadata": {"key": key}}
    return {"error": _ERRORS[kind], "metadata": {"key": key}}


def operation(batch_id: str, state: str, outcomes: Outcomes) -> dict[str, Any]:
    """The ``Operation`` describing the batch ``batch_id`` in ``state`` (the core's word or
    the API's), its answers inline once it succeeded or was cancelled."""
    native = NATIVE_STATES.get(state, state)
    word = native.removeprefix("JOB_STATE_").removeprefix("BATCH_STATE_")
    kinds = [kind for _, kind in outcomes]
    stats = {"requestCount": str(len(kinds))}
    metadata: dict[str, Any] = {"model": f"models/{MODEL}", "displayName": "ipfs-accel-1",
                                "createTime": _CREATED, "updateTime": _UPDATED,
                                "state": native, "batchStats": stats}
    op: dict[str, Any] = {"name": f"batches/{batch_id}", "metadata": metadata,
                          "done": word in _ENDED}
    if word in ("SUCCEEDED", "PARTIALLY_SUCCEEDED", "CANCELLED"):
        ran = [k for k in kinds if k != "cancelled"]
        stats.update(successfulRequestCount=str(ran.count("completed")),
                     failedRequestCount=str(len(ran) - ran.count("completed")),
                     pendingRequestCount=str(len(kinds) - len(ran)))
        metadata["endTime"] = _UPDATED
        op["response"] = {"inlinedResponses": {
            "inlinedResponses": [_inlined(key, kind) for key, kind in outcomes]}}
        if word == "CANCELLED":
            op["error"] = {"code": 1, "message": "The batch was cancelled."}
    elif word in ("FAILED", "EXPIRED"):
        stats["pendingRequestCount"] = str(len(kinds))
        metadata["endTime"] = _UPDATED
        op["error"] = {"code": 13 if word == "FAILED" else 4,
                       "message": f"The batch {word.lower()}."}
    else:
        stats["pendingRequestCount"] = str(len(kinds))
    return op


def batch_case() -> BatchCase:
    """How the Batch API answers: the operation created (pending), then described."""
    from ipfs_accel.testing import BatchCase, Reply  # noqa: PLC0415 - the kit loads only here

    def submitted(batch_id: str) -> tuple[Reply, ...]:
        return (Reply(200, json=operation(batch_id, "JOB_STATE_PENDING", ())),)

    def described(batch_id: str, state: str, outcomes: Outcomes) -> Reply:
        return Reply(200, json=operation(batch_id, state, outcomes))

    def results(batch_id: str, outcomes: Outcomes) -> tuple[Reply, ...]:
        return ()  # the answers are inline in the description

    return BatchCase(submitted=submitted, described=described, results=results, text=TEXT,
                     tokens=TOKENS,
                     states=("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"))

"""How Anthropic's Message Batches API answers, for the kit's fake batch server
(:class:`ipfs_accel.testing.BatchCase`), in the spec's shapes (``anthropic/openapi.yaml``):

- a ``MessageBatch`` with all ten of its required fields, the nullable ones (``ended_at``,
  ``archived_at``, ``cancel_initiated_at``, ``results_url``) ``null`` until they apply and
  times in RFC 3339; ``request_counts`` all ``processing`` until the batch ends;
- the results as ``application/x-jsonl``, one ``MessageBatchIndividualResponse`` a line:
  ``succeeded`` with a whole ``Message`` (every required field, ``usage`` too),
  ``errored`` with the ``ErrorResponse`` envelope, ``expired`` and ``canceled`` by type.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipfs_accel.testing import BatchCase, Outcomes, Reply

__all__ = ["batch_case", "message_batch", "result_line"]

TEXT = "pong"
TOKENS = (9, 3)
_CREATED = "2024-08-20T18:37:24.100435Z"
_EXPIRES = "2024-08-21T18:37:24.100435Z"
_LATER = "2024-08-20T18:42:24.100435Z"
_ENDED = {"completed", "ended", "failed", "expired", "cancelled"}
_KINDS = {"completed": "succeeded", "failed": "errored", "expired": "expired",
          "cancelled": "canceled"}


def message_batch(batch_id: str, state: str, outcomes: Outcomes = ()) -> dict[str, Any]:
    """A ``MessageBatch`` in ``state``, the API's word (``in_progress``, ``canceling``,
    ``ended``) or the core's (``completed``, ``cancelled``...: ``ended``; ``cancelling``:
    ``canceling``; any other: ``in_progress``); once ended, counted by ``outcomes``."""
    ended = state in _ENDED
    cancel = state in ("cancelled", "cancelling", "canceling")
    counts = {"processing": 0 if ended else len(outcomes), "succeeded": 0, "errored": 0,
              "canceled": 0, "expired": 0}
    if ended:
        for _, kind in outcomes:
            counts[_KINDS[kind]] += 1
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended" if ended else "canceling" if cancel else "in_progress",
        "request_counts": counts,
        "created_at": _CREATED,
        "expires_at": _EXPIRES,
        "ended_at": _LATER if ended else None,
        "archived_at": None,
        "cancel_initiated_at": _CREATED if cancel else None,
        "results_url": (f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results"
                        if ended else None),
    }


def _message(n: int) -> dict[str, Any]:
    return {
        "id": f"msg_01HCDu5LRGeP2o7s2xGmxyx{n}",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": TEXT, "citations": None}],
        "model": "claude-sonnet-4-6",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "usage": {"input_tokens": TOKENS[0], "output_tokens": TOKENS[1],
                  "cache_creation": None, "cache_creation_input_tokens": None,
                  "cache_read_input_tokens": None, "inference_geo": None,
                  "server_tool_use": None, "service_tier": "batch"},
    }


def result_line(key: str, kind: str, n: int = 1) -> dict[str, Any]:
    """The result line of the request ``key`` whose outcome is ``kind`` (``completed``,
    ``failed``: an ``invalid_request_error``, ``expired``, ``cancelled``)."""
    result: dict[str, Any] = {"type": _KINDS[kind]}
    if kind == "completed":
        result["message"] = _message(n)
    elif kind == "failed":
        result["error"] = {"type": "error", "request_id": None, "error": {
            "type": "invalid_request_error", "message": "max_tokens: Field required"}}
    return {"custom_id": key, "result": result}


def _results(batch_id: str, outcomes: Outcomes) -> tuple[Reply, ...]:
    from ipfs_accel.testing import Reply  # noqa: PLC0415 - the kit loads only here

    lines = [json.dumps(result_line(key, kind, n)) + "\n"
             for n, (key, kind) in enumerate(outcomes, start=1)]
    return (Reply(200, body="".join(lines).encode(),
                  headers={"content-type": "application/x-jsonl"}),)


def _submitted(batch_id: str) -> tuple[Reply, ...]:
    from ipfs_accel.testing import Reply  # noqa: PLC0415

    return (Reply(200, json=message_batch(batch_id, "in_progress")),)


def _described(batch_id: str, state: str, outcomes: Outcomes) -> Reply:
    from ipfs_accel.testing import Reply  # noqa: PLC0415

    return Reply(200, json=message_batch(batch_id, state, outcomes))


def batch_case() -> BatchCase:
    """The case's ``batch``: created ``in_progress``, then ``in_progress`` and ``ended``."""
    from ipfs_accel.testing import BatchCase  # noqa: PLC0415

    return BatchCase(submitted=_submitted, described=_described, results=_results,
                     text=TEXT, tokens=TOKENS, states=("in_progress", "ended"))

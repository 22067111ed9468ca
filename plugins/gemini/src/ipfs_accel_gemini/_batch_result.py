"""One result of a Gemini batch as the core's :class:`~ipfs_accel.BatchOutcome`.

A result is one of the batch's ``inlinedResponses`` (``{"response" | "error", "metadata":
{"key": ...}}``) or a line of its ``responsesFile`` (``{"key", "response" | "error" |
"status"}``). A ``response`` is a ``GenerateContentResponse``, read by the online reader
(:func:`~._response.parse_generate`, usage as billed). An error is a google.rpc ``Status``
whose ``code`` is a gRPC code; it becomes the :class:`~ipfs_accel.Failure` of the HTTP status
the online API answers that code with, its body as the online API sends it (``{"error":
{"code": <HTTP status>, "message", "status": <code name>, "details"}}``), so it is
classified as an online call's. Two codes say the item never ran to its end: ``CANCELLED``
(1) is a cancelled item, ``DEADLINE_EXCEEDED`` (4) an expired one (the batch's window
closed on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from ipfs_accel import BatchOutcome, Failure, Response, Usage

from ._response import parse_generate, usage_from
from ._wire import GenerateContentResponse

__all__ = ["GRPC_CODES", "error_body", "read_result"]

# google.rpc.Code -> (name, the HTTP status the API answers it with)
GRPC_CODES: Mapping[int, tuple[str, int]] = {
    1: ("CANCELLED", 499),
    2: ("UNKNOWN", 500),
    3: ("INVALID_ARGUMENT", 400),
    4: ("DEADLINE_EXCEEDED", 504),
    5: ("NOT_FOUND", 404),
    6: ("ALREADY_EXISTS", 409),
    7: ("PERMISSION_DENIED", 403),
    8: ("RESOURCE_EXHAUSTED", 429),
    9: ("FAILED_PRECONDITION", 400),
    10: ("ABORTED", 409),
    11: ("OUT_OF_RANGE", 400),
    12: ("UNIMPLEMENTED", 501),
    13: ("INTERNAL", 500),
    14: ("UNAVAILABLE", 503),
    15: ("DATA_LOSS", 500),
    16: ("UNAUTHENTICATED", 401),
}
# HTTP status -> the code name, for an error already given with an HTTP status
_HTTP_NAMES: Mapping[int, str] = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                                  403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED",
                                  429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
                                  501: "UNIMPLEMENTED", 503: "UNAVAILABLE",
                                  504: "DEADLINE_EXCEEDED"}
_NEVER_RAN: Mapping[int, str] = {1: "cancelled", 4: "expired"}


def _key(data: Mapping[str, Any]) -> str:
    metadata = data.get("metadata")
    key = metadata.get("key") if isinstance(metadata, Mapping) else None
    if key is None:
        key = data.get("key")  # a responsesFile line
    if not isinstance(key, str) or not key:
        raise ValueError("a Gemini batch result without its key (metadata.key or key)")
    return key


def error_body(status: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the online API's error body for a google.rpc ``Status``."""
    code = status.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else 2
    if code >= 100:  # already an HTTP status, as the online API's body gives it
        http, name = code, _HTTP_NAMES.get(code, "UNKNOWN")
    else:
        name, http = GRPC_CODES.get(code, ("UNKNOWN", 500))
    given = status.get("status")
    error: dict[str, Any] = {"code": http, "message": str(status.get("message") or ""),
                             "status": given if isinstance(given, str) and given else name}
    details = status.get("details")
    if isinstance(details, list) and details:
        error["details"] = details
    return http, {"error": error}


def _answer(key: str, response: Any) -> BatchOutcome:
    if not isinstance(response, dict):
        raise ValueError(f"the batch result {key!r} has a response that is not an object")
    typed = msgspec.convert(response, GenerateContentResponse)
    result = parse_generate(Response(status=200, headers={}, data=typed,
                                     content=msgspec.json.encode(response)))
    result.usage = usage_from(typed) or Usage()
    return BatchOutcome(key=key, result=result)


def read_result(data: Any, operation: str) -> BatchOutcome:
    """One inline response or ``responsesFile`` line as a :class:`BatchOutcome`."""
    if not isinstance(data, dict):
        raise ValueError(f"a Gemini batch result is an object, not {type(data).__name__}")
    key = _key(data)
    if data.get("response") is not None:
        return _answer(key, data["response"])
    status = data.get("error") or data.get("status")
    if not isinstance(status, dict):
        raise ValueError(f"the batch result {key!r} has neither a response nor an error")
    code = status.get("code")
    never = _NEVER_RAN.get(code) if isinstance(code, int) else None
    message = str(status.get("message") or "")
    if never == "expired":
        return BatchOutcome(key=key, state="expired", message=message)
    if never == "cancelled":
        return BatchOutcome(key=key, state="cancelled", message=message)
    http, body = error_body(status)
    return BatchOutcome(key=key, state="failed", failure=Failure(
        operation=operation, status=http, data=body, content=msgspec.json.encode(body)))

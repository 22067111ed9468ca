"""The hooks a backend plugin implements. A plugin only translates; the core does the rest.

A plugin is a module (or object) with functions marked ``@ipfs_accel.hookimpl``:

- ``backend_info()`` (required): the backend's name, defaults, env vars and operations.
- ``send(call, endpoint)`` (required): the HTTP exchange for one call, and how to read
  the answer back into a result.
- ``parse_usage(operation, data)``: token usage from a response body or stream event.
- ``classify_error(failure)``: what kind of error a failed exchange is, and whether and
  when to retry it.
- ``parse_rate_limits(headers)`` (optional): what a response's headers say about the
  endpoint's rate limits, so the core paces calls before the server refuses them.
- ``batch_exchange(step, endpoint)`` and ``batch_result(data, operation)`` (optional, with
  ``BackendInfo.batch``): the provider's batch API, translated (``ipfs_accel._batch_types``).
- ``conformance_case()`` (optional): how ``ipfs_accel.testing`` and ``ipfs-accel report``
  drive this backend through the conformance checks.

The core builds one plugin manager per backend, so a call for one backend never walks the
hooks of another. None of the hooks perform I/O: the core sends, and sync and async calls
share the same plugin code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._batch_types import BatchOutcome, BatchStep
    from ._settings import EndpointConfig
    from ._types import BackendInfo, Call, Classification, Exchange, Failure, RateLimits, Usage
    from .testing import Case

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "ipfs_accel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Mark a plugin's hook implementations: ``@ipfs_accel.hookimpl``."""

# A hook spec is a signature and a docstring, never a body: mypy's empty-body check does not
# apply to them (hence the ignores below).


@hookspec(firstresult=True)
def backend_info() -> BackendInfo:  # type: ignore[empty-body]
    """Declare the backend: name, default base URL, env vars, operations, options type."""


@hookspec(firstresult=True)
def send(call: Call, endpoint: EndpointConfig) -> Exchange:  # type: ignore[empty-body]
    """Translate one call into the HTTP exchange this API expects.

    Return an :class:`~ipfs_accel.Exchange`: method, path, JSON body, the API's own auth
    header built from ``endpoint.api_key`` (may be ``None``), and ``parse`` (or, for a
    stream, ``parse_event``) to read the answer back. Raise
    :class:`~ipfs_accel.UnsupportedOperationError` for an operation the API does not have,
    or :class:`~ipfs_accel.ConfigurationError` for a call that cannot be expressed.
    """


@hookspec(firstresult=True)
def parse_usage(operation: str, data: Any) -> Usage | None:
    """Token usage from a decoded response body or stream event; ``None`` if it has none.

    For streams the core calls it on every event and merges the reports
    (:meth:`~ipfs_accel.Usage.merged`), so a usage split over several events adds up.
    """


@hookspec(firstresult=True)
def classify_error(failure: Failure) -> Classification | None:
    """Classify a failed exchange: kind, retryable, message, code and Retry-After.

    Must never raise (the core checks this property). Return ``None`` to use
    :func:`~ipfs_accel.default_classification`, which plugins usually call and refine.
    """


@hookspec(firstresult=True)
def parse_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """Optional: the endpoint's rate-limit budgets from a response's headers, or ``None``.

    Called on every response the core receives from the endpoint (success, error, or the
    head of a stream), with case-insensitive headers. Translate only (OpenAI's
    ``x-ratelimit-remaining-requests``, Anthropic's ``anthropic-ratelimit-*``...); the
    core decides what to do (hold new calls until a spent budget resets). Must never raise.
    """


@hookspec(firstresult=True)
def batch_exchange(step: BatchStep, endpoint: EndpointConfig) -> Exchange | None:
    """Optional: the exchange of one step of the provider's batch lifecycle.

    ``step`` is one of (``ipfs_accel.BatchLine`` ... ``BatchFetch``):

    - ``BatchLine(key, call)``: the request line of one call, as ``json`` (never sent; the
      core writes it, one line of JSON, to the file a batch is made of); ``key`` is its
      ``custom_id``.
    - ``BatchSubmit(lines, count, operation, model, label)``: create a batch of the lines in
      the file ``lines``, streamed by the core as the exchange's ``body``
      (:class:`~ipfs_accel.LinesBody`: a JSON document around them or a multipart upload);
      ``parse`` answers an ``InvokeResult`` whose ``data`` is a ``VendorBatch``, or a
      further exchange (upload a file, then create the batch from its ID).
    - ``BatchPoll(batch_id)`` / ``BatchCancel(batch_id)``: describe / cancel a batch;
      ``parse`` answers an ``InvokeResult`` whose ``data`` is a ``VendorBatch``.
    - ``BatchFetch(batch, output)``: a GET of one of the batch's outputs, a JSONL body the
      core reads line by line (``parse`` is not used).

    Auth headers as in ``send``. ``None``: the plugin has no batches.
    """


@hookspec(firstresult=True)
def batch_result(data: Any, operation: str) -> BatchOutcome | None:
    """Optional: one result of a batch (a decoded line of an output, or one of the inline
    results of a ``VendorBatch``) as a ``BatchOutcome``: its key, and the result as an
    online call's (``ChatResult`` / ``EmbedResult`` with its usage, parsed by the plugin's
    own reader), or the ``Failure`` the provider reported (the core classifies it with
    ``classify_error``, as an online call's), or ``expired`` / ``cancelled``.
    ``operation``: what the batch's calls were (``chat``, ``embed``...)."""


@hookspec(firstresult=True)
def conformance_case() -> Case:  # type: ignore[empty-body]
    """Optional: a :class:`ipfs_accel.testing.Case` for the conformance checks.

    The case says how to make one valid call, the API's canned success reply, how the key
    and the request ID travel. ``ipfs-accel report`` runs the checks live for every
    installed plugin that implements this hook (the others show as "no case"), and
    ``ipfs-accel demo`` replays the case's canned answers (with faults injected) to show the
    plugin at work: the core itself knows no API's wire format. Import
    ``ipfs_accel.testing`` inside the hook, so normal use never loads the kit.
    """

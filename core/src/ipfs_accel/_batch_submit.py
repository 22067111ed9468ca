"""Submitting a batch job (:meth:`Backend.submit_batch`) and following one again
(:meth:`Backend.get_batch`); the job itself is :mod:`._batch`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ._batch import JOB_PREFIX, BatchJob, run_step
from ._batch_fetch import step_call
from ._batch_input import to_call
from ._batch_types import BatchLimits, BatchLine, BatchSubmit, VendorBatch
from ._errors import CallError, ConfigurationError, UnsupportedOperationError

if TYPE_CHECKING:
    from ._backend import Backend
    from ._endpoint import Endpoint

__all__ = ["BatchMethods", "decode_job_id", "submit"]

_ENCODE = msgspec.json.Encoder()


def decode_job_id(job_id: str) -> list[tuple[str, str]]:
    """The batches a job ID names; a ``ConfigurationError`` for one that is not ours."""
    if not isinstance(job_id, str) or not job_id.startswith(JOB_PREFIX):
        raise ConfigurationError(f"not a batch job ID: {job_id!r} (they start {JOB_PREFIX!r})")
    raw = job_id[len(JOB_PREFIX):]
    try:
        parts = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return [(str(b), str(op)) for b, op in parts]
    except (ValueError, TypeError, binascii.Error):
        raise ConfigurationError(f"not a batch job ID: {job_id!r} (it does not decode)") from None


class _Part:
    """One batch being written: its lines' file, their count and size, their keys."""

    def __init__(self, folder: Path, operation: str, model: str | None, n: int) -> None:
        self.path = folder / f"part-{n}.jsonl"
        self.file = self.path.open("wb")
        self.operation = operation
        self.model = model
        self.count = self.size = self.inputs = 0
        self.keys: list[str] = []

    def fits(self, limits: BatchLimits, line: bytes, inputs: int) -> bool:
        """Whether one more line (of ``inputs`` embedding texts) stays within ``limits``."""
        return (self.count < limits.max_requests
                and self.size + len(line) + 1 <= limits.max_bytes
                and (limits.max_inputs is None or self.inputs + inputs <= limits.max_inputs))

    def add(self, key: str, line: bytes, inputs: int) -> None:
        self.file.write(line + b"\n")
        self.count += 1
        self.size += len(line) + 1  # with its newline (or separator): what is sent
        self.inputs += inputs
        self.keys.append(key)


def submit(backend: Backend, calls: Iterable[Any], endpoint_id: str | None, *,
           model: str | None = None, label: str | None = None,
           on_batch: Callable[[VendorBatch, list[str]], None] | None = None,
           before_batch: Callable[[BatchSubmit, list[str]], None] | None = None,
           ) -> BatchJob:
    """:meth:`Backend.submit_batch`."""
    limits = backend.info.batch
    if limits is None or not backend._hooks.has_batches:
        raise UnsupportedOperationError(f"backend {backend.name!r} has no batch API")
    endpoint = backend._endpoint(endpoint_id)
    label = label or "ipfs-accel-" + time.strftime("%Y%m%dT%H%M%S")
    with tempfile.TemporaryDirectory(prefix="ipfs-accel-batch-") as folder:
        parts = _write_parts(backend, endpoint, calls, Path(folder), model)
        done: list[tuple[str, str]] = []
        keys: dict[str, list[str]] = {}
        for n, part in enumerate(parts, start=1):
            step = BatchSubmit(lines=part.path, count=part.count, operation=part.operation,
                               model=part.model, label=f"{label}-{n}")
            if before_batch is not None:
                before_batch(step, part.keys)
            try:
                batch = run_step(backend, endpoint, step)
            except CallError as exc:
                if done:
                    exc.add_note(f"batches already submitted: job "
                                 f"{BatchJob(backend, endpoint.endpoint_id, done).id}")
                raise
            done.append((batch.id, part.operation))
            keys[batch.id] = part.keys
            if on_batch is not None:
                on_batch(batch, part.keys)
    job = BatchJob(backend, endpoint.endpoint_id, done, keys=keys)
    return job


def _write_parts(backend: Backend, endpoint: Endpoint, calls: Iterable[Any], folder: Path,
                 model: str | None) -> list[_Part]:
    limits = backend.info.batch
    assert limits is not None
    hooks = backend._hooks
    open_parts: dict[tuple[str, str | None], _Part] = {}
    parts: list[_Part] = []
    seen: set[str] = set()
    try:
        for n, data in enumerate(calls, start=1):
            # the batch's operations first: a prompt becomes the call a batch can take
            parsed = to_call(data, backend.info.operations & limits.operations)
            if isinstance(parsed, str):
                parsed = to_call(data, backend.info.operations)  # names the batch's limit below
            if isinstance(parsed, str):
                raise ConfigurationError(f"batch call {n}: {parsed}")
            key, method, kwargs = parsed
            key = str(n) if key is None else str(key)
            where = f"batch call {n} ({key!r})"
            if key in seen:
                raise ConfigurationError(f"{where}: the key is used twice (each call's id "
                                         "or custom_id must be unique)")
            seen.add(key)
            if method not in limits.operations:
                raise UnsupportedOperationError(
                    f"{where}: {backend.name}'s batches take "
                    f"{', '.join(sorted(limits.operations))}, not {method!r}")
            try:
                _, call = backend._prepare(
                    method, endpoint.endpoint_id, kwargs.pop("request_id", None),
                    kwargs.pop("model", model), kwargs, messages=kwargs.pop("messages", None),
                    prompt=kwargs.pop("prompt", None), inputs=kwargs.pop("inputs", None))
                exchange = hooks.send(step_call(BatchLine(key=key, call=call)),
                                      endpoint.config)
            except ConfigurationError as exc:  # named: which call of the many
                raise type(exc)(f"{where}: {exc}") from None
            line = _ENCODE.encode(exchange.json)
            inputs = len(call.inputs or ()) if method == "embed" else 0
            if limits.max_inputs is not None and inputs > limits.max_inputs:
                raise ConfigurationError(f"{where}: {inputs} inputs, more than one of "
                                         f"{backend.name}'s batches takes ({limits.max_inputs})")
            group = (method, call.model)
            part = open_parts.get(group)
            if part is not None and not part.fits(limits, line, inputs):
                part.file.close()
                part = None
            if part is None:
                part = open_parts[group] = _Part(folder, method, call.model, len(parts) + 1)
                parts.append(part)
            part.add(key, line, inputs)
    finally:
        for part in parts:
            part.file.close()
    if not parts:
        raise ConfigurationError("a batch needs at least one call")
    return parts


class BatchMethods:
    """The batch methods of :class:`Backend`."""

    def submit_batch(self, calls: Iterable[Any], endpoint_id: str | None = None, *,
                     model: str | None = None, label: str | None = None,
                     on_batch: Callable[[VendorBatch, list[str]], None] | None = None,
                     before_batch: Callable[[BatchSubmit, list[str]], None] | None = None,
                     ) -> BatchJob:
        """Send ``calls`` as the provider's batches (about half the price of online calls,
        answered within the provider's window); the :class:`BatchJob` that follows them.

        ``calls``: dicts in ``ipfs-accel run``'s line shape (``id``, one of ``messages`` /
        ``prompt`` / ``input``, ``model``, ``params``) or OpenAI's Batch line shape
        (``custom_id``, ``method``, ``url``, ``body``); a call's ``id`` / ``custom_id`` is
        its key in the results (numbered from 1 when it has none). Every call is checked
        first: a bad one is a ``ConfigurationError`` naming it, and nothing is sent.
        ``on_batch(batch, keys)`` is told each provider batch the moment it exists, and
        ``before_batch(step, keys)`` just before each is submitted (``step.label`` names it
        at the provider: ``{label}-{n}``; ``step.operation``), so a caller can record what
        may exist at the provider should the process die in between.
        """
        return submit(self, calls, endpoint_id, model=model,  # type: ignore[arg-type]
                      label=label, on_batch=on_batch, before_batch=before_batch)

    async def asubmit_batch(self, calls: Iterable[Any], endpoint_id: str | None = None, *,
                            model: str | None = None, label: str | None = None) -> BatchJob:
        """:meth:`submit_batch` from the event loop (in a worker thread)."""
        return await asyncio.to_thread(self.submit_batch, calls, endpoint_id, model=model,
                                       label=label)

    def get_batch(self, job_id: str, endpoint_id: str | None = None) -> BatchJob:
        """The :class:`BatchJob` ``job_id`` names, followed again through ``endpoint_id``
        (its key must be the one it was submitted with)."""
        parts = decode_job_id(job_id)
        endpoint = self._endpoint(endpoint_id)  # type: ignore[attr-defined]
        return BatchJob(self, endpoint.endpoint_id, parts)  # type: ignore[arg-type]

"""Embedding a batch larger than the server takes, as one chain of exchanges.

TEI refuses a request with more inputs than its ``max_client_batch_size`` (413). The chain
is: ``GET /info`` to learn that size (once per base URL: it is cached here; skipped when
the endpoint sets ``max_client_batch_size`` or the batch has a single input), then one
``POST /embed`` (or ``/v1/embeddings``) per slice. Each parser returns the next slice's
exchange, carrying the vectors and usage so far, and the last one returns the result in
input order. Nothing is mutated between steps, so a retry that restarts the chain from its
first exchange starts clean.

Each exchange declares its answer's type and the core decodes into it: ``/info`` into
:class:`Info` (only ``max_client_batch_size`` is read), ``/embed`` straight into
``list[list[float]]`` and ``/v1/embeddings`` into :class:`openai_compat.Embeddings`, so a
value that is not a number is a ``ResponseError`` naming its position and the vectors are
decoded once. ``raw`` never repeats the vectors: ``None`` for ``/embed`` (its answer is
nothing but the vectors), the body without its ``data`` for ``/v1/embeddings``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from ipfs_accel import Call, EmbedResult, EndpointConfig, Exchange, Response, Usage, openai_compat

__all__ = [
    "SIZES",
    "BatchSizes",
    "Info",
    "Vectors",
    "embed_exchange",
    "header_usage",
    "info_batch_size",
]

TIMING_HEADERS = (
    "x-total-time",
    "x-tokenization-time",
    "x-queue-time",
    "x-inference-time",
)
"""Timings (milliseconds) TEI reports in headers; kept in ``Usage.details`` by name."""


class BatchSizes:
    """``max_client_batch_size`` per base URL, as ``GET /info`` reported it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}

    def get(self, base_url: str) -> int | None:
        """The size known for this server, or ``None`` when it was never probed."""
        with self._lock:
            return self._sizes.get(base_url)

    def put(self, base_url: str, size: int) -> None:
        """Remember this server's size (0: it reported no usable limit)."""
        with self._lock:
            self._sizes[base_url] = size

    def clear(self) -> None:
        """Forget every size (a server was restarted with another limit)."""
        with self._lock:
            self._sizes.clear()


SIZES = BatchSizes()
"""The cache every hf_tei backend in the process shares: the size belongs to the server."""


class Info(msgspec.Struct):
    """What the batch plan reads of TEI's ``GET /info`` answer."""

    max_client_batch_size: int = 0  # 0 (or absent): no usable limit, the server decides


Vectors = list[list[float]]
"""The ``/embed`` answer: one vector per input, in input order."""


def info_batch_size(data: Info) -> int:
    """``max_client_batch_size`` from an ``Info`` body; 0 when absent or not positive."""
    return max(data.max_client_batch_size, 0)


def _count(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return max(int(value.strip()), 0)
    except ValueError:
        return 0


def header_usage(headers: Mapping[str, str]) -> Usage:
    """Usage from ``x-compute-tokens`` (input tokens) and the timing headers."""
    details: dict[str, float] = {}
    for name in TIMING_HEADERS:
        value = headers.get(name)
        if value is not None:
            try:
                details[name] = float(value)
            except ValueError:
                continue
    return Usage(input_tokens=_count(headers.get("x-compute-tokens")), details=details)


def _vectors(data: Vectors, expected: int) -> Vectors:
    if len(data) != expected:
        raise ValueError(f"{expected} inputs sent, {len(data)} vectors received")
    return data


class _Plan(msgspec.Struct, frozen=True):
    """What every step of one embed chain shares."""

    call: Call
    inputs: Sequence[str]
    size: int  # 0: everything in one request
    openai: bool
    headers: Mapping[str, str]  # the auth header among them: never in a repr

    def __repr__(self) -> str:
        return (f"_Plan(inputs={len(self.inputs)}, size={self.size}, openai={self.openai}, "
                f"headers={sorted(self.headers)})")

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("inputs", len(self.inputs)), ("size", self.size), ("openai", self.openai),
                ("headers", sorted(self.headers))]


def _step(plan: _Plan, start: int, vectors: list[list[float]], usage: Usage) -> Exchange:
    end = len(plan.inputs) if plan.size <= 0 else min(start + plan.size, len(plan.inputs))
    part = list(plan.inputs[start:end])
    whole = start == 0 and end >= len(plan.inputs)
    if plan.openai:
        sub = msgspec.structs.replace(plan.call, inputs=part)
        body = openai_compat.embeddings_body(sub, require_model=False)
        path = "/v1/embeddings"
    else:
        body = {"inputs": part, **plan.call.params}
        path = "/embed"

    def parse(resp: Response) -> EmbedResult | Exchange:
        model = raw = None
        if plan.openai:
            got = openai_compat.parse_embeddings(resp, count=len(part))  # rows placed by index
            more, model, raw = got.vectors, got.model, got.raw
            # the body's ``usage`` is read by parse_usage and summed over the chain by the core
            so_far = usage
        else:
            more = _vectors(resp.data, len(part))
            so_far = usage.plus(header_usage(resp.headers))
        done = vectors + more
        if end < len(plan.inputs):
            return _step(plan, end, done, so_far)
        return EmbedResult(vectors=done, model=model, usage=so_far, raw=raw if whole else None)

    return Exchange(path=path, json=body, headers=plan.headers, parse=parse,
                    response_type=openai_compat.Embeddings if plan.openai else Vectors)


def embed_exchange(
    call: Call, endpoint: EndpointConfig, *, headers: Mapping[str, str],
    sizes: BatchSizes = SIZES,
) -> Exchange:
    """The first exchange of an embed call: the ``/info`` probe or the first slice."""
    opts = endpoint.options
    inputs = call.inputs or []
    size = opts.max_client_batch_size if opts is not None else None
    openai = bool(opts is not None and opts.openai_api)
    if size is None and len(inputs) <= 1:
        size = 0  # any server takes one input: no need to ask
    if size is None:
        size = sizes.get(endpoint.base_url)
    if size is not None:
        return _step(_Plan(call, inputs, size, openai, headers), 0, [], Usage())
    base_url = endpoint.base_url

    def after_info(resp: Response) -> Exchange:
        found = info_batch_size(resp.data)
        sizes.put(base_url, found)
        return _step(_Plan(call, inputs, found, openai, headers), 0, [], Usage())

    return Exchange(method="GET", path="/info", headers=headers, parse=after_info,
                    response_type=Info)

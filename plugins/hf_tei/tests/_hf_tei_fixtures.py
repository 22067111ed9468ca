"""Shared helpers of the hf_tei tests: a recording fake server and TEI-shaped bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import ipfs_accel_hf_tei
from ipfs_accel import Backend
from ipfs_accel.testing import FAST_RETRIES, mock_backend
from ipfs_accel.testing import Recorder as Server
from ipfs_accel_hf_tei._batch import SIZES

Handler = Callable[[httpx2.Request], httpx2.Response]


def backend(
    server: Server, *, environ: dict[str, str] | None = None, **settings: Any
) -> tuple[Backend, str]:
    """The hf_tei backend over ``server`` and one endpoint with fast retries.

    The per-server batch-size cache is cleared so each test starts from an unprobed server.
    """
    SIZES.clear()
    b = mock_backend(ipfs_accel_hf_tei, server, environ=environ)
    eid = b.create_endpoint(**{**FAST_RETRIES, "base_url": "http://tei.test", **settings})
    return b, eid


def error(status: int, message: str, error_type: str) -> httpx2.Response:
    """A TEI ``ErrorResponse``."""
    return httpx2.Response(status, json={"error": message, "error_type": error_type})


def info(max_client_batch_size: int = 32) -> dict[str, Any]:
    """A TEI ``Info`` body."""
    return {
        "model_id": "BAAI/bge-small-en-v1.5", "model_sha": None, "model_dtype": "float16",
        "served_model_name": "BAAI/bge-small-en-v1.5",
        "model_type": {"embedding": {"pooling": "cls"}},
        "max_concurrent_requests": 512, "max_input_length": 512, "max_batch_tokens": 16384,
        "max_batch_requests": None, "max_client_batch_size": max_client_batch_size,
        "auto_truncate": False, "tokenization_workers": 4, "version": "1.9.3",
        "sha": None, "docker_label": None,
    }


def vector(text: str) -> list[float]:
    """A deterministic 3-d vector for ``text`` (so order can be checked)."""
    n = int(text.removeprefix("t"))
    return [float(n), float(n) + 0.5, -float(n)]


def embed_server(*, tokens_per_input: int = 2) -> Handler:
    """A handler answering ``/embed`` with one vector per input (and ``x-compute-tokens``)."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        inputs = json.loads(request.content)["inputs"]
        return httpx2.Response(
            200, json=[vector(t) for t in inputs],
            headers={"x-compute-tokens": str(tokens_per_input * len(inputs)),
                     "x-total-time": "5", "x-compute-type": "cpu"},
        )
    return handle

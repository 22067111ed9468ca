"""Answers the ollama plugin must refuse: short embeddings, vectors that are not numbers.

The count is the core's result guard (``N vectors for M inputs``); a row or value of the
wrong type is refused by the typed decode, which names it by its place in the body.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _ollama_fixtures import EMBED_RESPONSE, backend, endpoint
from ipfs_accel import ResponseError
from ipfs_accel.testing import Recorder


def _embed(rows: list[Any]) -> httpx2.Response:
    return httpx2.Response(200, json={**EMBED_RESPONSE, "embeddings": rows})


@pytest.mark.parametrize("rows", [[[0.1], [0.2]], []])
def test_fewer_vectors_than_inputs_raise(rows: list[Any]) -> None:
    """Two vectors, or none, for three inputs is a ResponseError, never a shifted result."""
    rec = Recorder(_embed(rows))
    b = backend(rec)
    with pytest.raises(ResponseError, match=f"ollama returned {len(rows)} vectors for 3 inputs"):
        b.embed(["alpha", "beta", "gamma"], model="all-minilm", endpoint_id=endpoint(b))
    assert len(rec.requests) == 1


def test_a_row_that_is_not_a_list_is_not_dropped() -> None:
    """A null row is named, not dropped (dropping it would move 'gamma' onto 'beta')."""
    b = backend(Recorder(_embed([[0.1], None, [0.3]])))
    with pytest.raises(ResponseError,
                       match=r"ollama sent .*got `null` - at `\$\.embeddings\[1\]`"):
        b.embed(["alpha", "beta", "gamma"], model="all-minilm", endpoint_id=endpoint(b))


@pytest.mark.parametrize(("value", "kind"), [(None, "null"), ("0.5", "str"), (True, "bool")])
def test_a_value_that_is_not_a_number_is_named(value: Any, kind: str) -> None:
    """null, a string or a bool inside a vector is a ResponseError naming its position."""
    b = backend(Recorder(_embed([[0.1, 0.2], [0.3, value]])))
    with pytest.raises(ResponseError,
                       match=rf"ollama sent .*got `{kind}` - at `\$\.embeddings\[1\]\[1\]`"):
        b.embed(["a", "b"], model="all-minilm", endpoint_id=endpoint(b))


def test_vectors_in_order_pass() -> None:
    """One vector per input passes, in the order sent (Ollama gives no index)."""
    b = backend(Recorder(_embed([[1, 2], [3.5, 4]])))
    result = b.embed(["a", "b"], model="all-minilm", endpoint_id=endpoint(b))
    assert result.vectors == [[1.0, 2.0], [3.5, 4.0]]

"""Answers the gemini plugin must refuse: missing or short embeddings, values not numbers."""

from __future__ import annotations

from typing import Any

import pytest
from _gemini_fixtures import backend, endpoint, json_response
from ipfs_accel import ResponseError
from ipfs_accel.testing import Recorder


def _batch(*values: Any) -> dict[str, Any]:
    return {"embeddings": [{"values": v} for v in values]}


@pytest.mark.parametrize("body", [_batch([0.1], [0.2]), _batch(), {}])
def test_batch_with_fewer_embeddings_than_inputs_raises(body: dict[str, Any]) -> None:
    """Two embeddings, an empty list, or none at all for three inputs is a ResponseError."""
    rec = Recorder(json_response(200, body))
    b = backend(rec)
    with pytest.raises(ResponseError, match="embeddings") as info:
        b.embed(["alpha", "beta", "gamma"], endpoint_id=endpoint(b))
    assert info.value.backend == "gemini" and len(rec.requests) == 1


def test_one_input_without_an_embedding_raises() -> None:
    """An embedContent answer with no embedding is a ResponseError, not an empty result."""
    b = backend(Recorder(json_response(200, {})))
    with pytest.raises(ResponseError, match="no 'embedding'"):
        b.embed("alpha", endpoint_id=endpoint(b))


@pytest.mark.parametrize(("value", "kind"), [("0.5", "str"), (None, "null"), (False, "bool")])
def test_a_value_that_is_not_a_number_is_named(value: Any, kind: str) -> None:
    """A string (no longer quietly converted), null or bool in a vector is named by position."""
    b = backend(Recorder(json_response(200, _batch([0.1, 0.2], [value, 0.4]))))
    # msgspec's words for the type; the field as the body spells it
    with pytest.raises(
        ResponseError, match=rf"^gemini .*got `{kind}` - at `\$\.embeddings\[1\]\.values\[0\]`"
    ) as info:
        b.embed(["a", "b"], endpoint_id=endpoint(b))
    assert info.value.backend == "gemini"


def test_values_that_are_not_a_list_are_named() -> None:
    """An embedding whose values are not a list names embeddings[i].values."""
    b = backend(Recorder(json_response(200, {"embeddings": [{"values": [0.1]}, {"values": 3}]})))
    with pytest.raises(ResponseError, match=r"got `int` - at `\$\.embeddings\[1\]\.values`"):
        b.embed(["a", "b"], endpoint_id=endpoint(b))

"""llvm: finish_reason in the core's vocabulary with the server's value beside it; the model
in the path is the one named, as given, else ``default``."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_llvm
import pytest
from ipfs_accel import FINISH_REASONS, Call, ConfigurationError, EndpointConfig, EndpointSettings
from ipfs_accel.testing import FAST_RETRIES, Recorder, mock_backend
from ipfs_accel_llvm._response import FINISH_REASON_TABLE

FINISHES = [*FINISH_REASON_TABLE.items(), ("STOP", "stop"), ("content_filter", "content_filter"),
            ("something_new", "other")]
MODEL_OPERATIONS = {
    "generate": {"prompt": "hi"},
    "chat": {"messages": [{"role": "user", "content": "hi"}]},
    "infer": {"input": "x"},
    "batch_infer": {"inputs": ["x"]},
    "model_info": {},
    "reload": {},
}


def _backend(*answers: Any, **settings: Any) -> tuple[Any, str, Recorder]:
    rec = Recorder(*answers)
    backend = mock_backend(ipfs_accel_llvm, rec)
    eid = backend.create_endpoint(**{**FAST_RETRIES, "base_url": "http://llvm.test", **settings})
    return backend, eid, rec


def test_the_table_maps_into_the_vocabulary() -> None:
    """Every value the table names maps to one of FINISH_REASONS; the contract's stop stays."""
    assert set(FINISH_REASON_TABLE.values()) <= FINISH_REASONS
    assert FINISH_REASON_TABLE["stop"] == "stop"


@pytest.mark.parametrize("operation", ["generate", "chat"])
@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_finish_reason_is_normalized_and_native_kept(
    operation: str, native: str, expected: str
) -> None:
    """generate and chat give finish_reason in the vocabulary and the server's value as native."""
    backend, eid, _ = _backend(httpx2.Response(200, json={"result": "x", "finish_reason": native}))
    if operation == "chat":
        out = backend.chat([{"role": "user", "content": "hi"}], endpoint_id=eid)
    else:
        out = backend.generate("hi", endpoint_id=eid)
    assert (out.finish_reason, out.native_finish_reason) == (expected, native)


@pytest.mark.parametrize("body", [{"result": "x"}, "x"])
def test_no_finish_reason_is_none_twice(body: Any) -> None:
    """An answer without finish_reason (or a bare string) leaves both fields None."""
    backend, eid, _ = _backend(httpx2.Response(200, json=body))
    out = backend.generate("hi", endpoint_id=eid)
    assert (out.finish_reason, out.native_finish_reason) == (None, None)


def _call(backend: Any, operation: str, eid: str, **extra: Any) -> None:
    args = dict(MODEL_OPERATIONS[operation])
    if operation == "generate":
        backend.generate(args.pop("prompt"), endpoint_id=eid, **extra)
    elif operation == "chat":
        backend.chat(args.pop("messages"), endpoint_id=eid, **extra)
    else:
        backend.invoke(operation, endpoint_id=eid, **args, **extra)


def _answer(operation: str) -> httpx2.Response:
    if operation == "batch_infer":
        return httpx2.Response(200, json={"results": ["ok"]})
    return httpx2.Response(200, json={"result": "ok"})


@pytest.mark.parametrize("operation", sorted(MODEL_OPERATIONS))
@pytest.mark.parametrize(("named", "path_model"), [
    ("none", "default"), ("call", "org%2Fmy%20model"), ("endpoint", "org%2Fmy%20model"),
])
def test_a_named_model_is_sent_as_given(operation: str, named: str, path_model: str) -> None:
    """Each model-scoped operation uses the named model (call or endpoint), else 'default'."""
    settings = {"model": "org/my model"} if named == "endpoint" else {}
    backend, eid, rec = _backend(_answer(operation), **settings)
    _call(backend, operation, eid, **({"model": "org/my model"} if named == "call" else {}))
    assert rec.last.url.raw_path.decode().startswith(f"/models/{path_model}")


def test_a_call_without_a_model_is_refused_not_filled_in() -> None:
    """Called without the core (which fills the default in), send reports the missing model."""
    endpoint = EndpointConfig(endpoint_id="e", base_url="http://llvm.test", api_key=None,
                              model=None, options=None, settings=EndpointSettings())
    with pytest.raises(ConfigurationError, match="needs a model"):
        ipfs_accel_llvm.send(Call(operation="generate", prompt="hi"), endpoint)
    assert ipfs_accel_llvm.send(Call(operation="status"), endpoint).path == "/status"

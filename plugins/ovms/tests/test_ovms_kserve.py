"""KServe v2 on OVMS: readiness as a yes or no, and infer's answer with its id and version."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_ovms
import pytest
from _ovms_fixtures import INFER_RESPONSE, Recorder, backend, endpoint
from ipfs_accel import (
    AuthenticationError,
    NotFoundError,
    OverloadedError,
    ResponseError,
    ServerError,
)

TENSOR = {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]}
EMPTY_200 = httpx2.Response(200, content=b"")


def _status(status: int, body: bytes = b"") -> httpx2.Response:
    return httpx2.Response(status, content=body)


# -- readiness ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 503, 400])
def test_model_not_ready_is_false_at_once(status: int) -> None:
    """ready(model) is False for a model not (yet) ready, after one request, not retries."""
    rec = Recorder(_status(status))
    b = backend(rec)
    eid = endpoint(b, max_retries=3)
    assert ipfs_accel_ovms.ready(b, "resnet", endpoint_id=eid) is False
    assert [(q.method, q.url.path) for q in rec.requests] == [("GET", "/v2/models/resnet/ready")]


def test_model_ready_probe_not_retried() -> None:
    """invoke('model_ready') on a 503 (loading) raises at once: a probe's answer is final."""
    rec = Recorder(httpx2.Response(503, json={"error": "Model is not loaded yet"}), EMPTY_200)
    b = backend(rec)
    with pytest.raises(OverloadedError) as info:
        b.invoke("model_ready", model="resnet", endpoint_id=endpoint(b, max_retries=3))
    assert (info.value.attempts, info.value.status) == (1, 503)
    assert len(rec.requests) == 1


def test_ready_true_and_routes() -> None:
    """A 200 is ready: the server (no model), a model, a model's version."""
    rec = Recorder(EMPTY_200)
    b = backend(rec)
    eid = endpoint(b)
    assert ipfs_accel_ovms.ready(b, endpoint_id=eid, request_id="rid-r") is True
    assert ipfs_accel_ovms.ready(b, "resnet", endpoint_id=eid) is True
    assert ipfs_accel_ovms.ready(b, "resnet", version=2, endpoint_id=eid) is True
    assert [q.url.path for q in rec.requests] == [
        "/v2/health/ready", "/v2/models/resnet/ready", "/v2/models/resnet/versions/2/ready",
    ]
    assert rec.requests[0].headers["x-request-id"] == "rid-r"


def test_server_not_ready_is_false() -> None:
    """ready() without a model is the server's readiness: 503 is False, sent once."""
    rec = Recorder(_status(503))
    b = backend(rec)
    assert ipfs_accel_ovms.ready(b, endpoint_id=endpoint(b, max_retries=2)) is False
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [(_status(401), AuthenticationError), (_status(500), ServerError)],
)
def test_ready_raises_what_is_not_an_answer(answer: httpx2.Response,
                                            error: type[Exception]) -> None:
    """A refused key or a failing server is an error, not 'not ready'."""
    b = backend(Recorder(answer))
    with pytest.raises(error):
        ipfs_accel_ovms.ready(b, "resnet", endpoint_id=endpoint(b, max_retries=1))


def test_other_operations_still_retry_503() -> None:
    """Only the probes answer at once: a 503 on infer is still retried."""
    rec = Recorder(_status(503), httpx2.Response(200, json=INFER_RESPONSE))
    b = backend(rec)
    r = b.invoke("infer", model="mymodel", endpoint_id=endpoint(b), inputs=[TENSOR])
    assert len(rec.requests) == 2
    assert type(r.data).__name__ == "InferResponse"


@pytest.mark.asyncio
async def test_aready() -> None:
    """aready answers the same on the event loop: True, then False for 404."""
    rec = Recorder(EMPTY_200, _status(404))
    b = backend(rec)
    eid = endpoint(b)
    assert await ipfs_accel_ovms.aready(b, "resnet", endpoint_id=eid) is True
    assert await ipfs_accel_ovms.aready(b, "gone", endpoint_id=eid) is False
    assert len(rec.requests) == 2
    await b.aclose()


def test_not_found_still_raises_through_invoke() -> None:
    """invoke('model_ready') keeps raising (NotFoundError): ready() is what says False."""
    b = backend(Recorder(_status(404)))
    with pytest.raises(NotFoundError):
        b.invoke("model_ready", model="resnet", endpoint_id=endpoint(b))


# -- infer's answer -------------------------------------------------------------------


def test_infer_returns_id_and_version_with_outputs() -> None:
    """infer returns the response's id, model_name, model_version and parameters too."""
    answer: dict[str, Any] = {**INFER_RESPONSE, "id": "42", "model_version": "3",
                              "parameters": {"sequence_id": 7}}
    rec = Recorder(httpx2.Response(200, json=answer))
    b = backend(rec)
    r = b.invoke("infer", model="mymodel", version=3, id="42", endpoint_id=endpoint(b),
                 inputs=[TENSOR])
    assert r.data == ipfs_accel_ovms.InferResponse(
        outputs=INFER_RESPONSE["outputs"], model_name="mymodel", model_version="3", id="42",
        parameters={"sequence_id": 7},
    )
    assert r.data.outputs[0]["data"] == [1.0, 1.1, 2.0, 2.1, 3.0, 3.1]


def test_infer_optional_fields_absent() -> None:
    """A server without versions or id sends neither: they are None."""
    b = backend(Recorder(httpx2.Response(200, json=INFER_RESPONSE)))
    r = b.invoke("infer", model="mymodel", endpoint_id=endpoint(b), inputs=[TENSOR])
    assert (r.data.model_name, r.data.model_version, r.data.id, r.data.parameters) == (
        "mymodel", None, None, None)
    assert r.data.outputs == INFER_RESPONSE["outputs"]


def test_infer_wrong_typed_version_refused() -> None:
    """model_version of the wrong type is a ResponseError naming the field."""
    b = backend(Recorder(httpx2.Response(200, json={**INFER_RESPONSE, "model_version": [1]})))
    with pytest.raises(ResponseError, match="model_version"):
        b.invoke("infer", model="mymodel", endpoint_id=endpoint(b), inputs=[TENSOR])

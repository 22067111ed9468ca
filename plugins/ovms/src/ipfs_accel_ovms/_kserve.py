"""OVMS's tensor APIs: KServe v2 (``/v2/...``) and, for older releases, TF-Serving (``/v1/...``).

KServe v2 (kserve docs/predict-api/v2, OVMS model_server_rest_api_kfs.md):
``POST /v2/models/{m}[/versions/{v}]/infer`` with ``inputs`` tensors (``name``, ``shape``,
``datatype``, ``data``), answered with ``outputs``; ``GET /v2/health/live``,
``GET /v2/health/ready``, ``GET /v2/models/{m}[/versions/{v}]/ready`` (the status is the
answer: 200 ready, 4xx/503 not); ``GET /v2/models/{m}[/versions/{v}]`` (model metadata);
``GET /v2`` (server metadata). TF-Serving (model_server_rest_api_tfs.md, removed from OVMS
HEAD in 2026-07): ``POST /v1/models/{m}[/versions/{v}]:predict`` with ``instances`` (row
format, answered with ``predictions``) or ``inputs`` (columnar, answered with ``outputs``).

Answers are decoded by the core into the types below, so a field of the wrong type is a
``ResponseError`` naming it. What a call returns is what the server sent: ``infer`` an
:class:`InferResponse` (the output tensors as JSON objects, their ``data`` and any extra
fields untouched, with the answer's ``id``, ``model_name``, ``model_version`` and
``parameters``), the metadata objects whole.

The health routes answer by status alone (200 ready; 4xx, and OVMS's 503 while a model
loads, not ready): their not-ready answers are final, never retried (see ``_health``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec
from ipfs_accel import Call, ConfigurationError, Exchange, InvokeResult, Response, decode_json

__all__ = ["KSERVE_OPERATIONS", "InferResponse", "kserve_exchange"]

KSERVE_OPERATIONS = frozenset(
    {"infer", "live", "ready", "model_ready", "metadata", "server_metadata", "predict"}
)


def _model_path(call: Call, prefix: str, params: dict[str, Any]) -> str:
    if not call.model:
        raise ConfigurationError(
            f"ovms {call.operation} needs a model: pass model=, or set it on the endpoint"
        )
    path = f"{prefix}/models/{quote(call.model, safe='')}"
    version = params.pop("version", None)
    if version is not None:
        path += f"/versions/{quote(str(version), safe='')}"
    return path


class _OutputTensor(msgspec.Struct):
    """What identifies a KServe v2 output tensor (``response_output``); its ``data``, which
    may be large, is not decoded here but returned as sent."""

    name: str
    datatype: str
    shape: list[int]


class _InferAnswer(msgspec.Struct):
    """A KServe v2 ``inference_response``, as read: its tensors' identities are checked
    here, their data is not decoded twice."""

    outputs: list[_OutputTensor]
    model_name: str | None = None
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None


class InferResponse(msgspec.Struct, kw_only=True, frozen=True):
    """What ``invoke("infer")`` returns (its ``data``): a KServe v2 ``inference_response``.

    - ``outputs``: the output tensors as the server sent them (``name``, ``shape``,
      ``datatype``, ``data`` and any extra fields), in its order.
    - ``id``: the request's ``id`` as the server returns it (the call's request ID unless
      ``id=`` was given); ``None`` where the server sent none.
    - ``model_name``, ``model_version``: the model (and version) that answered;
      ``model_version`` is ``None`` where the server does not version models.
    - ``parameters``: the response's parameters, if any.
    """

    outputs: list[dict[str, Any]]
    model_name: str | None = None
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None


class _PredictAnswer(msgspec.Struct):
    """A TF-Serving answer: ``predictions`` (row format) or ``outputs`` (columnar), any JSON."""

    predictions: Any = msgspec.UNSET
    outputs: Any = msgspec.UNSET


_Object = dict[str, Any]
"""A metadata answer, returned whole: it only has to be a JSON object."""


def _infer_result(resp: Response) -> InvokeResult:
    # the typed decode checked every field read here and each tensor's name, datatype and
    # shape; the user gets the tensors as the server sent them, data and extra fields included
    answer: _InferAnswer = resp.data
    return InvokeResult(data=InferResponse(
        outputs=decode_json(resp.content)["outputs"], model_name=answer.model_name,
        model_version=answer.model_version, id=answer.id, parameters=answer.parameters,
    ))


def _predict_result(resp: Response) -> InvokeResult:
    data: _PredictAnswer = resp.data
    for value in (data.predictions, data.outputs):
        if value is not msgspec.UNSET:
            return InvokeResult(data=value)
    raise TypeError("the predict response has neither 'predictions' nor 'outputs'")


def _true(resp: Response) -> InvokeResult:
    return InvokeResult(data=True)  # a 2xx is the answer; not ready is an error (``_health``)


def _body(resp: Response) -> InvokeResult:
    data: _Object = resp.data
    return InvokeResult(data=data)


_SERVER_GETS = {
    "live": ("/v2/health/live", _true, None),
    "ready": ("/v2/health/ready", _true, None),
    "server_metadata": ("/v2", _body, _Object),
}


def kserve_exchange(call: Call, headers: Mapping[str, str]) -> Exchange:
    """The exchange of one KServe v2 or TF-Serving operation called through ``invoke``."""
    op = call.operation
    params = dict(call.params)
    if op in _SERVER_GETS:
        path, parse, answer = _SERVER_GETS[op]
        return Exchange(method="GET", path=path, headers=headers, parse=parse,
                        response_type=answer)
    if op == "model_ready":
        path = _model_path(call, "/v2", params) + "/ready"
        return Exchange(method="GET", path=path, headers=headers, parse=_true)
    if op == "metadata":
        return Exchange(method="GET", path=_model_path(call, "/v2", params), headers=headers,
                        parse=_body, response_type=_Object)
    if op == "infer":
        path = _model_path(call, "/v2", params) + "/infer"
        if not isinstance(params.get("inputs"), list):
            raise ConfigurationError("ovms infer needs inputs=[{name, shape, datatype, data}, ...]")
        # the request's own id comes back in the response: ours ties the two together
        params.setdefault("id", call.request_id)
        return Exchange(path=path, json=params, headers=headers, parse=_infer_result,
                        response_type=_InferAnswer)
    if op == "predict":
        path = _model_path(call, "/v1", params) + ":predict"
        if ("instances" in params) == ("inputs" in params):
            raise ConfigurationError("ovms predict needs exactly one of instances= or inputs=")
        return Exchange(path=path, json=params, headers=headers, parse=_predict_result,
                        response_type=_PredictAnswer)
    raise ConfigurationError(f"ovms has no tensor operation {op!r}")

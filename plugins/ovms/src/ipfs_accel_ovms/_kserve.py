"""OVMS's tensor APIs: KServe v2 (``/v2/...``) and, for older releases, TF-Serving (``/v1/...``).

KServe v2 (kserve docs/predict-api/v2, OVMS model_server_rest_api_kfs.md):
``POST /v2/models/{m}[/versions/{v}]/infer`` with ``inputs`` tensors (``name``, ``shape``,
``datatype``, ``data``), answered with ``outputs``; ``GET /v2/health/live``,
``GET /v2/health/ready``, ``GET /v2/models/{m}[/versions/{v}]/ready`` (the status is the
answer: 200 ready, 4xx/503 not); ``GET /v2/models/{m}[/versions/{v}]`` (model metadata);
``GET /v2`` (server metadata). TF-Serving (model_server_rest_api_tfs.md, removed from OVMS
HEAD in 2026-07): ``POST /v1/models/{m}[/versions/{v}]:predict`` with ``instances`` (row
format, answered with ``predictions``) or ``inputs`` (columnar, answered with ``outputs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ipfs_accel import Call, ConfigurationError, Exchange, InvokeResult, Response

__all__ = ["KSERVE_OPERATIONS", "kserve_exchange"]

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


def _object(resp: Response) -> Mapping[str, Any]:
    if not isinstance(resp.data, Mapping):
        raise TypeError("the body is not a JSON object")
    return resp.data


def _infer_result(resp: Response) -> InvokeResult:
    data = _object(resp)
    outputs = data.get("outputs")
    if not isinstance(outputs, list):
        raise TypeError("the inference response has no 'outputs' list")
    return InvokeResult(data=outputs)


def _predict_result(resp: Response) -> InvokeResult:
    data = _object(resp)
    for key in ("predictions", "outputs"):
        if key in data:
            return InvokeResult(data=data[key])
    raise TypeError("the predict response has neither 'predictions' nor 'outputs'")


def _true(resp: Response) -> InvokeResult:
    return InvokeResult(data=True)  # a 2xx is the answer; not ready comes back as an error


def _body(resp: Response) -> InvokeResult:
    return InvokeResult(data=dict(_object(resp)))


_SERVER_GETS = {
    "live": ("/v2/health/live", _true),
    "ready": ("/v2/health/ready", _true),
    "server_metadata": ("/v2", _body),
}


def kserve_exchange(call: Call, headers: Mapping[str, str]) -> Exchange:
    """The exchange of one KServe v2 or TF-Serving operation called through ``invoke``."""
    op = call.operation
    params = dict(call.params)
    if op in _SERVER_GETS:
        path, parse = _SERVER_GETS[op]
        return Exchange(method="GET", path=path, headers=headers, parse=parse)
    if op in ("model_ready", "metadata"):
        path = _model_path(call, "/v2", params) + ("/ready" if op == "model_ready" else "")
        return Exchange(method="GET", path=path, headers=headers,
                        parse=_true if op == "model_ready" else _body)
    if op == "infer":
        path = _model_path(call, "/v2", params) + "/infer"
        if not isinstance(params.get("inputs"), list):
            raise ConfigurationError("ovms infer needs inputs=[{name, shape, datatype, data}, ...]")
        # the request's own id comes back in the response: ours ties the two together
        params.setdefault("id", call.request_id)
        return Exchange(path=path, json=params, headers=headers, parse=_infer_result)
    if op == "predict":
        path = _model_path(call, "/v1", params) + ":predict"
        if ("instances" in params) == ("inputs" in params):
            raise ConfigurationError("ovms predict needs exactly one of instances= or inputs=")
        return Exchange(path=path, json=params, headers=headers, parse=_predict_result)
    raise ConfigurationError(f"ovms has no tensor operation {op!r}")

"""The llvm plugin as a package: entry point, public surface and its OpenAPI document."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import ipfs_accel_llvm
import pytest
from ipfs_accel import Call, EndpointConfig, EndpointSettings, Secret

PLUGIN_DIR = Path(__file__).resolve().parents[1]

# One call per operation, as the core would hand it to ``send``.
CALLS = {
    "generate": Call(operation="generate", model="default", prompt="hi", params={"max_tokens": 3}),
    "chat": Call(operation="chat", model="default", messages=[{"role": "user", "content": "hi"}]),
    "infer": Call(operation="infer", model="default", params={"input": {"a": 1}}),
    "batch_infer": Call(operation="batch_infer", model="default", params={"inputs": ["a"]}),
    "list_models": Call(operation="list_models", model="default"),
    "model_info": Call(operation="model_info", model="default"),
    "status": Call(operation="status", model="default"),
    "reload": Call(operation="reload", model="default"),
}


def _endpoint(key: str | None = None) -> EndpointConfig:
    return EndpointConfig(
        endpoint_id="e", base_url="http://llvm.test", api_key=Secret(key) if key else None,
        model="default", options=None, settings=EndpointSettings(),
    )


def _spec() -> dict[str, Any]:
    doc = json.loads(ipfs_accel_llvm.OPENAPI_PATH.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _route(doc: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    return None


def test_entry_point_is_declared() -> None:
    """pyproject.toml declares the distribution and the ipfs_accel.backends entry point."""
    data = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert project["name"] == "ipfs-accel-plugin-llvm"
    assert project["version"] == "0.1.0"
    assert project["requires-python"] == ">=3.11"
    assert "ipfs-accel-core>=0.1" in project["dependencies"]
    assert project["entry-points"]["ipfs_accel.backends"] == {"llvm": "ipfs_accel_llvm"}
    assert data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "src/ipfs_accel_llvm"
    ]


def test_public_surface() -> None:
    """__all__ is sorted and is exactly the hooks, the OpenAPI path and the chat renderer."""
    assert ipfs_accel_llvm.__all__ == sorted(ipfs_accel_llvm.__all__)
    assert set(ipfs_accel_llvm.__all__) == {
        "OPENAPI_PATH", "backend_info", "classify_error", "parse_usage", "render_chat", "send",
    }
    for name in ipfs_accel_llvm.__all__:
        assert getattr(ipfs_accel_llvm, name).__doc__ or name == "OPENAPI_PATH"


def test_openapi_path_is_inside_the_package() -> None:
    """OPENAPI_PATH points at openapi.json inside the package, so the wheel ships it."""
    path = ipfs_accel_llvm.OPENAPI_PATH
    assert path.is_file()
    assert path.name == "openapi.json"
    assert path.parent == Path(ipfs_accel_llvm.__file__).parent


def test_openapi_document_is_valid_json_openapi_3() -> None:
    """The document parses as JSON, is OpenAPI 3.0 and declares an optional Bearer scheme."""
    doc = _spec()
    assert doc["openapi"].startswith("3.0.")
    assert doc["info"]["title"] and doc["info"]["version"]
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {} in doc["security"]  # the key is optional
    assert {"bearerAuth": []} in doc["security"]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    text = json.dumps(doc)
    for ref in re.findall(r'"\$ref": "([^"]+)"', text):
        _resolve(doc, {"$ref": ref})  # every reference resolves


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_openapi_document_has_every_route_the_plugin_calls(operation: str) -> None:
    """Each operation's request matches a route, with the body's required fields present."""
    assert set(CALLS) == ipfs_accel_llvm.backend_info().operations
    doc = _spec()
    exchange = ipfs_accel_llvm.send(CALLS[operation], _endpoint("k"))
    route = _route(doc, exchange.method, exchange.path)
    assert route is not None, f"{exchange.method} {exchange.path} is not in the document"
    assert route["operationId"]
    assert "200" in route["responses"]
    for status in ("400", "401", "404", "429", "500", "503"):
        response = _resolve(doc, route["responses"][status])
        schema = response["content"]["application/json"]["schema"]
        assert _resolve(doc, schema)["required"] == ["error"]
    for status in ("429", "503"):
        assert "Retry-After" in _resolve(doc, route["responses"][status])["headers"]
    header_names = {_resolve(doc, p)["name"] for p in route["parameters"]}
    assert "X-Request-ID" in header_names
    if exchange.json is None:
        assert "requestBody" not in route
    else:
        schema = _resolve(doc, route["requestBody"]["content"]["application/json"]["schema"])
        assert set(schema["required"]) <= set(exchange.json)
        assert set(exchange.json) <= set(schema["properties"])

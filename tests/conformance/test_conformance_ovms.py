"""Conformance of the ovms plugin against the KServe v2 and OpenAI specs (Steady mock server).

Every operation with a spec goes through the real ``Registry(plugins=[ipfs_accel_ovms])``
backend and real HTTP to a mock that validates each request: the KServe v2 tensor API
against ``ovms/rest_predict_v2.yaml`` (with the harness's path fix-up), the ``/v3``
OpenAI-compatible API against ``openai/openapi.transformed.yml`` mounted under ``/v3``.
A request the spec rejects fails the test; the mock's answers must parse.

Not covered here, for want of a spec: ``rerank`` (Cohere-style ``/v3/rerank``, not in the
OpenAI spec) and the TF-Serving ``predict`` (prose docs only); the unit tests cover both.
The mock's SSE streams have no ``data: [DONE]``, so stream tests check that the request is
accepted and that the plugin reports the missing terminal event as
``StreamInterruptedError``. The embed test narrows the OpenAI spec
(``embeddings_in_order``) to the answer a server gives its two inputs, two rows indexed 0
and 1: from the schema alone the mock sends one row with an index drawn from 0..100.
Skipped when a spec or the mock binary is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from ipfs_accel.testing import import_or_skip

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _conformance import (  # noqa: E402
    FAST_STREAM,
    assert_all_accepted,
    drain_interrupted,
    embeddings_in_order,
    make_backend,
)
from mockserver import (  # noqa: E402
    MockPool,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_ovms = import_or_skip("ipfs_accel_ovms")

from ipfs_accel import Backend  # noqa: E402

pytestmark = pytest.mark.conformance

KSERVE = "ovms/rest_predict_v2.yaml"
OPENAI = "openai/openapi.transformed.yml"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is OpenVINO?"},
]
TENSOR = {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]}


def _backend(pool: MockPool, seen: list[httpx2.Response], spec: str, *, prefix: str = "",
             **settings: Any) -> tuple[Backend, str]:
    return make_backend(ipfs_accel_ovms, "ovms", pool.get(spec, prefix=prefix).root_url, seen,
                        headers=FAST_STREAM, **settings)


# -- KServe v2 ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "1"])
def test_infer_conforms(mock_pool: MockPool, version: str | None) -> None:  # noqa: F811
    """infer (with and without a version) is accepted; the generated outputs parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, KSERVE)
    extra = {} if version is None else {"version": version}
    result = backend.invoke("infer", model="mymodel", endpoint_id=eid, inputs=[TENSOR],
                            outputs=[{"name": "output0"}], parameters={"priority": 1}, **extra)
    path = "/v2/models/{MODEL_NAME}" + ("" if version is None else "/versions/{MODEL_VERSION}")
    assert_all_accepted(seen, path + "/infer")
    assert isinstance(result.data, list)


@pytest.mark.parametrize(
    ("operation", "params", "path"),
    [
        ("ready", {}, "/v2/health/ready"),
        ("live", {}, "/v2/health/live"),
        ("server_metadata", {}, "/v2"),
        ("model_ready", {"model": "resnet"}, "/v2/models/{MODEL_NAME}/ready"),
        ("model_ready", {"model": "resnet", "version": 1},
         "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/ready"),
        ("metadata", {"model": "resnet"}, "/v2/models/{MODEL_NAME}"),
        ("metadata", {"model": "resnet", "version": "2"},
         "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}"),
    ],
)
def test_kserve_gets_conform(mock_pool: MockPool, operation: str,  # noqa: F811
                             params: dict[str, Any], path: str) -> None:
    """Health and metadata GETs hit the spec's routes; the answers parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, KSERVE)
    result = backend.invoke(operation, endpoint_id=eid, **params)
    assert_all_accepted(seen)
    assert seen[0].headers.get("x-steady-matched-path") in (path, path + "/")
    assert result.data is not None


# -- /v3 OpenAI-compatible --------------------------------------------------------------


def test_chat_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/v3/chat/completions with the common params is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    result = backend.chat(MESSAGES, model="llama3", endpoint_id=eid, max_tokens=64,
                          temperature=0.2, top_p=0.9, stop=["\n"])
    assert_all_accepted(seen, "/v3/chat/completions")
    assert isinstance(result.text, str)


def test_generate_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/v3/completions is accepted; the answer parses."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    result = backend.generate("The sky is", model="llama3", endpoint_id=eid, max_tokens=8)
    assert_all_accepted(seen, "/v3/completions")
    assert isinstance(result.text, str)


def test_embed_conforms(mock_pool: MockPool) -> None:  # noqa: F811
    """/v3/embeddings is accepted; one row per input parses in order."""
    seen: list[httpx2.Response] = []
    mock = mock_pool.get(OPENAI, prefix="/v3", transform=embeddings_in_order("/embeddings", 2))
    backend, eid = make_backend(ipfs_accel_ovms, "ovms", mock.root_url, seen)
    result = backend.embed(["a", "b"], model="gte", endpoint_id=eid)
    assert_all_accepted(seen, "/v3/embeddings")
    assert result.vectors == [row["embedding"] for row in seen[0].json()["data"]]


@pytest.mark.parametrize("operation", ["stream_chat", "stream_generate"])
def test_streams_conform(mock_pool: MockPool, operation: str) -> None:  # noqa: F811
    """Stream requests (with include_usage) are accepted; no [DONE] -> interrupted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(mock_pool, seen, OPENAI, prefix="/v3")
    if operation == "stream_chat":
        stream = backend.stream_chat(MESSAGES, model="llama3", endpoint_id=eid, max_tokens=8)
    else:
        stream = backend.stream_generate("Hi", model="llama3", endpoint_id=eid, max_tokens=8)
    drain_interrupted(stream)
    assert_all_accepted(seen)

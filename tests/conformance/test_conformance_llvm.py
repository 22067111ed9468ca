"""Conformance of the llvm plugin against its own OpenAPI document (Steady mock server).

The llvm contract has no public spec: the plugin ships one (``ipfs_accel_llvm.OPENAPI_PATH``),
so this module needs nothing from ``../shared`` and skips only when the plugin or the mock
binary (``npm ci``) is missing. Every operation goes through the real
``Registry(plugins=[ipfs_accel_llvm])`` backend over real HTTP to a mock that validates each
request against the document; a recording transport keeps the responses so the mock's
verdict headers are checked (no rejection, no diagnostic). The answers must parse twice:
as the document's examples, and as bodies generated from its schemas (examples removed).

The contract is text in, text out: a chat or generate call with tools, a tool turn, a
``response_format`` or ``image_url`` parts is refused by the plugin before sending, with a
``ConfigurationError`` naming what is missing, and no request reaches the mock; a plain chat
then goes through on the same endpoint.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from ipfs_accel.testing import import_or_skip

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _conformance import assert_all_accepted, make_backend  # noqa: E402
from mockserver import (  # noqa: E402
    MockPool,
    MockServer,
    assert_rejected,
    mock_pool,  # noqa: F401  (registers the session fixture)
)

ipfs_accel_llvm = import_or_skip("ipfs_accel_llvm")

from ipfs_accel import Backend, ConfigurationError, ErrorKind, Failure  # noqa: E402
from ipfs_accel._wire import decode_json  # noqa: E402
from ipfs_accel.testing import TOOL  # noqa: E402

pytestmark = pytest.mark.conformance


def _without_examples(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every example removed, so the mock generates answers from schemas."""
    doc = copy.deepcopy(doc)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("example", None)
            node.pop("examples", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(doc)
    return doc


VARIANTS = {"examples": None, "generated": _without_examples}


def _mock(mock_pool: MockPool, variant: str) -> MockServer:  # noqa: F811
    return mock_pool.get(ipfs_accel_llvm.OPENAPI_PATH, transform=VARIANTS[variant])


def _backend(
    mock: MockServer, seen: list[httpx2.Response], **settings: Any
) -> tuple[Backend, str]:
    return make_backend(ipfs_accel_llvm, "llvm", mock.base_url, seen, **settings)


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    """Run each test against the document's examples and against schema-generated answers."""
    return str(request.param)


def test_generate_conforms(mock_pool: MockPool, variant: str) -> None:  # noqa: F811
    """generate with every common param and an extra one, with a Bearer key."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, variant), seen, api_key="llvm-conformance")
    out = backend.generate(
        "int main() {", endpoint_id=eid, max_tokens=16, temperature=0.2, top_p=0.9,
        stop=["}"], seed=7,
    )
    assert_all_accepted(seen, "/models/{model_id}/infer")
    assert isinstance(out.text, str)
    assert out.raw == seen[0].json()  # the typed decode skips fields; raw keeps them
    if variant == "examples":
        assert out.text == "Hello from LLVM"
        assert out.usage.total_tokens == 9


def test_generate_conforms_without_key_and_with_a_named_model(
    mock_pool: MockPool, variant: str  # noqa: F811
) -> None:
    """generate with no key, a model id that needs percent-encoding and a string stop."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, variant), seen)
    out = backend.generate("hi", model="org/jit 1", endpoint_id=eid, stop="\n")
    assert_all_accepted(seen, "/models/{model_id}/infer")
    assert isinstance(out.text, str)


def test_chat_conforms(mock_pool: MockPool, variant: str) -> None:  # noqa: F811
    """chat: messages rendered into one prompt, text parts included."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, variant), seen)
    out = backend.chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Compile"}, "this"]},
        ],
        endpoint_id=eid, max_tokens=8,
    )
    assert_all_accepted(seen, "/models/{model_id}/infer")
    assert isinstance(out.text, str)


@pytest.mark.parametrize("value", ["text", {"code": "int main(){}", "lang": "c"}, [1, 2], 3.5])
def test_infer_conforms(mock_pool: MockPool, variant: str, value: Any) -> None:  # noqa: F811
    """infer with inputs of every JSON type, plus parameters."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, variant), seen)
    out = backend.invoke("infer", endpoint_id=eid, input=value, parameters={"opt_level": "O2"})
    assert_all_accepted(seen, "/models/{model_id}/infer")
    assert isinstance(out.data, dict)
    assert "result" in out.data


def test_batch_infer_conforms(mock_pool: MockPool, variant: str) -> None:  # noqa: F811
    """batch_infer returns the results list."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, variant), seen)
    out = backend.invoke("batch_infer", endpoint_id=eid, inputs=["a", "b"], max_tokens=4)
    assert_all_accepted(seen, "/models/{model_id}/batch_infer")
    assert isinstance(out.data, list)


@pytest.mark.parametrize(
    ("operation", "matched"),
    [
        ("list_models", "/models"),
        ("model_info", "/models/{model_id}"),
        ("status", "/status"),
        ("reload", "/models/{model_id}/reload"),
    ],
)
def test_bodyless_operations_conform(
    mock_pool: MockPool, variant: str, operation: str, matched: str  # noqa: F811
) -> None:
    """list_models, model_info, status and reload are accepted and their answers parse."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, variant), seen, api_key="k")
    out = backend.invoke(operation, endpoint_id=eid)
    assert_all_accepted(seen, matched)
    assert isinstance(out.data, dict)


@pytest.mark.asyncio
async def test_async_operations_conform(mock_pool: MockPool) -> None:  # noqa: F811
    """The async forms send the same accepted requests."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, "examples"), seen)
    out = await backend.agenerate("hi", endpoint_id=eid)
    assert out.text == "Hello from LLVM"
    chat = await backend.achat([{"role": "user", "content": "hi"}], endpoint_id=eid)
    assert chat.text == "Hello from LLVM"
    batch = await backend.ainvoke("batch_infer", endpoint_id=eid, inputs=["x"])
    assert batch.data == ["first answer", "second answer"]
    assert len(seen) == 3
    assert_all_accepted(seen)
    await backend.aclose()


def test_mock_rejects_a_request_outside_the_document(mock_pool: MockPool) -> None:  # noqa: F811
    """The mock does validate (an infer body without input is refused), and the plugin reads
    its {"error": ...} refusal as a bad request that is not retried."""
    mock = _mock(mock_pool, "examples")
    response = httpx2.post(mock.url("/models/default/infer"), json={"parameters": {}})
    assert_rejected(response)
    failure = Failure(
        operation="infer", status=response.status_code, headers=response.headers,
        content=response.content, data=decode_json(response.content),
    )
    c = ipfs_accel_llvm.classify_error(failure)
    assert c.kind is ErrorKind.BAD_REQUEST
    assert c.retryable is False
    assert c.message == "Validation failed"


_USER = [{"role": "user", "content": "What is the weather in Paris?"}]
_TOOL_TURN = [*_USER, {"role": "assistant", "content": None, "tool_calls": [{
    "id": "call_1", "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}]
_IMAGE = [{"role": "user", "content": [
    {"type": "text", "text": "What is this?"},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]
_SCHEMA = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}


@pytest.mark.parametrize(("messages", "params", "feature"), [
    (_USER, {"tools": [TOOL]}, "tools"),
    (_TOOL_TURN, {}, "tools"),
    (_USER, {"response_format": _SCHEMA}, "json_schema"),
    (_USER, {"response_format": {"type": "json_object"}}, "json_object"),
    (_IMAGE, {}, "images"),
], ids=["tools", "tool-result", "json_schema", "json_object", "images"])
def test_what_the_contract_lacks_is_refused_unsent(
    mock_pool: MockPool, messages: list[dict[str, Any]],  # noqa: F811
    params: dict[str, Any], feature: str,
) -> None:
    """Tools, tool results, response formats and images never reach the server: each is a
    ConfigurationError naming the feature; a plain chat is then accepted."""
    seen: list[httpx2.Response] = []
    backend, eid = _backend(_mock(mock_pool, "examples"), seen)
    with pytest.raises(ConfigurationError, match=rf"\b{feature}\b"):
        backend.chat(messages, endpoint_id=eid, **params)
    if feature != "images" and messages is _USER:
        with pytest.raises(ConfigurationError, match=rf"\b{feature}\b"):
            backend.generate("Weather?", endpoint_id=eid, **params)
    assert seen == []
    assert backend.chat(_USER, endpoint_id=eid).text == "Hello from LLVM"
    assert_all_accepted(seen, "/models/{model_id}/infer")

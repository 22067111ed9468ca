"""The llvm contract is text in, text out: tools, response formats and images are refused
before anything is sent, each naming what it lacks; plain results still pass the core's
typed checks and give an assistant message to append."""

from __future__ import annotations

from typing import Any

import httpx2
import ipfs_accel_llvm
import pytest
from ipfs_accel import ChatResult, ConfigurationError
from ipfs_accel.testing import FAST_RETRIES, TOOL, Recorder, mock_backend

HI = [{"role": "user", "content": "What is the weather in Paris?"}]
ANSWER = {"result": "Hello from LLVM", "model": "default", "finish_reason": "stop",
          "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}
SCHEMA = {"type": "json_schema", "json_schema": {
    "name": "weather", "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}}
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
CALLED = {"role": "assistant", "content": None, "tool_calls": [{
    "id": "call_1", "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
TOOL_TURN = [*HI, CALLED, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]


def _image(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def _backend() -> tuple[Recorder, Any, str]:
    rec = Recorder(httpx2.Response(200, json=ANSWER))
    backend = mock_backend(ipfs_accel_llvm, rec)
    return rec, backend, backend.create_endpoint(**FAST_RETRIES, base_url="http://llvm.test")


def test_features_declared_empty() -> None:
    """chat and generate are declared, and take none of tools, formats or images."""
    features = ipfs_accel_llvm.backend_info().features
    assert features == {"chat": frozenset(), "generate": frozenset()}


@pytest.mark.parametrize(("messages", "params", "feature"), [
    (HI, {"tools": [TOOL]}, "tools"),
    (HI, {"tool_choice": "auto"}, "tools"),
    (TOOL_TURN, {}, "tools"),
    (HI, {"response_format": SCHEMA}, "json_schema"),
    (HI, {"response_format": {"type": "json_object"}}, "json_object"),
    (_image("https://example.com/cat.jpg"), {}, "images"),
    (_image(PIXEL), {}, "images"),
], ids=["tools", "tool_choice", "tool-result", "json_schema", "json_object", "https-image",
        "data-image"])
def test_chat_refuses_before_sending(messages: list[dict[str, Any]], params: dict[str, Any],
                                     feature: str) -> None:
    """A chat needing what the contract lacks is a ConfigurationError naming it, unsent
    (tools and formats used to travel in ``parameters``, a tool turn as plain text)."""
    rec, backend, eid = _backend()
    with pytest.raises(ConfigurationError, match=rf"\b{feature}\b") as info:
        backend.chat(messages, endpoint_id=eid, **params)
    assert "llvm" in str(info.value) and "'chat'" in str(info.value)
    assert rec.requests == []


@pytest.mark.parametrize(("params", "feature"), [
    ({"tools": [TOOL]}, "tools"),
    ({"response_format": SCHEMA}, "json_schema"),
    ({"response_format": {"type": "json_object"}}, "json_object"),
])
def test_generate_refuses_before_sending(params: dict[str, Any], feature: str) -> None:
    """generate refuses them the same way."""
    rec, backend, eid = _backend()
    with pytest.raises(ConfigurationError, match=rf"\b{feature}\b.*'generate'"):
        backend.generate("Weather?", endpoint_id=eid, **params)
    assert rec.requests == []


@pytest.mark.asyncio
async def test_async_chat_refuses_before_sending() -> None:
    """achat refuses tools before sending, as chat does."""
    rec, backend, eid = _backend()
    with pytest.raises(ConfigurationError, match=r"\btools\b"):
        await backend.achat(HI, endpoint_id=eid, tools=[TOOL])
    assert rec.requests == []
    await backend.aclose()


def test_text_format_and_plain_results_pass() -> None:
    """response_format text needs nothing; the result is typed, without tool calls, and its
    message is the plain assistant turn."""
    rec, backend, eid = _backend()
    result = backend.chat(HI, endpoint_id=eid, response_format={"type": "text"})
    assert isinstance(result, ChatResult)
    assert result.tool_calls is None and result.finish_reason == "stop"
    assert result.message == {"role": "assistant", "content": "Hello from LLVM"}
    assert rec.body()["parameters"] == {"response_format": {"type": "text"}}

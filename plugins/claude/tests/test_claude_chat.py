"""The claude plugin's unary operations: requests as the spec says, results read back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx2
import ipfs_accel_claude
import pytest
from _claude_fixtures import KEY, json_response, make_backend, message, usage
from ipfs_accel import (
    ConfigurationError,
    Registry,
    ResponseError,
    ToolCall,
    UnsupportedOperationError,
)
from ipfs_accel.testing import Recorder

HI = [{"role": "user", "content": "Hello, world"}]


def test_entry_point_declared() -> None:
    """pyproject.toml declares the claude entry point on ipfs_accel_claude."""
    data = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert data["project"]["name"] == "ipfs-accel-plugin-claude"
    assert data["project"]["entry-points"]["ipfs_accel.backends"] == {"claude": "ipfs_accel_claude"}


def test_public_surface() -> None:
    """The package exports exactly the hooks, the options type and the documented constants."""
    # the order of __all__ is ruff's (RUF022: constants, classes, functions), checked by ruff
    assert set(ipfs_accel_claude.__all__) == {
        "API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "DEFAULT_MAX_TOKENS",
        "DEFAULT_MODEL", "ClaudeOptions", "backend_info", "batch_exchange", "batch_result",
        "classify_error", "parse_rate_limits", "parse_usage", "send",
    }


def test_backend_info() -> None:
    """The backend declares its URL, env vars, key requirement, model and operations."""
    info = ipfs_accel_claude.backend_info()
    assert info.name == "claude"
    assert info.default_base_url == "https://api.anthropic.com"
    assert info.api_key_env == ("ANTHROPIC_API_KEY",)
    assert info.base_url_env == ("ANTHROPIC_BASE_URL",)
    assert info.api_key_required
    assert info.default_model == "claude-sonnet-4-6"
    assert info.operations == {"chat", "generate", "stream_chat", "stream_generate"}
    assert info.server_request_id_headers == ("request-id",)


def test_chat_request_and_result() -> None:
    """chat posts /v1/messages with the key, version and request id; reads text and usage."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    result = backend.chat(HI, endpoint_id=eid, request_id="rid-1")
    req = rec.requests[0]
    assert req.method == "POST"
    assert req.url == "https://api.anthropic.com/v1/messages"
    assert req.headers["x-api-key"] == KEY
    assert "authorization" not in req.headers
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-request-id"] == "rid-1"
    assert rec.body() == {"model": "claude-sonnet-4-6", "messages": HI, "max_tokens": 1024}
    assert result.text == "Hi! My name is Claude."
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "end_turn")
    assert result.model == "claude-sonnet-4-6"
    assert result.usage.input_tokens == 12
    assert result.usage.output_tokens == 7
    assert result.usage.total_tokens == 19
    assert result.request_id == "rid-1"
    assert result.server_request_id == "req_server_1"
    assert result.raw["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    stats = backend.get_stats()
    assert (stats.successful_requests, stats.input_tokens, stats.output_tokens) == (1, 12, 7)


@pytest.mark.asyncio
async def test_achat() -> None:
    """achat sends the same request on the event loop and reads the same result."""
    rec = Recorder(json_response(200, message("async hi")))
    backend, eid = make_backend(rec)
    result = await backend.achat(HI, endpoint_id=eid, request_id="rid-a")
    assert result.text == "async hi"
    assert rec.requests[0].headers["x-request-id"] == "rid-a"
    assert rec.body()["messages"] == HI
    await backend.aclose()


def test_generate_is_one_user_turn() -> None:
    """generate sends the prompt as a single user message."""
    rec = Recorder(json_response(200, message("4")))
    backend, eid = make_backend(rec)
    result = backend.generate("2+2=", endpoint_id=eid, model="claude-haiku-4-5")
    assert rec.body() == {
        "model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "2+2="}],
        "max_tokens": 1024,
    }
    assert result.text == "4"
    assert result.server_request_id == "req_server_1"


@pytest.mark.asyncio
async def test_agenerate() -> None:
    """agenerate sends one user turn too."""
    rec = Recorder(json_response(200, message("ok")))
    backend, eid = make_backend(rec)
    assert (await backend.agenerate("p", endpoint_id=eid)).text == "ok"
    assert rec.body()["messages"] == [{"role": "user", "content": "p"}]
    await backend.aclose()


def test_system_messages_joined_into_system_field() -> None:
    """System and developer messages leave messages[] and are joined into system."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "developer", "content": "Answer in French."},
    ], endpoint_id=eid)
    body = rec.body()
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_system_param_and_block_system() -> None:
    """A system= param comes first; block contents give a list of text blocks."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    cached = {"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}}
    backend.chat([{"role": "system", "content": [cached]}, *HI], endpoint_id=eid,
                 system="Rules.")
    assert rec.body()["system"] == [{"type": "text", "text": "Rules."}, cached]


def test_consecutive_roles_merged_into_turns() -> None:
    """Consecutive messages of one role become one turn with content blocks."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat([
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "four"},
    ], endpoint_id=eid)
    assert rec.body()["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"},
                                     {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "three"}]},
        {"role": "user", "content": "four"},
    ]


def test_tool_calls_and_results_translated() -> None:
    """OpenAI tool_calls become tool_use blocks and tool messages tool_result blocks."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
    ], endpoint_id=eid)
    assert rec.body()["messages"] == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ]


def test_image_url_parts_become_image_blocks() -> None:
    """image_url parts become url or base64 image blocks."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}], endpoint_id=eid)
    assert rec.body()["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
    ]


def test_common_params_mapped_and_others_passed() -> None:
    """max_tokens/temperature/top_p keep their names, stop becomes stop_sequences."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    backend.chat(HI, endpoint_id=eid, max_tokens=50, temperature=0.2, top_p=0.9,
                 stop="###", top_k=5, metadata={"user_id": "u1"})
    body = rec.body()
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["###"]
    assert "stop" not in body
    assert body["top_k"] == 5
    assert body["metadata"] == {"user_id": "u1"}
    backend.chat(HI, endpoint_id=eid, stop=["a", "b"])
    assert rec.body()["stop_sequences"] == ["a", "b"]


def test_stream_param_cannot_override_operation() -> None:
    """A stream= keyword is dropped: chat is always a JSON request, so the parser fits."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    assert backend.chat(HI, endpoint_id=eid, stream=True).text == "Hi! My name is Claude."
    assert "stream" not in rec.body()


def test_default_max_tokens_option() -> None:
    """default_max_tokens replaces 1024 when the call gives no max_tokens."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec, default_max_tokens=256)
    backend.chat(HI, endpoint_id=eid)
    assert rec.body()["max_tokens"] == 256


def test_tool_use_blocks_in_result() -> None:
    """tool_use blocks of the answer come back as typed ToolCalls; text blocks are joined."""
    content = [
        {"citations": None, "text": "Let me check.", "type": "text"},
        {"id": "toolu_01", "input": {"city": "Paris"}, "name": "get_weather",
         "type": "tool_use", "caller": None},
    ]
    rec = Recorder(json_response(200, message(content=content, stop_reason="tool_use")))
    backend, eid = make_backend(rec)
    result = backend.chat(HI, endpoint_id=eid)
    assert result.text == "Let me check."
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "tool_use")
    assert result.tool_calls is not None
    [call] = result.tool_calls
    assert isinstance(call, ToolCall)
    assert (call.id, call.name, call.arguments) == ("toolu_01", "get_weather", {"city": "Paris"})
    assert call.raw == content[1]


def test_cache_tokens_in_usage() -> None:
    """Cache creation/read tokens are reported and counted as part of the input."""
    use = usage(10, 5, cache_write=100, cache_read=200)
    rec = Recorder(json_response(200, message(use=use)))
    backend, eid = make_backend(rec)
    u = backend.chat(HI, endpoint_id=eid).usage
    assert (u.cache_write_tokens, u.cache_read_tokens) == (100, 200)
    assert u.input_tokens == 310
    assert u.output_tokens == 5
    assert u.total_tokens == 315


def test_version_and_beta_options() -> None:
    """anthropic_version and anthropic_beta set their headers per endpoint."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec, anthropic_version="2024-01-01",
                                anthropic_beta=["files-api-2025-04-14", "x-2"])
    backend.chat(HI, endpoint_id=eid)
    assert rec.requests[0].headers["anthropic-version"] == "2024-01-01"
    assert rec.requests[0].headers["anthropic-beta"] == "files-api-2025-04-14,x-2"


def test_bearer_auth_option() -> None:
    """auth='bearer' sends Authorization: Bearer and no x-api-key."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec, auth="bearer")
    backend.chat(HI, endpoint_id=eid)
    headers = rec.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in headers


def test_invalid_options_rejected() -> None:
    """An unknown auth mode or a non-positive default_max_tokens is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        make_backend(Recorder(), auth="basic")
    with pytest.raises(ConfigurationError):
        make_backend(Recorder(), default_max_tokens=0)


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints with two keys: each request carries its own key only."""
    rec = Recorder(json_response(200, message()))
    backend, e1 = make_backend(rec)
    e2 = backend.create_endpoint(api_key="sk-ant-second", base_url="https://proxy.example/")
    backend.chat(HI, endpoint_id=e1)
    backend.chat(HI, endpoint_id=e2)
    first, second = rec.requests
    assert first.headers["x-api-key"] == KEY
    assert second.headers["x-api-key"] == "sk-ant-second"
    assert second.url == "https://proxy.example/v1/messages"
    assert "sk-ant-second" not in str(first.headers) + first.content.decode()
    assert KEY not in str(second.headers) + second.content.decode()


def test_env_vars_give_key_and_base_url() -> None:
    """ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL are read when not given."""
    rec = Recorder(json_response(200, message()))
    registry = Registry(plugins=[ipfs_accel_claude], entry_points=False,
                        transport=httpx2.MockTransport(rec),
                        environ={"ANTHROPIC_API_KEY": "sk-env",
                                 "ANTHROPIC_BASE_URL": "http://gw.local:8080"})
    backend = registry.get("claude")
    backend.chat(HI)
    assert rec.requests[0].headers["x-api-key"] == "sk-env"
    assert str(rec.requests[0].url) == "http://gw.local:8080/v1/messages"


def test_key_required() -> None:
    """Without api_key= or ANTHROPIC_API_KEY, creating an endpoint names the env var."""
    registry = Registry(plugins=[ipfs_accel_claude], entry_points=False,
                        transport=httpx2.MockTransport(Recorder()), environ={})
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        registry.get("claude").create_endpoint()


def test_embed_unsupported() -> None:
    """embed is not offered: UnsupportedOperationError before anything is sent."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    with pytest.raises(UnsupportedOperationError, match="embed"):
        backend.embed("text", endpoint_id=eid)
    assert rec.requests == []


def test_bad_messages_rejected_before_sending() -> None:
    """An unknown role or only system messages is a ConfigurationError, nothing sent."""
    rec = Recorder(json_response(200, message()))
    backend, eid = make_backend(rec)
    with pytest.raises(ConfigurationError, match="role"):
        backend.chat([{"role": "wizard", "content": "x"}], endpoint_id=eid)
    with pytest.raises(ConfigurationError, match="user or assistant"):
        backend.chat([{"role": "system", "content": "x"}], endpoint_id=eid)
    assert rec.requests == []


def test_unreadable_body_is_response_error() -> None:
    """A 200 whose body is not a Message raises ResponseError, not a bare exception."""
    rec = Recorder(httpx2.Response(200, content=b"<html>gateway</html>"))
    backend, eid = make_backend(rec)
    with pytest.raises(ResponseError):
        backend.chat(HI, endpoint_id=eid)

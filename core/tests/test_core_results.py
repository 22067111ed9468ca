"""What every result promises whatever the plugin: one finish_reason vocabulary with the
API's own value beside it, the model the user named sent as given (a default per operation
otherwise), and one rule for which server request ID a result carries."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from ipfs_accel import (
    FINISH_REASONS,
    BackendInfo,
    Call,
    ChatResult,
    EmbedResult,
    EndpointConfig,
    Event,
    Exchange,
    Registry,
    Response,
    StreamChunk,
    default_classification,
    hookimpl,
    normalize_finish_reason,
)

TABLE = {"end_turn": "stop", "MAX_TOKENS": "length", "tool_use": "tool_calls"}


@pytest.mark.parametrize(("native", "expected"), [
    ("end_turn", "stop"), ("END_TURN", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("stop", "stop"), ("content_filter", "content_filter"),
    ("something_new", "other"), (None, None),
])
def test_normalize_finish_reason(native, expected):
    """A table maps an API's values (any case); vocabulary values pass; others are "other"."""
    assert normalize_finish_reason(native, TABLE) == expected
    assert expected is None or expected in FINISH_REASONS


class Plugin:
    """A plugin whose answers say what the test asks: a native finish reason, a body ID."""

    def __init__(self) -> None:
        self.sent: list[Call] = []

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="plain", default_base_url="http://plain.test",
                           default_model="chat-1", default_models={"embed": "embed-1"},
                           operations=frozenset({"chat", "embed", "stream_chat", "legacy"}))

    @hookimpl
    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        self.sent.append(call)
        if call.operation == "embed":
            return Exchange(path="/e", json={}, parse=lambda r: EmbedResult(
                vectors=[[0.5] for _ in call.inputs or []]))
        if call.operation == "legacy":  # an invoke operation answered the old way
            return Exchange(path="/l", json={}, parse=lambda r: ChatResult(text="old"))
        if call.operation == "stream_chat":
            return Exchange(path="/s", json={}, stream="sse", parse_event=_event)
        return Exchange(path="/c", json={}, parse=_chat)

    @hookimpl
    def parse_usage(self, operation: str, data: Any) -> None:
        return None

    @hookimpl
    def classify_error(self, failure: Any) -> Any:
        return default_classification(failure)


def _chat(resp: Response) -> ChatResult:
    return ChatResult(text="t", finish_reason=resp.data["reason"], server_request_id="body-1")


def _event(event: Event) -> StreamChunk | None:
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    return StreamChunk(delta="d", finish_reason=event.json.get("reason"))


def backend(handler) -> tuple[Any, Plugin]:
    plugin = Plugin()
    registry = Registry(plugins=[plugin], entry_points=False,
                        transport=httpx2.MockTransport(handler))
    return registry.get("plain"), plugin


def test_a_reason_outside_the_vocabulary_becomes_other_with_the_native_kept():
    """The core holds the promise for any plugin, unary and stream alike."""
    b, _ = backend(lambda r: httpx2.Response(200, json={"reason": "end_turn"}))
    r = b.chat([{"role": "user", "content": "x"}])
    assert (r.finish_reason, r.native_finish_reason) == ("other", "end_turn")
    body = b'data: {"reason": "SAFETY"}\n\ndata: [DONE]\n\n'
    b, _ = backend(lambda r: httpx2.Response(200, content=body,
                                             headers={"content-type": "text/event-stream"}))
    chunks = list(b.stream_chat([{"role": "user", "content": "x"}]))
    assert (chunks[0].finish_reason, chunks[0].native_finish_reason) == ("other", "SAFETY")
    assert (chunks[-1].finish_reason, chunks[-1].native_finish_reason) == ("other", "SAFETY")


def test_the_model_named_is_sent_as_given_and_a_default_per_operation_otherwise():
    """No model: the operation's default; an endpoint or call model: that one, named."""
    b, plugin = backend(lambda r: httpx2.Response(200, json={"reason": "stop"}))
    b.embed("a")
    b.chat([{"role": "user", "content": "x"}])
    b.embed("a", model="mine")
    eid = b.create_endpoint("pinned", model="pinned-1")
    b.embed("a", endpoint_id=eid)
    got = [(c.operation, c.model, c.model_named) for c in plugin.sent]
    assert got == [("embed", "embed-1", False), ("chat", "chat-1", False),
                   ("embed", "mine", True), ("embed", "pinned-1", True)]


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-request-id": "hdr-1"}, "hdr-1"), ({}, "body-1"),
])
def test_the_server_id_header_wins_over_a_body_id(headers, expected):
    """One rule for unary calls and streams: the header's ID, else the body's."""
    b, _ = backend(lambda r: httpx2.Response(200, json={"reason": "stop"}, headers=headers))
    assert b.chat([{"role": "user", "content": "x"}]).server_request_id == expected


def test_an_invoke_answered_with_a_chat_result_still_works_with_a_deprecation_warning():
    """The plugin API changes only after a warning: invoke must return InvokeResult."""
    b, _ = backend(lambda r: httpx2.Response(200, json={}))
    with pytest.warns(DeprecationWarning, match="return InvokeResult"):
        result = b.invoke("legacy")
    assert isinstance(result, ChatResult) and result.text == "old"

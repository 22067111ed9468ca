"""hf_tgi: finish_reason in the core's vocabulary on every route, TGI's own value beside it;
the model defaults only where TGI takes one, and a named model is sent as given."""

from __future__ import annotations

import copy

import httpx2
import ipfs_accel_hf_tgi
import pytest
from _hf_tgi_fixtures import CHAT, GENERATE, STREAM, Server, backend, chat_chunk, sse
from ipfs_accel import FINISH_REASONS
from ipfs_accel_hf_tgi._generate import FINISH_REASON_TABLE

# Every value of TGI's FinishReason (the spec's enum), what it means, and one it does not know.
FINISHES = [("length", "length"), ("eos_token", "stop"), ("stop_sequence", "stop"),
            ("Length", "length"), ("something_new", "other")]
HI = [{"role": "user", "content": "Hi"}]


def test_the_table_covers_tgi_s_finish_reasons() -> None:
    """The table names each FinishReason of TGI's spec and maps it into the vocabulary."""
    assert set(FINISH_REASON_TABLE) == {"length", "eos_token", "stop_sequence"}
    assert set(FINISH_REASON_TABLE.values()) <= FINISH_REASONS


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_generate_finish_reason(native: str, expected: str) -> None:
    """/generate's details.finish_reason is normalized; TGI's value is kept as native."""
    body = copy.deepcopy(GENERATE)
    body["details"]["finish_reason"] = native
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    result = b.generate("p", endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_stream_generate_last_chunk_finish_reason(native: str, expected: str) -> None:
    """The last /generate_stream chunk carries both the normalized and the native value."""
    events = copy.deepcopy(STREAM)
    events[-1]["details"]["finish_reason"] = native
    b, eid = backend(Server(sse(events)))
    last = list(b.stream_generate("p", endpoint_id=eid))[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_chat_finish_reason(native: str, expected: str) -> None:
    """The Messages API's finish_reason (older TGI sends its own values there) is normalized."""
    body = {**CHAT, "choices": [{**CHAT["choices"][0], "finish_reason": native}]}
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    result = b.chat(HI, endpoint_id=eid)
    assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_stream_chat_last_chunk_finish_reason(native: str, expected: str) -> None:
    """A chat stream's last chunk carries both the normalized and the native value."""
    b, eid = backend(Server(sse([chat_chunk("Hi"), chat_chunk("", native), "[DONE]"])))
    last = list(b.stream_chat(HI, endpoint_id=eid))[-1]
    assert last.done
    assert (last.finish_reason, last.native_finish_reason) == (expected, native)


def test_only_the_messages_api_has_a_default_model() -> None:
    """'tgi' is the default of chat and its stream only: /generate takes no model."""
    info = ipfs_accel_hf_tgi.backend_info()
    assert info.default_models == {"chat": "tgi", "stream_chat": "tgi"}
    assert info.default_model is None


@pytest.mark.parametrize("named", ["call", "endpoint"])
def test_a_named_model_is_sent_as_given(named: str) -> None:
    """A model named on the call or on the endpoint replaces 'tgi', in chat and its stream."""
    server = Server(httpx2.Response(200, json=CHAT), sse([chat_chunk("Hi", "stop"), "[DONE]"]))
    b, eid = backend(server, **({"model": "org/m"} if named == "endpoint" else {}))
    kwargs = {"model": "org/m"} if named == "call" else {}
    b.chat(HI, endpoint_id=eid, **kwargs)
    list(b.stream_chat(HI, endpoint_id=eid, **kwargs))
    assert [server.body(i)["model"] for i in range(2)] == ["org/m", "org/m"]

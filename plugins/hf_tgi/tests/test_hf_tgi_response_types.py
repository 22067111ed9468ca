"""Answers the hf_tgi plugin must refuse (wrong-typed fields in its Messages API and native
answers and stream events) and what it must let through (unknown fields; the body in raw)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx2
import pytest
from _hf_tgi_fixtures import CHAT, GENERATE, STREAM, Server, backend, chat_chunk, sse, token
from ipfs_accel import CallError, ResponseError, StreamInterruptedError

HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("finish_reason", 1,
         r"hf_tgi sent a chat response.*Expected `str \| null`, got `int` - at "
         r"`\$\.choices\[0\]\.finish_reason`"),
        ("finish_reason", {"x": 1},
         r"hf_tgi sent a chat response.*got `object` - at `\$\.choices\[0\]\.finish_reason`"),
        ("model", 12, r"hf_tgi sent a chat response.*got `int` - at `\$\.model`"),
    ],
)
def test_wrong_typed_chat_field_raises_naming_it(field: str, value: Any, words: str) -> None:
    """A /v1/chat/completions answer with a wrong-typed field is a ResponseError naming it."""
    body = copy.deepcopy(CHAT)
    if field == "model":
        body["model"] = value
    else:
        body["choices"][0][field] = value
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match=words):
        b.chat(HI, endpoint_id=eid)
    assert len(server.requests) == 1


def test_wrong_typed_chat_stream_field_is_named() -> None:
    """A Messages API stream chunk with a wrong-typed delta ends the stream with a
    ResponseError naming the backend and the field, after the text already yielded."""
    bad = chat_chunk("x")
    bad["choices"][0]["delta"]["content"] = 5
    server = Server(sse([chat_chunk("Hel"), bad]))
    b, eid = backend(server)
    seen: list[str] = []
    with pytest.raises(ResponseError, match=r"hf_tgi sent a stream event.*"
                       r"`\$\.choices\[0\]\.delta\.content`") as got:
        for chunk in b.stream_chat(HI, endpoint_id=eid):
            seen.append(chunk.delta)
    assert seen == ["Hel"] and got.value.backend == "hf_tgi" and len(server.requests) == 1


def test_chat_ignores_unknown_fields_and_keeps_the_body_in_raw() -> None:
    """Unknown fields, whatever their type, are skipped; raw is the whole body."""
    body = {**copy.deepcopy(CHAT), "usage_extra": [1], "system_fingerprint": {"odd": 1}}
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    result = b.chat(HI, endpoint_id=eid)
    assert result.text == "Hello!"
    assert result.raw == body


def test_negative_token_count_raises_and_stats_stay_at_zero() -> None:
    """A negative completion_tokens is a ResponseError; the stats do not go negative."""
    body = copy.deepcopy(CHAT)
    body["usage"]["completion_tokens"] = -2
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"usage\.output_tokens of -2"):
        b.chat(HI, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.output_tokens, stats.total_tokens) == (0, 0)


# -- the native routes: /generate, /generate_stream, /info ------------------------------


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda body: body.update(generated_text=5), r"\$\.generated_text"),
        (lambda body: body.pop("generated_text"), "generated_text"),
        (lambda body: body["details"].update(finish_reason=3), r"\$\.details\.finish_reason"),
        (lambda body: body["details"].update(generated_tokens="3"),
         r"\$\.details\.generated_tokens"),
        (lambda body: body["details"].update(generated_tokens=-1),
         r"\$\.details\.generated_tokens"),
        (lambda body: body["details"].update(prefill=[1]), r"\$\.details\.prefill\[0\]"),
        (lambda body: body.update(details=[]), r"\$\.details"),
    ],
)
def test_wrong_typed_generate_field_is_named(change: Any, path: str) -> None:
    """A /generate answer with a wrong-typed or missing field is a ResponseError naming the
    backend and the field, tried once (it was silently None or 0)."""
    body = copy.deepcopy(GENERATE)
    change(body)
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match=rf"hf_tgi sent a generate response.*{path}") as got:
        b.generate("p", endpoint_id=eid)
    assert got.value.backend == "hf_tgi" and got.value.retryable is False
    assert len(server.requests) == 1
    assert b.get_stats(eid).failed_requests == 1


def test_generate_ignores_unknown_fields_and_keeps_the_body_in_raw() -> None:
    """Fields the plugin does not read are skipped, whatever their type; raw is the body."""
    body = copy.deepcopy(GENERATE)
    body["details"]["best_of_sequences"] = [{"generated_text": "x", "anything": [1, {}]}]
    body["details"]["top_tokens"] = "not read"
    body["new_field"] = {"nested": [1, 2]}
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    result = b.generate("p", endpoint_id=eid)
    assert (result.text, result.finish_reason, result.native_finish_reason) == (
        " Paris.", "stop", "eos_token")
    assert result.raw == body


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ({"index": 1, "token": {**token(1, "a"), "text": 5}}, r"\$\.token\.text"),
        ({"index": 1, "token": {**token(1, "a"), "special": "no"}}, r"\$\.token\.special"),
        ({"index": 1, "token": "a"}, r"\$\.token"),
        ({**STREAM[2], "generated_text": 7}, r"\$\.generated_text"),
        ({**STREAM[2], "details": {**STREAM[2]["details"], "input_length": "7"}},
         r"\$\.details\.input_length"),
    ],
)
def test_wrong_typed_stream_event_is_named(event: dict[str, Any], path: str) -> None:
    """A /generate_stream event with a wrong-typed field ends the stream with a ResponseError
    naming the backend and the field; the text before it was yielded."""
    server = Server(sse([STREAM[0], event]))
    b, eid = backend(server)
    seen: list[str] = []
    with pytest.raises(ResponseError, match=rf"hf_tgi sent a stream event.*{path}") as got:
        for chunk in b.stream_generate("p", endpoint_id=eid):
            seen.append(chunk.delta)
    assert seen == [" Paris"]
    assert got.value.backend == "hf_tgi" and len(server.requests) == 1


@pytest.mark.asyncio
async def test_wrong_typed_stream_event_is_named_async() -> None:
    """The async stream names the field the same way."""
    b, eid = backend(Server(sse([{"index": 1, "token": {**token(1, "a"), "text": []}}])))
    with pytest.raises(ResponseError, match=r"hf_tgi sent a stream event.*\$\.token\.text"):
        async for _ in b.astream_generate("p", endpoint_id=eid):
            pass
    await b.aclose()


def test_stream_ignores_unknown_fields_and_keeps_each_event_in_raw() -> None:
    """Unknown event fields are skipped; each chunk's raw is its whole event."""
    events = [{**e, "top_tokens": [{"odd": True}], "extra": "x"} for e in STREAM]
    b, eid = backend(Server(sse(events)))
    chunks = list(b.stream_generate("p", endpoint_id=eid))
    assert "".join(c.delta for c in chunks) == " Paris."
    assert [c.raw for c in chunks] == events


def test_error_event_by_name_is_an_error_whatever_its_data() -> None:
    """An `event: error` is classified and raised even when its data is not JSON."""
    body = (f"data:{json.dumps(STREAM[0])}\n\nevent: error\ndata: CUDA out of memory\n\n")
    server = Server(httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                    content=body.encode()))
    b, eid = backend(server)
    with pytest.raises(CallError) as got:
        list(b.stream_generate("p", endpoint_id=eid))
    assert not isinstance(got.value, StreamInterruptedError)
    assert "CUDA out of memory" in got.value.message


def test_info_that_is_not_an_object_is_refused() -> None:
    """/info answered with a list is a ResponseError saying what was expected."""
    b, eid = backend(Server(httpx2.Response(200, json=["bloom"])))
    with pytest.raises(ResponseError, match=r"hf_tgi sent a info response.*Expected `object`"):
        b.invoke("info", endpoint_id=eid)

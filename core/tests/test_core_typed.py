"""Typed decoding: a plugin declares its wire types, the core decodes into them once, and a
body or event that does not fit is a ResponseError naming the backend and the field."""

from __future__ import annotations

import _typed_plugin
import httpx2
import pytest
from _typed_plugin import Chunk, Completion, Note
from ipfs_accel import Registry, ResponseError

MSG = [{"role": "user", "content": "hi"}]
GOOD = {"model": "m-1", "id": "x", "extra": {"nested": [1, 2]},
        "choices": [{"message": {"content": "typed"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2}}


def backend(handler):
    registry = Registry(plugins=[_typed_plugin], entry_points=False,
                        transport=httpx2.MockTransport(handler))
    return registry.get("typed", initial_retry_delay=0.001)


def test_a_body_is_decoded_once_into_the_declared_type():
    """parse and parse_usage get the declared Struct; unknown fields are skipped and raw
    still carries the whole body."""
    _typed_plugin.SEEN.clear()
    b = backend(lambda request: httpx2.Response(200, json=GOOD))
    r = b.chat(MSG)
    assert (r.text, r.finish_reason, r.model) == ("typed", "stop", "m-1")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (4, 2)
    assert [type(x) for x in _typed_plugin.SEEN] == [Completion]
    assert r.raw["extra"] == {"nested": [1, 2]}


@pytest.mark.parametrize(("body", "field"), [
    ({**GOOD, "choices": [{"message": {"content": "x"}, "finish_reason": 7}]},
     "$.choices[0].finish_reason"),
    ({**GOOD, "model": {"name": "m"}}, "$.model"),
    ({**GOOD, "usage": {"prompt_tokens": "four"}}, "$.usage.prompt_tokens"),
    ({"model": "m"}, "choices"),
])
def test_a_body_that_does_not_fit_names_the_field(body, field):
    """A wrong-typed or missing field is a ResponseError naming backend and field, not retried."""
    seen = []

    def handler(request):
        seen.append(request)
        return httpx2.Response(200, json=body)

    with pytest.raises(ResponseError, match="typed sent a chat response") as info:
        backend(handler).chat(MSG)
    assert field in str(info.value) and "does not fit" in str(info.value)
    assert info.value.attempts == 1 and len(seen) == 1


def test_a_body_that_is_not_json_says_so():
    """A 200 with an HTML page is a ResponseError saying it is not JSON."""
    b = backend(lambda request: httpx2.Response(200, content=b"<html>hello</html>"))
    with pytest.raises(ResponseError, match="not JSON"):
        b.chat(MSG)


def _sse(*events: str) -> httpx2.Response:
    body = "".join(f"{e}\n\n" for e in events).encode()
    return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})


def test_stream_events_are_decoded_by_event_name():
    """Unnamed events decode into Chunk, `event: note` into Note, [DONE] stays None."""
    _typed_plugin.SEEN.clear()
    b = backend(lambda request: _sse(
        'data: {"choices":[{"delta":{"content":"a"}}]}',
        'event: note\ndata: {"note":"n"}',
        'data: {"choices":[{"delta":{"content":"b"}}],"usage":{"prompt_tokens":2,"completion_tokens":2}}',
        "data: [DONE]"))
    chunks = list(b.stream_chat(MSG))
    assert "".join(c.delta for c in chunks) == "a[n]b"
    assert [type(x) for x in _typed_plugin.SEEN] == [Chunk, Note, Chunk]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4


@pytest.mark.asyncio
async def test_a_stream_event_that_does_not_fit_names_the_field():
    """An event of the wrong shape ends the stream with a ResponseError naming the field."""
    b = backend(lambda request: _sse('data: {"choices":[{"delta":{"content":5}}]}'))
    with pytest.raises(ResponseError, match=r"stream event.*\$\.choices\[0\]\.delta\.content"):
        async for _ in b.astream_chat(MSG):
            pass
    await b.aclose()

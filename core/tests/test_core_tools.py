"""Tool calls, structured output and images through the core: typed calls, stream fragments
joined, the round trip, the stream's whole answer, features refused before sending."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import (
    BackendInfo,
    Call,
    ChatResult,
    ConfigurationError,
    Exchange,
    Response,
    StreamChunk,
    StreamNotDoneError,
    ToolCall,
    ToolCallDelta,
    hookimpl,
    tools,
)
from ipfs_accel import openai_compat as oa
from ipfs_accel._toolcall import ToolCallParts, tool_call_id
from ipfs_accel.tools import (
    data_url,
    function_tools,
    native_tool_choice,
    native_tools,
    tool_choice,
    tool_names,
)
from test_openai_compat import HI, _Compat, _compat, _sse_response

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}


def _tool_chat(*calls: dict[str, Any], finish: str = "tool_calls", content: Any = None) -> dict:
    return {"id": "chatcmpl-t", "object": "chat.completion", "created": 1, "model": "m-1",
            "choices": [{"index": 0, "finish_reason": finish, "message": {
                "role": "assistant", "content": content, "tool_calls": list(calls)}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def _call(cid: str | None, name: str, arguments: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if cid is not None:
        out["id"] = cid
    return out


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m-1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m-1",
               "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4,
                                        "total_tokens": 9,
                                        "completion_tokens_details": {"reasoning_tokens": 1}}}

# two calls whose fragments interleave: call 0's name, call 1's name, then arguments in pieces
PARALLEL = [
    _chunk({"role": "assistant", "content": "Let me look. "}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                            "function": {"name": "get_weather", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                            "function": {"name": "get_time", "arguments": "{\"tz\":"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Pa"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ris\"}"}},
                           {"index": 1, "function": {"arguments": " \"CET\"}"}}]}),
    _chunk({}, "tool_calls"),
    USAGE_CHUNK,
]


def _hook(fn: Any) -> Any:
    return hookimpl(fn)


# --- The types ------------------------------------------------------------------------------

def test_tool_call_from_text_object_and_nonsense() -> None:
    """Arguments as JSON text are parsed; as an object, encoded; text that is not a JSON
    object leaves arguments None with the text kept; no arguments at all is ``{}``."""
    text = ToolCall.of(id="a", name="f", arguments='{"x": 1}')
    assert (text.arguments, text.arguments_json) == ({"x": 1}, '{"x": 1}')
    obj = ToolCall.of(id="a", name="f", arguments={"x": [1, 2]})
    assert (obj.arguments, json.loads(obj.arguments_json)) == ({"x": [1, 2]}, {"x": [1, 2]})
    bad = ToolCall.of(id="a", name="f", arguments='{"x": ')
    assert (bad.arguments, bad.arguments_json) == (None, '{"x": ')
    assert ToolCall.of(id="a", name="f", arguments="[1]").arguments is None
    empty = ToolCall.of(id="a", name="f", arguments="")
    assert (empty.arguments, empty.arguments_json) == ({}, "{}")


def test_message_is_openai_form_with_extra_content() -> None:
    """result.message is the assistant turn in OpenAI's form; vendor data rides along."""
    call = ToolCall.of(id="c1", name="f", arguments={"a": 1},
                       extra_content={"google": {"thought_signature": "sig"}})
    result = ChatResult(text="", tool_calls=[call], extra_content={"anthropic": {"x": 1}})
    assert result.message == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                        "extra_content": {"google": {"thought_signature": "sig"}}}],
        "extra_content": {"anthropic": {"x": 1}},
    }
    assert ChatResult(text="hi").message == {"role": "assistant", "content": "hi"}


@given(
    args=st.lists(st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=5),
                                  max_size=3), min_size=1, max_size=3),
    data=st.data(),
)
def test_fragments_in_any_split_join_to_the_calls(args: list[dict[str, Any]], data: Any) -> None:
    """However a stream splits and interleaves the calls' argument text, the joined calls
    are the calls, in index order, each with its ID."""
    texts = [json.dumps(a) for a in args]
    pieces: list[ToolCallDelta] = []
    for i, text in enumerate(texts):
        cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=4)))
        bounds = [0, *cuts, len(text)]
        pieces.append(ToolCallDelta(index=i, id=f"id{i}", name=f"f{i}"))
        pieces += [ToolCallDelta(index=i, arguments=text[a:b]) for a, b in itertools.pairwise(bounds)]
    order = data.draw(st.permutations(range(len(pieces))))
    # the first fragment of each call comes first (its id and name), the rest in any order
    # that keeps each call's own pieces in sequence
    by_call: dict[int, list[ToolCallDelta]] = {}
    for piece in pieces:
        by_call.setdefault(piece.index, []).append(piece)
    cursors = dict.fromkeys(by_call, 0)
    stream: list[ToolCallDelta] = []
    for n in order:
        index = pieces[n].index
        stream.append(by_call[index][cursors[index]])
        cursors[index] += 1
    parts = ToolCallParts()
    for piece in stream:
        parts.add([piece])
    calls = parts.take("r-1")
    assert calls is not None
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        (f"id{i}", f"f{i}", a) for i, a in enumerate(args)]
    assert parts.take("r-1") is None


def test_made_ids_are_stable_and_distinct() -> None:
    """An ID the core makes depends on the request, the position and the name only."""
    assert tool_call_id("r", 0, "f") == tool_call_id("r", 0, "f")
    assert len({tool_call_id("r", 0, "f"), tool_call_id("r", 1, "f"),
                tool_call_id("s", 0, "f"), tool_call_id("r", 0, "g")}) == 4


# --- Unary calls ----------------------------------------------------------------------------

def test_unary_tool_call_typed_and_round_trip() -> None:
    """An OpenAI tool call comes back typed; result.message and the tool's answer go back
    in the next request as OpenAI's form has them (vendor extra_content left out)."""
    backend, seen = _compat(
        httpx2.Response(200, json=_tool_chat(_call("call_1", "get_weather", '{"city": "Paris"}'))),
        httpx2.Response(200, json={"model": "m-1", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"content": "Sunny."}}]}),
    )
    first = backend.chat(HI, tools=[WEATHER])
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls or []
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", {"city": "Paris"})
    assert call.raw == _call("call_1", "get_weather", '{"city": "Paris"}')
    message = first.message
    message["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": "s"}}
    second = backend.chat([*HI, message, {"role": "tool", "tool_call_id": call.id,
                                          "content": "sunny"}], tools=[WEATHER])
    assert second.text == "Sunny."
    body = json.loads(seen[1].content)
    assert body["messages"][1] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert body["tools"] == [WEATHER]


def test_unary_call_without_id_gets_a_stable_one_and_stop_says_tool_calls() -> None:
    """A server that sends no ID and finishes with "stop": the core makes the ID (stable for
    the request) and says tool_calls, keeping the server's "stop" as native."""
    body = _tool_chat(_call(None, "f", {"a": 1}), finish="stop")
    backend, _ = _compat(httpx2.Response(200, json=body), httpx2.Response(200, json=body))
    a = backend.chat(HI, request_id="req-1")
    b = backend.chat(HI, request_id="req-1")
    [ca], [cb] = a.tool_calls or [], b.tool_calls or []
    assert ca.id == cb.id == tool_call_id("req-1", 0, "f")
    assert ca.arguments == {"a": 1}
    assert (a.finish_reason, a.native_finish_reason) == ("tool_calls", "stop")


# --- Streams --------------------------------------------------------------------------------

def test_stream_joins_parallel_calls_and_offers_the_whole_answer() -> None:
    """Fragments of two calls reach the caller as chunks (none dropped); the chunk that ends
    the turn carries both whole calls; stream.result is the whole answer."""
    backend, _ = _compat(_sse_response(*PARALLEL))
    stream = backend.stream_chat(HI, tools=[WEATHER], request_id="r-s")
    with pytest.raises(StreamNotDoneError):
        _ = stream.result
    chunks = list(stream)
    assert sum(1 for c in chunks if c.tool_call_deltas) == 4  # fragments reached the caller
    ends = [c for c in chunks if c.finish_reason is not None]
    assert [c.finish_reason for c in ends][-1] == "tool_calls"
    whole = [t for c in chunks for t in c.tool_calls or ()]
    assert [(t.id, t.name, t.arguments) for t in whole] == [
        ("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {"tz": "CET"})]
    result = stream.result
    assert result.text == "Let me look. "
    assert result.tool_calls == whole
    assert (result.finish_reason, result.model, result.request_id) == ("tool_calls", "m-1", "r-s")
    assert (result.usage.output_tokens, result.usage.reasoning_tokens,
            result.usage.total_tokens) == (4, 1, 9)
    assert result.message["tool_calls"][1]["function"] == {"name": "get_time",
                                                          "arguments": '{"tz": "CET"}'}


def test_async_stream_final_reads_the_rest() -> None:
    """astream_chat: final() reads what is left and returns the same whole answer."""
    backend, _ = _compat(_sse_response(*PARALLEL))

    async def main() -> ChatResult:
        stream = backend.astream_chat(HI, tools=[WEATHER])
        first = await stream.__anext__()
        assert first.delta == "Let me look. "
        return await stream.final()

    result = asyncio.run(main())
    assert [t.name for t in result.tool_calls or ()] == ["get_weather", "get_time"]
    assert backend.get_stats().reasoning_tokens == 1


def test_whole_calls_in_a_stream_without_ids_and_stop() -> None:
    """A plugin that streams whole calls (as Ollama and Gemini do) with no ID and ends with
    "stop": each call gets the ID the unary path would make, and the turn says tool_calls."""

    class Whole(_Compat):
        def send(self, call: Any, endpoint: Any) -> Exchange:  # type: ignore[override]
            def parse(event: Any) -> StreamChunk | None:
                data = event.json
                if data == {"end": True}:
                    return StreamChunk(done=True, finish_reason="stop")
                return StreamChunk(tool_calls=[ToolCall.of(id=None, name=data["name"],
                                                           arguments=data["args"])])
            return Exchange(path="/s", json={}, stream="ndjson", parse_event=parse)

    Whole.send = _hook(Whole.send)  # type: ignore[method-assign]
    lines = b'{"name": "f", "args": {"a": 1}}\n{"name": "g", "args": {}}\n{"end": true}\n'
    backend, _ = _compat(httpx2.Response(200, content=lines), plugin=Whole())
    stream = backend.stream_chat(HI, request_id="r-w")
    result = stream.final()
    assert [c.id for c in result.tool_calls or ()] == [tool_call_id("r-w", 0, "f"),
                                                       tool_call_id("r-w", 1, "g")]
    assert (result.finish_reason, result.native_finish_reason) == ("tool_calls", "stop")


def test_wrong_typed_tool_calls_in_a_chunk_are_refused() -> None:
    """A plugin that puts its API's dicts in a chunk's tool_calls is told what is expected."""

    class Dicts(_Compat):
        def send(self, call: Any, endpoint: Any) -> Exchange:  # type: ignore[override]
            return Exchange(path="/s", json={}, stream="ndjson",
                            parse_event=lambda e: StreamChunk(tool_calls=[{"name": "f"}]))

    Dicts.send = _hook(Dicts.send)  # type: ignore[method-assign]
    backend, _ = _compat(httpx2.Response(200, content=b'{"x": 1}\n'), plugin=Dicts())
    with pytest.raises(Exception, match=r"tool_calls\[0\] of type dict, expected ToolCall"):
        list(backend.stream_chat(HI))


# --- Features and shapes, refused before sending --------------------------------------------

class _Featured(_Compat):
    @_hook
    def backend_info(self) -> BackendInfo:
        return BackendInfo(
            name="compat", default_base_url="http://compat.test", default_model="m",
            operations=frozenset({"chat", "generate", "stream_chat"}),
            features={"chat": frozenset({"tools", "json_schema"}),
                      "stream_chat": frozenset({"tools"}), "generate": frozenset()})


IMAGE = {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]}


@pytest.mark.parametrize(("operation", "kwargs", "words"), [
    ("generate", {"tools": [WEATHER]}, "does not take tools in 'generate' (it does for: chat, "
                                       "stream_chat)"),
    ("chat", {"messages": [IMAGE]}, "does not take images in 'chat'"),
    ("stream_chat", {"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object"}}}}, "json_schema in 'stream_chat' (it does "
                                                      "for: chat)"),
    ("chat", {"response_format": {"type": "json_object"}}, "does not take json_object"),
    ("chat", {"messages": [*HI, {"role": "tool", "tool_call_id": "c", "content": "x"}]},
     None),  # tools are taken in chat: this one is sent
])
def test_features_refused_before_sending(operation: str, kwargs: dict[str, Any],
                                         words: str | None) -> None:
    """A call needing what its operation lacks is a ConfigurationError naming the feature,
    and nothing reaches the server; what the operation takes is sent."""
    ok = httpx2.Response(200, json={"model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"content": "x"}}]})
    backend, seen = _compat(ok, plugin=_Featured())
    messages = kwargs.pop("messages", HI)
    if words is None:
        backend.chat(messages, **kwargs)
        assert len(seen) == 1
        return
    with pytest.raises(ConfigurationError) as info:
        if operation == "generate":
            backend.generate("hi", **kwargs)
        elif operation == "stream_chat":
            backend.stream_chat(messages, **kwargs)
        else:
            backend.chat(messages, **kwargs)
    assert words in str(info.value)
    assert seen == []


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"tools": {"type": "function"}}, "tools must be a list"),
    ({"tools": ["get_weather"]}, "tools[0] must be"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]},
     "tools[0].function must be an object with a 'name'"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
     "parameters must be a JSON Schema object"),
    ({"tool_choice": "sometimes"}, "tool_choice must be"),
    ({"tool_choice": {"type": "function"}}, "tool_choice must be"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "'schema' a JSON Schema object"),
    ({"response_format": {"type": "yaml"}}, "response_format must be"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "needs the 'tool_call_id'"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]},
     "must be base64"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "content[0].image_url must be"),
])
def test_bad_shapes_named_before_sending(kwargs: dict[str, Any], words: str) -> None:
    """Malformed tools, tool_choice, response_format, tool messages and image parts are
    refused by name for every backend, declared features or not, before anything is sent."""
    backend, seen = _compat()
    messages = kwargs.pop("messages", HI)
    with pytest.raises(ConfigurationError) as info:
        backend.chat(messages, **kwargs)
    assert words in str(info.value)
    assert seen == []


def test_readers_for_plugins() -> None:
    """The readers a plugin maps from: function tools and native ones apart, the choice,
    the names of calls by ID, and data: URLs."""
    native = {"name": "lookup", "input_schema": {"type": "object"}}
    params = {"tools": [WEATHER, native], "tool_choice": {"type": "function",
                                                          "function": {"name": "get_weather"}}}
    assert [t.name for t in function_tools(params)] == ["get_weather"]
    assert native_tools(params) == [native]
    choice = tool_choice(params)
    assert choice is not None and (choice.mode, choice.name) == ("function", "get_weather")
    messages = [ChatResult(text="", tool_calls=[ToolCall.of(id="c9", name="get_weather",
                                                            arguments={})]).message]
    assert tool_names(messages) == {"c9": "get_weather"}
    typed = [{"role": "assistant", "tool_calls": [ToolCall.of(id="c8", name="f", arguments={})]}]
    assert tool_names(typed) == {"c8": "f"}
    assert data_url("data:image/jpeg;base64,/9j/4A==") == ("image/jpeg", "/9j/4A==")
    assert data_url("https://example.com/cat.png") is None
    anthropic = {"tool_choice": {"type": "tool", "name": "get_weather"}}
    assert (tool_choice(anthropic), native_tool_choice(anthropic)) == (
        None, {"type": "tool", "name": "get_weather"})
    assert native_tool_choice(params) is None


def test_stripped_extra_content_never_changes_the_callers_messages() -> None:
    """chat_body leaves extra_content out of what it sends without touching the caller's list."""
    message = {"role": "assistant", "content": None, "extra_content": {"v": 1},
               "tool_calls": [{"id": "c", "type": "function", "extra_content": {"v": 2},
                               "function": {"name": "f", "arguments": "{}"}}]}
    body = oa.chat_body(Call(operation="chat", model="m", messages=[message]))
    assert "extra_content" not in json.dumps(body)
    assert message["extra_content"] == {"v": 1}
    assert message["tool_calls"][0]["extra_content"] == {"v": 2}


def test_parse_chat_keeps_unparseable_arguments_as_text() -> None:
    """A model that wrote arguments that are not JSON: the call still comes back, arguments
    None and the text as written, so the caller can answer with the error."""
    body = _tool_chat(_call("c", "f", '{"city": Paris}'))
    result = oa.parse_chat(Response(status=200, headers={}, content=b"", data=body))
    [call] = result.tool_calls or []
    assert (call.arguments, call.arguments_json) == (None, '{"city": Paris}')


def test_embed_with_tools_refused_where_features_are_declared() -> None:
    """embed takes no tools or response format on a backend that declares its features."""

    class Embeds(_Featured):
        @_hook
        def backend_info(self) -> BackendInfo:
            return BackendInfo(name="compat", default_base_url="http://compat.test",
                               default_model="m", operations=frozenset({"chat", "embed"}),
                               features={"chat": frozenset({"tools"})})

    backend, seen = _compat(plugin=Embeds())
    with pytest.raises(ConfigurationError, match="does not take tools in 'embed'"):
        backend.embed(["x"], tools=[WEATHER])
    assert seen == []


def test_a_stream_that_ends_after_its_calls_without_a_finish_says_tool_calls() -> None:
    """Some servers (TGI 3.2+) send no finish chunk after tool calls: the stream's end says
    tool_calls, on the last chunk and on stream.result."""
    events = [e for e in PARALLEL if not (e.get("choices") and e["choices"][0]["finish_reason"])]
    backend, _ = _compat(_sse_response(*events))
    stream = backend.stream_chat(HI, tools=[WEATHER])
    chunks = list(stream)
    assert chunks[-1].done and chunks[-1].finish_reason == "tool_calls"
    assert [t.name for t in chunks[-1].tool_calls or ()] == ["get_weather", "get_time"]
    assert stream.result.finish_reason == "tool_calls"


def test_sent_call_reads_a_turn_for_apis_that_take_objects() -> None:
    """An assistant's tool call read back: arguments as an object from text or an object,
    none as {}, an ID or None, vendor data kept; a nameless call or non-object arguments
    are named."""
    from ipfs_accel.tools import sent_call  # noqa: PLC0415

    made = ToolCall.of(id="c1", name="f", arguments='{"a": 1}',
                       extra_content={"google": {"thought_signature": "s"}})
    got = sent_call(made, "messages[1].tool_calls[0]", api="X")
    assert (got.id, got.name, got.arguments, got.extra_content) == (
        "c1", "f", {"a": 1}, {"google": {"thought_signature": "s"}})
    assert sent_call({"function": {"name": "f"}}, "w", api="X").arguments == {}
    assert sent_call({"id": "", "function": {"name": "f", "arguments": {"b": 2}}}, "w",
                     api="X") == got.__class__(id=None, name="f", arguments={"b": 2})
    with pytest.raises(ConfigurationError, match=r"messages\[1\].tool_calls\[0\] must be .*"
                                                 r"'arguments'}} \(OpenAI's form"):
        sent_call({"function": {"arguments": "{}"}}, "messages[1].tool_calls[0]", api="X")
    with pytest.raises(ConfigurationError, match=r"w.function.arguments must be a JSON object "
                                                 r"\(X takes the arguments as an object\)"):
        sent_call({"function": {"name": "f", "arguments": "[1, 2]"}}, "w", api="X")


_VALUES = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.booleans(),
                    st.lists(st.dictionaries(st.sampled_from(["type", "text", "image_url"]),
                                             st.one_of(st.sampled_from(["text", "image_url"]),
                                                       st.text(max_size=8)), max_size=2),
                             max_size=2))
_MESSAGES = st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["role", "content", "tool_calls", "tool_call_id", "name"]),
                    st.one_of(st.sampled_from(["user", "assistant", "tool", "system"]), _VALUES),
                    max_size=4),
    st.text(max_size=3),
), max_size=4)


@settings(max_examples=300, deadline=None)
@given(messages=_MESSAGES)
def test_the_plain_text_shortcut_is_only_taken_when_nothing_is_needed(
    messages: list[Any],
) -> None:
    """check_features skips the checks for plain text turns: whenever it does, the full
    reading finds nothing needed and nothing malformed."""
    if tools._plain(messages):
        assert tools.needed_features({}, messages) == set()

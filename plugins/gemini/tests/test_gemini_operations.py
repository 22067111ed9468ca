"""chat, generate and embed against a fake Gemini server: requests as the spec says, results."""

from __future__ import annotations

import httpx2
import pytest
from _gemini_fixtures import (
    BASE,
    KEY,
    OTHER_KEY,
    Recorder,
    backend,
    endpoint,
    generate_response,
    json_response,
    sse,
    usage_metadata,
)
from ipfs_accel import ConfigurationError, ResponseError

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"


def test_chat_request_follows_the_spec() -> None:
    """chat POSTs a GenerateContentRequest with mapped roles, system instruction and config."""
    rec = Recorder(json_response(200, generate_response(usage=usage_metadata())))
    b = backend(rec)
    eid = endpoint(b)
    b.chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ],
        endpoint_id=eid, request_id="req-42", max_tokens=64, temperature=0.5, top_p=0.9,
        stop=["END"],
    )
    req = rec.last
    assert req.method == "POST"
    assert str(req.url) == BASE + GENERATE
    assert req.headers["x-goog-api-key"] == KEY
    assert req.headers["x-request-id"] == "req-42"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    assert rec.body() == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "How are you?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "maxOutputTokens": 64, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"],
        },
    }


def test_chat_result_fields_and_usage() -> None:
    """The reply's text, finish reason, model, usage (thinking billed as output) and both
    request IDs are read."""
    usage = usage_metadata(20, 7, cachedContentTokenCount=8, thoughtsTokenCount=30)
    rec = Recorder(json_response(200, generate_response("Fine.", usage=usage, response_id="r-9")))
    b = backend(rec)
    eid = endpoint(b)
    result = b.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid, request_id="req-1")
    assert result.text == "Fine."
    assert (result.finish_reason, result.native_finish_reason) == ("stop", "STOP")
    assert result.model == "gemini-2.5-flash"
    assert result.request_id == "req-1"
    assert result.server_request_id == "r-9"
    assert result.usage.input_tokens == 20
    assert result.usage.output_tokens == 37
    assert result.usage.reasoning_tokens == 30
    assert result.usage.total_tokens == 57
    assert result.usage.cache_read_tokens == 8
    assert result.usage.details["thoughtsTokenCount"] == 30
    assert result.usage.details["totalTokenCount"] == 57
    stats = b.get_stats()
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (20, 37, 57)


def test_generate_is_one_user_turn_and_passes_params_through() -> None:
    """generate sends the prompt as a user turn; other params land where the spec puts them."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    eid = endpoint(b)
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    b.generate(
        "Once upon a time", endpoint_id=eid, stop="\n", top_k=3, seed=7,
        thinkingConfig={"thinkingBudget": 0}, safetySettings=safety, system_instruction="Poet.",
    )
    assert rec.body() == {
        "contents": [{"role": "user", "parts": [{"text": "Once upon a time"}]}],
        "systemInstruction": {"parts": [{"text": "Poet."}]},
        "safetySettings": safety,
        "generationConfig": {
            "stopSequences": ["\n"], "topK": 3, "seed": 7, "thinkingConfig": {"thinkingBudget": 0},
        },
    }


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "models/gemini-2.0-flash"])
def test_model_with_or_without_models_prefix(model: str) -> None:
    """A model given as ``models/x`` or ``x`` goes to the same route."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    b.chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b), model=model)
    assert rec.last.url.path == "/v1beta/models/gemini-2.0-flash:generateContent"


def test_endpoint_model_setting_is_used() -> None:
    """The endpoint's ``model`` setting replaces the default model."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    b.chat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b, model="gemini-2.5-pro"))
    assert rec.last.url.path == "/v1beta/models/gemini-2.5-pro:generateContent"


def test_thoughts_are_not_text_and_function_calls_are_tool_calls() -> None:
    """Thought parts stay out of the text; functionCall parts become tool_calls."""
    parts = [
        {"text": "thinking...", "thought": True},
        {"text": "Let me check."},
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
    ]
    rec = Recorder(json_response(200, generate_response(parts=parts)))
    b = backend(rec)
    result = b.chat([{"role": "user", "content": "Weather?"}], endpoint_id=endpoint(b))
    assert result.text == "Let me check."
    assert result.tool_calls is not None
    [call] = result.tool_calls
    assert (call.name, call.arguments, call.arguments_json) == (
        "weather", {"city": "Paris"}, '{"city":"Paris"}')
    assert call.raw == parts[2]
    assert call.id  # the API gave none: the core made one


def test_blocked_prompt_reports_the_block_reason() -> None:
    """A response without candidates gives empty text and the promptFeedback block reason."""
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r-b",
            "usageMetadata": usage_metadata(4, 0)}
    rec = Recorder(json_response(200, body))
    b = backend(rec)
    result = b.chat([{"role": "user", "content": "..."}], endpoint_id=endpoint(b))
    assert (result.text, result.server_request_id) == ("", "r-b")
    assert (result.finish_reason, result.native_finish_reason) == ("content_filter", "SAFETY")


def test_gemini_shaped_messages_pass_through() -> None:
    """A message given with Gemini ``parts`` keeps them; ``model`` is accepted as a role."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    parts = [{"text": "Look:"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0="}}]
    b.chat([{"role": "user", "parts": parts}, {"role": "model", "content": "I see."}],
           endpoint_id=endpoint(b))
    assert rec.body()["contents"] == [
        {"role": "user", "parts": parts},
        {"role": "model", "parts": [{"text": "I see."}]},
    ]


def test_unknown_role_is_rejected_before_sending() -> None:
    """A role Gemini has no counterpart for raises ConfigurationError and sends nothing."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec)
    with pytest.raises(ConfigurationError, match="role"):
        b.chat([{"role": "wizard", "content": "Hi"}], endpoint_id=endpoint(b))
    assert rec.requests == []


@pytest.mark.asyncio
async def test_achat() -> None:
    """The async chat sends the same request and reads the same result."""
    rec = Recorder(json_response(200, generate_response("async hi", usage=usage_metadata(3, 2))))
    b = backend(rec)
    result = await b.achat([{"role": "user", "content": "Hi"}], endpoint_id=endpoint(b))
    assert result.text == "async hi"
    assert result.usage.total_tokens == 5
    assert rec.last.headers["x-goog-api-key"] == KEY


def test_embed_one_input_uses_embed_content() -> None:
    """One input goes to :embedContent with a single Content; the default is the embed model."""
    rec = Recorder(json_response(200, {"embedding": {"values": [0.1, 0.2, 0.3]}}))
    b = backend(rec)
    result = b.embed(
        "hello", endpoint_id=endpoint(b), request_id="req-e", task_type="RETRIEVAL_QUERY",
        outputDimensionality=3,
    )
    req = rec.last
    assert str(req.url) == BASE + "/v1beta/models/gemini-embedding-001:embedContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert req.headers["x-request-id"] == "req-e"
    assert rec.body() == {
        "content": {"parts": [{"text": "hello"}]},
        "taskType": "RETRIEVAL_QUERY",
        "outputDimensionality": 3,
    }
    assert result.vectors == [[0.1, 0.2, 0.3]]
    assert result.request_id == "req-e"


def test_embed_several_inputs_uses_batch_embed_contents() -> None:
    """Several inputs go to :batchEmbedContents, each request naming ``models/{model}``."""
    body = {"embeddings": [{"values": [1.0, 0.0]}, {"values": [0.0, 1.0]}]}
    rec = Recorder(json_response(200, body))
    b = backend(rec)
    result = b.embed(["a", "b"], endpoint_id=endpoint(b), model="models/text-embedding-004")
    assert rec.last.url.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert rec.body() == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]


def test_embed_with_a_wrong_number_of_vectors_is_a_response_error() -> None:
    """A batch answer with fewer embeddings than inputs is not passed off as a result."""
    rec = Recorder(json_response(200, {"embeddings": [{"values": [1.0]}]}))
    b = backend(rec)
    with pytest.raises(ResponseError):
        b.embed(["a", "b"], endpoint_id=endpoint(b))


@pytest.mark.asyncio
async def test_aembed_with_the_endpoint_embed_model_option() -> None:
    """The ``embed_model`` endpoint option picks the embedding model."""
    rec = Recorder(json_response(200, {"embedding": {"values": [0.5]}}))
    b = backend(rec)
    eid = endpoint(b, embed_model="text-embedding-004")
    result = await b.aembed("x", endpoint_id=eid)
    assert rec.last.url.path == "/v1beta/models/text-embedding-004:embedContent"
    assert result.vectors == [[0.5]]


def test_each_endpoint_sends_only_its_own_key() -> None:
    """Two endpoints, two keys: every request carries its own endpoint's key and no other."""
    def answer(request: httpx2.Request) -> httpx2.Response:
        if "embed" in request.url.path.lower():
            return json_response(200, {"embedding": {"values": [1.0]}})
        return json_response(200, generate_response())

    rec = Recorder(answer)
    b = backend(rec)
    first, second = endpoint(b, KEY), endpoint(b, OTHER_KEY)
    b.chat([{"role": "user", "content": "1"}], endpoint_id=first)
    b.chat([{"role": "user", "content": "2"}], endpoint_id=second)
    b.embed("3", endpoint_id=second)
    keys = [r.headers["x-goog-api-key"] for r in rec.requests]
    assert keys == [KEY, OTHER_KEY, OTHER_KEY]
    for req, key in zip(rec.requests, keys, strict=True):
        other = OTHER_KEY if key == KEY else KEY
        assert other not in str(req.headers) and other.encode() not in req.content


def test_no_request_url_contains_the_key() -> None:
    """The key travels in a header only: no URL (path or query) of any operation has it."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        if "stream" in request.url.path:
            return sse([generate_response()])
        if "embed" in request.url.path.lower():
            return json_response(200, {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]})
        return json_response(200, generate_response())

    rec = Recorder(answer)
    b = backend(rec)
    eid = endpoint(b)
    b.chat([{"role": "user", "content": "1"}], endpoint_id=eid)
    b.generate("2", endpoint_id=eid)
    list(b.stream_chat([{"role": "user", "content": "3"}], endpoint_id=eid))
    b.embed(["4", "5"], endpoint_id=eid)
    assert len(rec.requests) == 4
    for req in rec.requests:
        assert KEY not in str(req.url)
        assert "key=" not in str(req.url)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GEMINI_API_KEY": KEY, "GOOGLE_API_KEY": OTHER_KEY}, KEY),
        ({"GOOGLE_API_KEY": OTHER_KEY}, OTHER_KEY),
    ],
)
def test_key_from_environment(environ: dict[str, str], expected: str) -> None:
    """GEMINI_API_KEY is read first, then GOOGLE_API_KEY."""
    rec = Recorder(json_response(200, generate_response()))
    b = backend(rec, environ=environ)
    b.chat([{"role": "user", "content": "Hi"}])
    assert rec.last.headers["x-goog-api-key"] == expected


def test_key_is_required() -> None:
    """Without api_key= or an env var the endpoint cannot be made."""
    b = backend(Recorder())
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        b.create_endpoint()


def test_key_never_shown_in_reprs() -> None:
    """The endpoint's config and backend reprs hide the key."""
    b = backend(Recorder())
    eid = endpoint(b)
    assert KEY not in repr(b.get_endpoint(eid))
    assert KEY not in repr(b)

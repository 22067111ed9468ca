"""Building Gemini request bodies from the core's calls.

``generateContent`` and ``streamGenerateContent`` take a ``GenerateContentRequest``:
``contents`` (turns with a ``role`` of ``user`` or ``model`` and ``parts``), an optional
``systemInstruction``, ``generationConfig`` and top-level fields such as ``safetySettings``
or ``tools``. ``embedContent`` takes one ``EmbedContentRequest``; ``batchEmbedContents``
takes ``requests``, each naming its model as ``models/{model}``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from ipfs_accel import Call, ConfigurationError

from ._messages import contents as message_contents
from ._tools import apply_openai

__all__ = [
    "embed_request",
    "generate_body",
    "model_id",
]

# The fields of GenerationConfig in the spec (camelCase, as the API's JSON spells them).
GENERATION_CONFIG_FIELDS = frozenset({
    "automaticFunctionCalling", "candidateCount", "frequencyPenalty", "imageConfig",
    "logprobs", "maxOutputTokens", "presencePenalty", "responseJsonSchema",
    "responseLogprobs", "responseMimeType", "responseModalities", "responseSchema", "seed",
    "speechConfig", "stopSequences", "temperature", "thinkingConfig", "topK", "topP",
})
# The top-level fields of GenerateContentRequest a caller may set besides contents.
REQUEST_FIELDS = frozenset({
    "cachedContent", "safetySettings", "store", "systemInstruction", "toolConfig", "tools",
})
# The optional fields of EmbedContentRequest.
EMBED_FIELDS = frozenset({"outputDimensionality", "taskType", "title"})

# The common parameters, mapped to GenerationConfig's names.
_COMMON = {"max_tokens": "maxOutputTokens", "temperature": "temperature", "top_p": "topP",
           "stop": "stopSequences"}
# Read in OpenAI's form by ._tools, never passed through under their own names.
_OPENAI = frozenset({"tools", "tool_choice", "response_format"})
_SNAKE = re.compile(r"_([a-z])")


def _camel(name: str) -> str:
    """``top_k`` -> ``topK``: the proto JSON names of snake_case keywords."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def model_id(model: str | None, operation: str) -> str:
    """The model's ID for the URL path: ``models/x`` and ``x`` both give ``x``, escaped."""
    if not model:
        raise ConfigurationError(
            f"{operation} needs a model: pass model=, or set it on the endpoint"
        )
    name = model.removeprefix("models/")
    if not name or "/" in name:
        raise ConfigurationError(f"not a Gemini model name: {model!r} (expected 'x' or 'models/x')")
    return quote(name, safe="-._~@")


def generate_body(call: Call) -> dict[str, Any]:
    """The ``GenerateContentRequest`` for a chat or generate call (streamed or not).

    ``tools``, ``tool_choice`` and ``response_format`` are read in OpenAI's form (see
    :mod:`._tools`); messages as :mod:`._messages` says."""
    if call.messages is not None:
        contents, system = message_contents(call.messages)
    else:
        contents, system = [{"role": "user", "parts": [{"text": call.prompt or ""}]}], []
    body: dict[str, Any] = {"contents": contents}
    config: dict[str, Any] = {}
    for key, value in call.params.items():
        if key in _OPENAI:
            continue
        if key in _COMMON:
            config[_COMMON[key]] = [value] if key == "stop" and isinstance(value, str) else value
            continue
        if key == "generationConfig" and isinstance(value, dict):
            config.update(value)
            continue
        name = _camel(key)
        if name in GENERATION_CONFIG_FIELDS:
            config[name] = value
        elif name == "systemInstruction" and isinstance(value, str):
            system.append({"text": value})
        else:
            body[name if name in REQUEST_FIELDS else key] = value
    apply_openai(call.params, body, config)
    if system:
        instruction = body.get("systemInstruction")
        if isinstance(instruction, dict) and isinstance(instruction.get("parts"), list):
            system = [*instruction["parts"], *system]
        body["systemInstruction"] = {"parts": system}
    if config:
        body["generationConfig"] = config
    return body


def embed_request(call: Call, text: str, model: str | None) -> dict[str, Any]:
    """One ``EmbedContentRequest``; ``model`` (``models/x``) is set for batch requests."""
    request: dict[str, Any] = {}
    if model is not None:
        request["model"] = model
    request["content"] = {"parts": [{"text": text}]}
    for key, value in call.params.items():
        if key in _OPENAI:  # the core checks these for text operations only
            raise ConfigurationError(f"backend 'gemini' does not take {key} in 'embed'")
        name = _camel(key)
        request[name if name in EMBED_FIELDS else key] = value
    return request

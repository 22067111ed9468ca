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
_ROLES = {"user": "user", "assistant": "model", "model": "model"}
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


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    """``parts`` from a message's content: a string, or a list of strings / OpenAI-style text
    parts / Gemini parts (passed through)."""
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for item in content:
            if isinstance(item, str):
                parts.append({"text": item})
            elif isinstance(item, dict) and item.get("type") == "text" and "text" in item:
                parts.append({"text": item["text"]})
            elif isinstance(item, dict) and "type" not in item:
                parts.append(item)  # already a Gemini Part (text, inlineData, functionCall...)
            else:
                raise ConfigurationError(f"{where}: unsupported content part {item!r:.80}")
        return parts
    raise ConfigurationError(f"{where}: content must be a string or a list of parts")


def _contents(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The turns and the system parts of OpenAI-style messages."""
    contents: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ConfigurationError(f"{where} must be a dict with 'role' and 'content'")
        role = message.get("role", "user")
        if "parts" in message:
            parts = _parts(message["parts"], where)
        else:
            parts = _parts(message.get("content"), where)
        if role == "system":
            system.extend(parts)
            continue
        mapped = _ROLES.get(role)
        if mapped is None:
            raise ConfigurationError(
                f"{where}: role {role!r} is not one of user, assistant, model, system"
            )
        contents.append({"role": mapped, "parts": parts})
    return contents, system


def generate_body(call: Call) -> dict[str, Any]:
    """The ``GenerateContentRequest`` for a chat or generate call (streamed or not)."""
    if call.messages is not None:
        contents, system = _contents(call.messages)
    else:
        contents, system = [{"role": "user", "parts": [{"text": call.prompt or ""}]}], []
    body: dict[str, Any] = {"contents": contents}
    config: dict[str, Any] = {}
    for key, value in call.params.items():
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
        name = _camel(key)
        request[name if name in EMBED_FIELDS else key] = value
    return request

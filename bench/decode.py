"""Reading an answer: decode to dicts and walk them, against decoding into declared Structs.

The baseline is what plugins did before the core decoded into their types: one generic
decode, then ``.get()`` walks with type checks. Measured in the same run on the same bodies
(an OpenAI chat completion, a stream chunk, an 8 x 1536 embeddings answer), CPU microseconds
per body. "typed + raw" is what a plugin now does for a chat answer: the typed decode plus a
generic decode of the whole body for ``raw`` (the stream chunk row always includes it, as
each chunk keeps its event in ``raw``). The dict path of the embeddings row does not check
its numbers; the typed path does. Run: ``python bench/decode.py``.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from ipfs_accel import decode_json, openai_compat
from ipfs_accel._wire import decode_typed

CHAT = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "system_fingerprint": "fp_1", "choices": [{"index": 0, "logprobs": None,
    "message": {"role": "assistant", "content": "Hello there, how can I help you today?"},
    "finish_reason": "stop"}], "usage": {"prompt_tokens": 12, "completion_tokens": 9,
    "total_tokens": 21, "prompt_tokens_details": {"cached_tokens": 0}},
}).encode()
CHUNK = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "delta": {"content": " world"}, "finish_reason": None}],
}).encode()
rng = random.Random(7)
EMBED = json.dumps({
    "object": "list", "model": "text-embedding-3-small",
    "data": [{"object": "embedding", "index": i, "embedding": [rng.random() for _ in range(1536)]}
             for i in range(8)],
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}).encode()


def walk_chat(body: bytes) -> tuple[Any, ...]:
    data = decode_json(body)
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = message.get("content")
    reason = choice.get("finish_reason")
    model = data.get("model")
    usage = data.get("usage") or {}
    counts = (usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    assert isinstance(text, str) and isinstance(reason, str) and isinstance(model, str)
    assert all(isinstance(c, int) and c >= 0 for c in counts)
    return text, reason, model, counts, data


def typed_chat(body: bytes, *, raw: bool) -> tuple[Any, ...]:
    data = decode_typed(body, openai_compat.ChatCompletion)
    choice = data.choices[0]
    usage = data.usage
    counts = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return (choice.message.content, choice.finish_reason, data.model, counts,
            decode_json(body) if raw else None)


def walk_chunk(body: bytes) -> tuple[Any, ...]:
    data = decode_json(body)
    choice = (data.get("choices") or [{}])[0]
    delta = (choice.get("delta") or {}).get("content") or ""
    assert isinstance(delta, str)
    return delta, choice.get("finish_reason"), data


def typed_chunk(body: bytes) -> tuple[Any, ...]:
    data = decode_typed(body, openai_compat.ChatCompletionChunk)
    choice = data.choices[0]
    return choice.delta.content, choice.finish_reason, decode_json(body)


def walk_embed(body: bytes) -> list[list[float]]:
    data = decode_json(body)
    rows = sorted(data["data"], key=lambda r: r["index"])
    return [r["embedding"] for r in rows]  # no check of the numbers: the typed path checks them


def typed_embed(body: bytes) -> list[list[float]]:
    data = decode_typed(body, openai_compat.Embeddings)
    return [row.embedding for row in sorted(data.data, key=lambda r: r.index)]  # type: ignore[misc]


def per_call(fn: Callable[[], object], n: int) -> float:
    """Median over 5 rounds of CPU microseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            fn()
        rounds.append((time.process_time() - start) / n * 1e6)
    return statistics.median(rounds)


def main() -> None:
    rows = [
        ("chat completion", 20_000, lambda: walk_chat(CHAT), lambda: typed_chat(CHAT, raw=False),
         lambda: typed_chat(CHAT, raw=True)),
        ("stream chunk (+ raw)", 20_000, lambda: walk_chunk(CHUNK), lambda: typed_chunk(CHUNK),
         None),
        ("embeddings 8x1536", 200, lambda: walk_embed(EMBED), lambda: typed_embed(EMBED), None),
    ]
    print(f"{'body':22} {'dict+walk us':>13} {'typed us':>9} {'ratio':>6} {'typed+raw us':>13}")
    for name, n, walk, typed, typed_raw in rows:
        w, t = per_call(walk, n), per_call(typed, n)
        tr = f"{per_call(typed_raw, n):13.2f}" if typed_raw else f"{'':>13}"
        print(f"{name:22} {w:13.2f} {t:9.2f} {t / w:6.2f} {tr}")


if __name__ == "__main__":
    main()

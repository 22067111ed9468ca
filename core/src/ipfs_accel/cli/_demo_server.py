"""The demo's fake APIs: success bodies shaped like each real API, and seeded faults.

One :class:`~ipfs_accel.testing.FaultServer` serves every backend. Each endpoint gets its
own base URL, ``<server>/ep/<endpoint-id>``, so the responder knows which endpoint a
request came through (and which key it must carry); the rest of the path picks the
protocol: ``/chat/completions`` (openai, groq, ovms /v3, tgi /v1), ``/embeddings``,
``/v1/messages`` (claude), ``:generateContent`` / ``:embedContent`` /
``:batchEmbedContents`` (gemini), ``/generate`` (tgi), ``/info`` and ``/embed`` (tei),
``/api/chat`` / ``/api/generate`` / ``/api/embed`` (ollama), ``/models/{id}/infer`` (llvm).
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from typing import Any

from ..testing import Action, Drop, RecordedRequest, Reply

__all__ = ["DemoResponder", "endpoint_key"]

_KEY = re.compile(r"demo-key-[a-z_]+-\d+")
_WORDS = ("retries", "queues", "backoff", "endpoints", "tokens", "streams", "keys", "stats")


def endpoint_key(endpoint_id: str) -> str:
    """The fake key of one demo endpoint (``demo-key-openai-1``); never printed."""
    return f"demo-key-{endpoint_id}"


def _reply_text(n: int) -> str:
    words = [_WORDS[(n + i) % len(_WORDS)] for i in range(3 + n % 5)]
    return "Demo reply about " + " ".join(words) + "."


def _vector(seed: int, dim: int = 8) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 - fake embeddings, not crypto
    return [round(rng.uniform(-1, 1), 4) for _ in range(dim)]


def _count_inputs(body: Any, key: str) -> int:
    value = body.get(key) if isinstance(body, dict) else None
    return len(value) if isinstance(value, list) else 1


def success(path: str, method: str, body: Any, n: int) -> Reply:  # noqa: PLR0911, PLR0912 - one per API
    """A 200 shaped as the API behind ``path`` answers."""
    text = _reply_text(n)
    tin, tout = 12 + n % 9, len(text.split())
    model = body.get("model", "demo-model") if isinstance(body, dict) else "demo-model"
    if path.endswith("/chat/completions"):
        return Reply(json={
            "id": f"chatcmpl-demo{n}", "object": "chat.completion", "created": 1_764_000_000,
            "model": model, "system_fingerprint": "fp_demo",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tin, "completion_tokens": tout,
                      "total_tokens": tin + tout},
        })
    if path.endswith("/embeddings"):
        count = _count_inputs(body, "input")
        return Reply(json={
            "object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": _vector(n + i)}
                     for i in range(count)],
            "usage": {"prompt_tokens": tin, "total_tokens": tin},
        })
    if path.endswith("/v1/messages"):
        return Reply(json={
            "id": f"msg_demo{n}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": tin, "output_tokens": tout},
        }, headers={"request-id": f"req_demo{n}"})
    if path.endswith(":generateContent"):
        return Reply(json={
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": tin, "candidatesTokenCount": tout,
                              "totalTokenCount": tin + tout},
            "modelVersion": "gemini-demo", "responseId": f"demo{n}",
        })
    if path.endswith(":batchEmbedContents"):
        count = _count_inputs(body, "requests")
        return Reply(json={"embeddings": [{"values": _vector(n + i)} for i in range(count)]})
    if path.endswith(":embedContent"):
        return Reply(json={"embedding": {"values": _vector(n)}})
    if path.endswith("/generate") and not path.endswith("/api/generate"):
        return Reply(json={"generated_text": text, "details": {
            "finish_reason": "eos_token", "generated_tokens": tout, "seed": None,
            "prefill": [], "tokens": []}},
            headers={"x-prompt-tokens": str(tin), "x-generated-tokens": str(tout)})
    if path.endswith("/info") and method == "GET":
        return Reply(json={"model_id": "demo/embedder", "model_dtype": "float32",
                           "model_type": {"embedding": {"pooling": "cls"}},
                           "max_concurrent_requests": 512, "max_input_length": 512,
                           "max_batch_tokens": 16384, "max_client_batch_size": 32,
                           "tokenization_workers": 1, "version": "1.5.0"})
    if path.endswith("/embed") and not path.endswith("/api/embed"):
        count = _count_inputs(body, "inputs")
        # TEI reports the tokens it embedded in a header, not in the body
        return Reply(json=[_vector(n + i) for i in range(count)],
                     headers={"x-compute-tokens": str(tin * count)})
    ollama = {"model": model, "created_at": "2026-11-27T12:00:00Z", "done": True,
              "done_reason": "stop", "total_duration": 2_000_000, "load_duration": 100_000,
              "prompt_eval_count": tin, "prompt_eval_duration": 500_000,
              "eval_count": tout, "eval_duration": 1_000_000}
    if path.endswith("/api/chat"):
        return Reply(json={**ollama, "message": {"role": "assistant", "content": text}})
    if path.endswith("/api/generate"):
        return Reply(json={**ollama, "response": text})
    if path.endswith("/api/embed"):
        count = _count_inputs(body, "input")
        return Reply(json={"model": model, "embeddings": [_vector(n + i) for i in range(count)],
                           "prompt_eval_count": tin})
    if path.endswith("/infer"):
        return Reply(json={"result": text, "model": model,
                           "usage": {"prompt_tokens": tin, "completion_tokens": tout}})
    return Reply(404, json={"error": {"message": f"demo server: no route {path}"}})


def _error_body(backend: str, status: int, message: str) -> dict[str, Any]:
    """An error body in the backend's own shape."""
    if backend == "claude":
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    if backend == "gemini":
        name = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
        return {"error": {"code": status, "message": message, "status": name}}
    if backend in ("ollama", "hf_tgi", "hf_tei", "ovms", "llvm"):
        return {"error": message}
    return {"error": {"message": message, "type": "server_error", "code": None}}


class DemoResponder:
    """Answers every request: a seeded fault some of the time, else the API's success body.

    Rates: ~10% 429 with ``Retry-After`` (or ``retry-after-ms``), ~5% 503 (529 for claude),
    ~5% 500, ~3% dropped connections. Counts what it injected and checks every request
    carries only its own endpoint's key.
    """

    def __init__(self, *, seed: int, retry_after: float = 0.2,
                 delay: tuple[float, float] = (0.02, 0.15)) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not crypto
        self._lock = threading.Lock()
        self._n = 0
        self.retry_after = retry_after
        self.delay = delay
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.key_violations: list[str] = []  # endpoint IDs that saw a foreign key

    def __call__(self, request: RecordedRequest) -> Action:
        with self._lock:
            self._n += 1
            n = self._n
            roll = self._rng.random()
            half = self._rng.random() < 0.5
            delay = self._rng.uniform(*self.delay)
            self.requests += 1
        parts = request.path.split("/", 3)  # "", "ep", "<endpoint-id>", "rest..."
        if len(parts) < 4 or parts[1] != "ep":
            return Reply(404, json={"error": {"message": "demo server: unknown endpoint"}})
        endpoint_id, path = parts[2], "/" + parts[3]
        backend = endpoint_id.rsplit("-", 1)[0]
        self._check_key(request, endpoint_id)
        fault = self._fault(backend, roll, half, delay)
        if fault is not None:
            return fault
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        reply = success(path, request.method, body, n)
        return Reply(reply.status, json=reply.json, headers=reply.headers, delay=delay)

    def _check_key(self, request: RecordedRequest, endpoint_id: str) -> None:
        seen = " ".join([*request.headers.values(), *request.query.values()])
        own = endpoint_key(endpoint_id)
        if any(key != own for key in _KEY.findall(seen)):
            with self._lock:
                self.key_violations.append(endpoint_id)

    def _fault(self, backend: str, roll: float, half: bool, delay: float) -> Action | None:
        if roll < 0.10:
            self.injected["429 rate limited"] += 1
            headers = ({"retry-after-ms": str(int(self.retry_after * 1000))} if half
                       else {"retry-after": f"{self.retry_after:g}"})
            return Reply(429, json=_error_body(backend, 429, "demo: rate limited"),
                         headers=headers, delay=delay / 2)
        if roll < 0.15:
            status = 529 if backend == "claude" else 503
            self.injected[f"{status} overloaded"] += 1
            return Reply(status, json=_error_body(backend, status, "demo: overloaded"),
                         delay=delay / 2)
        if roll < 0.20:
            self.injected["500 server error"] += 1
            return Reply(500, json=_error_body(backend, 500, "demo: internal error"),
                         delay=delay / 2)
        if roll < 0.23:
            self.injected["dropped connection"] += 1
            return Drop()
        return None

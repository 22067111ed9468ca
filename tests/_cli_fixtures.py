"""Helpers for the CLI tests: a throwaway plugin installed by path, a fake API, the command.

The plugin ``clitest`` (OpenAI-shaped, needs a key from ``CLITEST_API_KEY``) and a broken
one are made visible to the subprocess through a ``*.dist-info`` folder on ``PYTHONPATH``:
entry-point discovery finds them exactly as it finds installed plugins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PLUGIN = '''
from typing import Any

from ipfs_accel import (
    BackendInfo, Call, ChatResult, Classification, EmbedResult, EndpointConfig, Event,
    Exchange, Failure, Response, StreamChunk, Usage, default_classification, hookimpl,
)


@hookimpl
def conformance_case() -> Any:
    # Deliberately wrong: the plugin sends its key as a bearer token, the case says x-api-key,
    # so the report's key check must fail for this backend.
    from ipfs_accel.testing import Case, Reply

    body = {"model": "m-1", "choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    return Case(backend="clitest", success=Reply(200, json=body), tokens=(2, 1),
                auth=("x-api-key", "{key}"))


@hookimpl
def backend_info() -> BackendInfo:
    return BackendInfo(
        name="clitest", description="CLI test backend", default_base_url="http://127.0.0.1:9",
        api_key_env=("CLITEST_API_KEY",), api_key_required=True, default_model="m-1",
        operations=frozenset({"chat", "embed", "stream_chat"}),
        features={"chat": frozenset({"tools", "json_schema"}), "stream_chat": frozenset({"tools"}),
                  "embed": frozenset()},
    )


def _chat(resp: Response) -> ChatResult:
    choice = resp.data["choices"][0]
    return ChatResult(text=choice["message"]["content"], finish_reason=choice["finish_reason"],
                      model=resp.data["model"])


def _embed(resp: Response) -> EmbedResult:
    return EmbedResult(vectors=[r["embedding"] for r in resp.data["data"]])


def _event(event: Event) -> Any:
    if event.data == "[DONE]":
        return StreamChunk(done=True)
    choices = event.json["choices"]
    return StreamChunk(delta=choices[0]["delta"].get("content") or "") if choices else None


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    headers = {"authorization": f"Bearer {endpoint.api_key.reveal()}"}
    body: dict[str, Any] = {"model": call.model, **call.params}
    if call.operation == "embed":
        body["input"] = call.inputs
        return Exchange(path="/embeddings", json=body, headers=headers, parse=_embed)
    body["messages"] = call.messages
    if call.operation == "stream_chat":
        body["stream"] = True
        return Exchange(path="/chat/completions", json=body, headers=headers, stream="sse",
                        parse_event=_event)
    return Exchange(path="/chat/completions", json=body, headers=headers, parse=_chat)


@hookimpl
def parse_usage(operation: str, data: Any) -> Usage | None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    timing = {k: float(v) for k, v in usage.items() if k.endswith("_time")}
    return Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"],
                 cache_read_tokens=usage.get("cached_tokens", 0), details=timing)


@hookimpl
def classify_error(failure: Failure) -> Classification:
    return default_classification(failure)
'''


def make_site(root: Path) -> Path:
    """A folder holding the ``clitest`` plugin and a broken one, as if installed."""
    site = root / "site"
    site.mkdir()
    (site / "clitest_plugin.py").write_text(PLUGIN)
    info = site / "ipfs_accel_clitest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ipfs-accel-clitest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ipfs_accel.backends]\nclitest = clitest_plugin\nbroken = clitest_no_such_module\n")
    return site


def cli_env(site: Path, **extra: str) -> dict[str, str]:
    """The subprocess environment: the test plugin visible, no key set, a wide terminal."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLITEST_API_KEY", "IPFS_ACCEL_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def script() -> str:
    """The installed ``ipfs-accel`` console script (next to this interpreter)."""
    path = Path(sys.executable).parent / "ipfs-accel"
    assert path.exists(), "ipfs-accel is not installed: pip install -e core"
    return str(path)


def cli(args: list[str], *, env: dict[str, str], stdin: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``ipfs-accel ARGS`` through the console script and capture its output."""
    return subprocess.run(
        [script(), *args], env=env, input=stdin, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


class FakeAPI:
    """An OpenAI-shaped loopback server: chat (JSON or SSE), embeddings; records requests.

    ``delay`` slows every answer; ``status`` makes every answer that error (with the
    request's bearer token echoed in the message, to test scrubbing). A chat whose last
    message is ``hold`` waits until the test sets ``release`` (``held`` is set when it
    arrives); one whose last message is in ``fail`` gets a 400.
    """

    def __init__(self, *, delay: float = 0.0, status: int = 200, hold: str | None = None,
                 fail: set[str] | None = None) -> None:
        self.delay = delay
        self.status = status
        self.hold = hold
        self.held = threading.Event()
        self.release = threading.Event()
        self.fail = fail if fail is not None else set()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with api.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    api.requests.append({"path": self.path, "headers": headers,
                                         "body": body})
                if api.delay:
                    time.sleep(api.delay)
                last = (body.get("messages") or [{}])[-1].get("content")
                if api.hold is not None and last == api.hold:
                    api.held.set()
                    api.release.wait(timeout=120)  # a safety net: tests set it well before
                if last in api.fail:
                    self._send(400, {"error": {"message": f"refused {last}"}})
                elif api.status != 200:
                    token = self.headers.get("authorization", "")
                    self._send(api.status, {"error": {"message": f"bad key {token}"}})
                elif self.path.endswith("/embeddings"):
                    data = [{"index": i, "embedding": [0.5, float(i)]}
                            for i in range(len(body["input"]))]
                    self._send(200, {"data": data, "usage": {"prompt_tokens": 3,
                                                             "completion_tokens": 0}})
                elif body.get("stream"):
                    events = [{"choices": [{"delta": {"content": w}}]}
                              for w in ("Hello", " from", " fake")]
                    raw = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
                    raw += "data: [DONE]\n\n"
                    self._send(200, raw.encode(), ctype="text/event-stream")
                else:
                    text = "echo: " + str(body["messages"][-1]["content"])
                    self._send(200, {
                        "model": body["model"],
                        "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 7,
                                  "cached_tokens": 2, "queue_time": 0.25}})

            def _send(self, status: int, payload: Any, ctype: str = "application/json") -> None:
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeAPI:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

"""Tests proving the OpenAPI mock-server harness (mockserver.py) works.

For every public spec: start Steady through the harness, send one valid
request to a main operation (must be accepted: 2xx, JSON body, no
diagnostics) and one invalid request (must be rejected). Also covers
prefix mounting, the KServe fix-up, streaming, rejection helpers, skips and
process cleanup. Everything skips with a reason when the specs folder or
``node_modules`` (``npm ci``) is missing.

Requests go through urllib so the harness tests need no HTTP client
package; one test checks the helpers against httpx/httpx2 responses.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ipfs_accel.testing import import_or_skip

# mockserver.py sits beside this file; make it importable whatever pytest's
# import mode (no __init__.py files in tests/).
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import mockserver as ms  # noqa: E402
from mockserver import MockPool, mock_pool  # noqa: E402, F401  (registers the session fixture)

pytestmark = pytest.mark.conformance


@pytest.fixture
def pool(mock_pool: MockPool) -> MockPool:  # noqa: F811
    """The harness's session-scoped ``mock_pool``: one mock per spec."""
    return mock_pool


# ---------------------------------------------------------------------------
# Minimal HTTP client (stdlib) returning an ms.ResponseLike
# ---------------------------------------------------------------------------


@dataclass
class Resp:
    status_code: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class _Headers(dict[str, str]):
    """Case-insensitive read access, like httpx.Headers."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Resp:
    data = None
    hdrs = {"Accept": "*/*", **(headers or {})}
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, h = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, h = e.code, e.read(), e.headers
    return Resp(
        status, _Headers({k.lower(): v for k, v in h.items()}), raw.decode("utf-8", "replace")
    )


# ---------------------------------------------------------------------------
# One valid + one invalid request per spec
# ---------------------------------------------------------------------------

CHAT = {"model": "some-model", "messages": [{"role": "user", "content": "Hello"}]}


@dataclass(frozen=True)
class Case:
    id: str
    spec: str
    method: str
    path: str
    valid: dict[str, Any]
    invalid: dict[str, Any]
    invalid_code: str  # Steady diagnostic expected for the invalid request
    prefix: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    expect_keys: tuple[str, ...] = ()  # keys of the generated JSON object body


CASES = [
    Case(
        "openai",
        "openai/openapi.transformed.yml",
        "POST",
        "/chat/completions",
        CHAT,
        {"messages": CHAT["messages"]},
        "E3007",
        headers={"Authorization": "Bearer sk-test"},
        expect_keys=("id", "object", "created", "model", "choices"),
    ),
    Case(
        "ovms-v3-openai",
        "openai/openapi.transformed.yml",
        "POST",
        "/chat/completions",
        CHAT,
        {"model": "m", "messages": "Hello"},
        "E3008",
        prefix="/v3",
        expect_keys=("choices",),
    ),
    Case(
        "anthropic",
        "anthropic/openapi.yaml",
        "POST",
        "/v1/messages",
        {
            "model": "claude-test",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hello"}],
        },
        {"model": "claude-test", "messages": [{"role": "user", "content": "Hello"}]},
        "E3007",
        headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
        expect_keys=("id", "type", "role", "content", "model", "stop_reason", "usage"),
    ),
    Case(
        "gemini-native",
        "gemini/gemini-native.openapi.json",
        "POST",
        "/v1beta/models/gemini-2.0-flash:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]},
        {"generationConfig": {"maxOutputTokens": 8}},
        "E3007",
        headers={"x-goog-api-key": "test-key"},
        expect_keys=(),  # GenerateContentResponse has no required props: body is {}
    ),
    Case(
        "gemini-openai-compat",
        "gemini/gemini-openai-compat.openapi.json",
        "POST",
        "/chat/completions",
        CHAT,
        {"model": "gemini-2.0-flash"},
        "E3007",
        prefix="/v1beta/openai",  # mounted at its real server base path
        headers={"Authorization": "Bearer test-key"},
        expect_keys=("id", "choices"),
    ),
    Case(
        "groq",
        "groq/openapi.yaml",
        "POST",
        "/openai/v1/chat/completions",
        CHAT,
        {"model": "llama-3.1-8b-instant"},
        "E3007",
        headers={"Authorization": "Bearer gsk-test"},
        expect_keys=("id", "choices"),
    ),
    Case(
        "hf-tgi",
        "hf_tgi/openapi.json",
        "POST",
        "/generate",
        {"inputs": "Hello", "parameters": {"max_new_tokens": 8}},
        {"parameters": {"max_new_tokens": 8}},
        "E3007",
        expect_keys=("generated_text",),
    ),
    Case(
        "hf-tei",
        "hf_tei/openapi.json",
        "POST",
        "/embed",
        {"inputs": "Hello"},
        {"truncate": True},
        "E3007",
    ),
    Case(
        "ollama",
        "ollama/openapi.yaml",
        "POST",
        "/api/chat",
        {**CHAT, "stream": False},
        {"model": "llama3.2"},
        "E3007",
        expect_keys=("model", "message", "done"),
    ),
    Case(
        "kserve-v2",
        "ovms/rest_predict_v2.yaml",
        "POST",
        "/v2/models/my_model/infer",  # unversioned path: needs the KServe fix-up
        {"inputs": [{"name": "input0", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]},
        {"inputs": [{"name": "input0", "datatype": "FP32", "data": [1.0]}]},
        "E3007",
        expect_keys=("model_name", "outputs"),
    ),
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    return c


def test_valid_request_accepted(case: Case, pool: MockPool) -> None:
    mock = pool.get(case.spec, prefix=case.prefix)
    r = request(case.method, mock.url(case.path), case.valid, case.headers)
    ms.assert_not_rejected(r)
    assert r.headers.get("content-type", "").startswith("application/json")
    assert r.text.strip(), "expected a response body"
    body = r.json()
    assert isinstance(body, dict | list)
    if case.expect_keys:
        assert isinstance(body, dict)
        assert set(case.expect_keys) <= body.keys(), body
    assert r.headers.get("x-steady-matched-path", "").startswith(case.prefix)


def test_invalid_request_rejected(case: Case, pool: MockPool) -> None:
    mock = pool.get(case.spec, prefix=case.prefix)
    r = request(case.method, mock.url(case.path), case.invalid, case.headers)
    ms.assert_rejected(r)
    assert r.status_code == 400
    assert r.headers.get("x-steady-request-valid") == "false"
    assert any(d.startswith(case.invalid_code) for d in ms.diagnostics(r)), ms.diagnostics(r)
    body = r.json()
    assert body["error"] == "Validation failed"
    assert body["steady"]["valid"] is False
    with pytest.raises(AssertionError, match="rejected"):
        ms.assert_not_rejected(r)


# ---------------------------------------------------------------------------
# Routing quirks: servers base path, prefix, KServe fix-up
# ---------------------------------------------------------------------------


def test_servers_base_path_is_ignored(pool: MockPool) -> None:
    """The openai spec's server is https://api.openai.com/v1, yet Steady
    serves /chat/completions at the root and 404s /v1/chat/completions."""
    mock = pool.get("openai/openapi.transformed.yml")
    assert mock.base_url == mock.root_url
    r = request("POST", mock.root_url + "/v1/chat/completions", CHAT)
    ms.assert_rejected(r)
    assert r.status_code == 404
    assert ms.diagnostics(r)[0].startswith("E2001")


def test_prefix_only_serves_prefixed_paths(pool: MockPool) -> None:
    mock = pool.get("openai/openapi.transformed.yml", prefix="v3/")
    assert mock.prefix == "/v3"
    assert mock.base_url.endswith("/v3")
    ms.assert_not_rejected(
        request("POST", mock.root_url + "/v3/embeddings", {"model": "m", "input": "x"})
    )
    r = request("POST", mock.root_url + "/chat/completions", CHAT)
    assert r.status_code == 404 and ms.is_rejected(r)
    # Steady's own endpoints stay at the root
    assert request("GET", mock.root_url + ms.HEALTH_PATH).status_code == 200


def test_wrong_method_is_405(pool: MockPool) -> None:
    mock = pool.get("ollama/openapi.yaml")
    r = request("DELETE", mock.url("/api/chat"))
    assert r.status_code == 405 and ms.is_rejected(r)


def test_kserve_spec_unpatched_needs_dollar_paths() -> None:
    """As shipped, the KServe spec's ${MODEL_NAME} templates only match a
    literal '$' and there is no unversioned path: why the fix-up exists."""
    spec = ms.require_spec("ovms/rest_predict_v2.yaml")
    body = CASES[-1].valid
    with ms.start_mock(spec, transform=None) as mock:
        assert ms.is_rejected(request("POST", mock.url("/v2/models/m/versions/1/infer"), body))
        assert ms.is_rejected(request("POST", mock.url("/v2/models/m/infer"), body))
        ms.assert_not_rejected(request("POST", mock.url("/v2/models/$m/versions/$1/infer"), body))


def test_kserve_fixup_paths(pool: MockPool) -> None:
    mock = pool.get("ovms/rest_predict_v2.yaml")
    body = CASES[-1].valid
    for path in ("/v2/models/m/versions/1/infer", "/v2/models/m/infer"):
        ms.assert_not_rejected(request("POST", mock.url(path), body))
    for path in (
        "/v2",
        "/v2/",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/m",
        "/v2/models/m/ready",
    ):
        ms.assert_not_rejected(request("GET", mock.url(path)))


def test_fixup_for() -> None:
    assert ms.fixup_for("/x/specs/ovms/rest_predict_v2.yaml") is ms.fix_kserve_v2_paths
    assert ms.fixup_for("openai/openapi.transformed.yml") is None


# ---------------------------------------------------------------------------
# Non-blocking diagnostics
# ---------------------------------------------------------------------------


def test_composition_and_range_errors_pass_with_diagnostics(pool: MockPool) -> None:
    """Steady does not reject oneOf mismatches (E3012) nor range notes
    (E4004): 200 + X-Steady-Request-Valid: true, but the diagnostics are in
    the X-Steady-Error-* headers, and assert_not_rejected() fails on them."""
    mock = pool.get("openai/openapi.transformed.yml")
    bad_role = {"model": "m", "messages": [{"role": "bogus", "content": "hi"}]}
    hot = {**CHAT, "temperature": 7}
    for body, code in ((bad_role, "E3012"), (hot, "E4004")):
        r = request("POST", mock.url("/chat/completions"), body)
        assert r.status_code == 200 and not ms.is_rejected(r)
        assert ms.diagnostics(r) and ms.diagnostics(r)[0].startswith(code)
        with pytest.raises(AssertionError, match="accepted the request but reported"):
            ms.assert_not_rejected(r)
        ms.assert_not_rejected(r, allow_diagnostics=True)


def test_security_schemes_not_enforced(pool: MockPool) -> None:
    """Declared security (bearer / x-goog-api-key) is not checked."""
    mock = pool.get("gemini/gemini-native.openapi.json")
    r = request("POST", mock.url("/v1beta/models/m:generateContent"), CASES[3].valid)
    ms.assert_not_rejected(r)


# ---------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------

FAST_STREAM = {"X-Steady-Stream-Count": "3", "X-Steady-Stream-Interval-Ms": "0"}


def _sse_events(text: str) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        ev: dict[str, str] = {}
        for line in block.splitlines():
            k, _, v = line.partition(":")
            ev[k] = v.lstrip(" ")
        events.append(ev)
    return events


def test_openai_sse_stream(pool: MockPool) -> None:
    mock = pool.get("openai/openapi.transformed.yml")
    hdrs = {"Accept": "text/event-stream", **FAST_STREAM}
    r = request("POST", mock.url("/chat/completions"), {**CHAT, "stream": True}, hdrs)
    ms.assert_not_rejected(r)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers.get("x-steady-streaming") == "true"
    events = _sse_events(r.text)
    assert len(events) == 4
    for ev in events[:3]:
        assert ev["event"] == "message"
        assert json.loads(ev["data"])["object"] == "chat.completion.chunk"
    # Steady's terminator, not OpenAI's "data: [DONE]"
    assert events[-1] == {"event": "done", "data": "{}"}


def test_stream_flag_alone_gives_json(pool: MockPool) -> None:
    """Response media type follows the Accept header, not the body."""
    mock = pool.get("openai/openapi.transformed.yml")
    r = request("POST", mock.url("/chat/completions"), {**CHAT, "stream": True})
    assert r.headers["content-type"].startswith("application/json")


def test_tgi_generate_stream_is_sse_without_accept(pool: MockPool) -> None:
    mock = pool.get("hf_tgi/openapi.json")
    r = request("POST", mock.url("/generate_stream"), {"inputs": "hi"}, FAST_STREAM)
    ms.assert_not_rejected(r)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(r.text)
    assert "token" in json.loads(events[0]["data"])
    assert events[-1]["event"] == "done"


def test_gemini_stream_generate_content_sse(pool: MockPool) -> None:
    mock = pool.get("gemini/gemini-native.openapi.json")
    url = mock.url("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
    r = request("POST", url, CASES[3].valid, FAST_STREAM)
    ms.assert_not_rejected(r)
    assert r.headers["content-type"].startswith("text/event-stream")
    # the spec types each event as a plain string, so data is a JSON string
    assert isinstance(json.loads(_sse_events(r.text)[0]["data"]), str)
    missing_alt = request("POST", url.split("?")[0], CASES[3].valid)
    assert ms.diagnostics(missing_alt)[0].startswith("E3002")


def test_ollama_ndjson_stream(pool: MockPool) -> None:
    mock = pool.get("ollama/openapi.yaml")
    hdrs = {"Accept": "application/x-ndjson", **FAST_STREAM}
    r = request("POST", mock.url("/api/chat"), CHAT, hdrs)
    ms.assert_not_rejected(r)
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    assert len(lines) == 3
    assert all("_stream" in x for x in lines)


@pytest.mark.parametrize(
    ("spec", "path", "body", "headers"),
    [
        ("anthropic/openapi.yaml", "/v1/messages", CASES[2].valid, CASES[2].headers),
        ("groq/openapi.yaml", "/openai/v1/chat/completions", CHAT, {}),
    ],
    ids=["anthropic", "groq"],
)
def test_no_sse_in_spec_gives_json(
    pool: MockPool, spec: str, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    mock = pool.get(spec)
    hdrs = {"Accept": "text/event-stream", **headers}
    r = request("POST", mock.url(path), {**body, "stream": True}, hdrs)
    ms.assert_not_rejected(r)
    assert r.headers["content-type"].startswith("application/json")


# ---------------------------------------------------------------------------
# Helpers, skips and lifecycle
# ---------------------------------------------------------------------------


def _fake(status: int, headers: dict[str, str], text: str = "{}") -> Resp:
    return Resp(status, _Headers({k.lower(): v for k, v in headers.items()}), text)


def test_helpers_on_fake_responses() -> None:
    ok = _fake(200, {"X-Steady-Request-Valid": "true", "X-Steady-Error-Count": "0"})
    assert not ms.is_rejected(ok) and ms.diagnostics(ok) == []
    ms.assert_not_rejected(ok)
    with pytest.raises(AssertionError):
        ms.assert_rejected(ok)
    bad = _fake(
        400,
        {
            "X-Steady-Request-Valid": "false",
            "X-Steady-Error-Count": "1",
            "X-Steady-Error-1-Code": "E3007",
            "X-Steady-Error-1-Path": "body",
            "X-Steady-Error-1-Message": "Missing required property: model",
        },
    )
    assert ms.is_rejected(bad)
    assert ms.diagnostics(bad) == ["E3007 at body: Missing required property: model"]
    ms.assert_rejected(bad)
    # no Steady headers: fall back on the status code
    assert ms.is_rejected(Resp(404, {}, "")) and not ms.is_rejected(Resp(201, {}, ""))
    with pytest.raises(AssertionError):
        ms.assert_not_rejected(Resp(500, {}, "boom"))


def test_helpers_with_httpx_response(pool: MockPool) -> None:
    try:
        httpx = importlib.import_module("httpx2")  # same API as httpx
    except ImportError:
        httpx = import_or_skip("httpx")
    mock = pool.get("hf_tei/openapi.json")
    with httpx.Client(base_url=mock.base_url, timeout=30) as client:
        ms.assert_not_rejected(client.post("/embed", json={"inputs": ["a", "b"]}))
        r = client.post("/embed", json={})
        ms.assert_rejected(r)
        assert ms.diagnostics(r)[0].startswith("E3007")


@pytest.fixture
def user_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a CI run: missing components skip."""
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("user_machine")
def test_require_spec_skips_when_specs_dir_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-specs"
    monkeypatch.setenv(ms.SPECS_ENV_VAR, str(missing))
    assert ms.specs_dir() == missing.resolve()
    with pytest.raises(pytest.skip.Exception, match=r"specs folder not found: .*no-specs"):
        ms.require_spec("openai/openapi.transformed.yml")


@pytest.mark.usefixtures("user_machine")
def test_require_spec_skips_when_file_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ms.SPECS_ENV_VAR, str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"spec not found: .*llvm/openapi\.yaml"):
        ms.require_spec("llvm/openapi.yaml")


@pytest.mark.usefixtures("user_machine")
def test_require_mock_binary_skips_with_npm_ci_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ms, "STEADY_BIN", tmp_path / "node_modules" / ".bin" / "steady")
    with pytest.raises(pytest.skip.Exception, match="npm ci"):
        ms.require_mock_binary()
    with pytest.raises(pytest.skip.Exception, match="npm ci"):
        ms.start_mock(tmp_path / "whatever.yaml")


def test_missing_specs_or_mock_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With CI=true a missing specs folder, spec file or mock server fails the test."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv(ms.SPECS_ENV_VAR, str(tmp_path / "no-specs"))
    with pytest.raises(pytest.fail.Exception, match=r"specs folder not found: .*CI=true"):
        ms.require_spec("openai/openapi.transformed.yml")
    monkeypatch.setenv(ms.SPECS_ENV_VAR, str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"spec not found: .*CI=true"):
        ms.require_spec("llvm/openapi.yaml")
    monkeypatch.setattr(ms, "STEADY_BIN", tmp_path / "node_modules" / ".bin" / "steady")
    with pytest.raises(pytest.fail.Exception, match=r"npm ci.*CI=true"):
        ms.require_mock_binary()


def test_default_specs_dir_is_beside_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ms.SPECS_ENV_VAR, raising=False)
    assert ms.specs_dir() == (ms.REPO_ROOT.parent / "shared" / "specs").resolve()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_terminates_process_group() -> None:
    spec = ms.require_spec("hf_tei/openapi.json")
    with ms.start_mock(spec) as mock:
        pgid = mock.process.pid
        assert mock.running and _group_alive(pgid)
        assert mock.startup_seconds < 30
        health = json.loads(request("GET", mock.root_url + ms.HEALTH_PATH).text)
        assert health["status"] == "healthy"
        tmpdir = mock.log_path.parent
    assert mock.process.poll() is not None
    assert not _group_alive(pgid)
    assert not tmpdir.exists()


def test_stop_after_launcher_killed_hard() -> None:
    """SIGKILL on the node launcher alone must not leave the binary behind
    once stop() runs."""
    spec = ms.require_spec("hf_tei/openapi.json")
    mock = ms.start_mock(spec)
    try:
        os.kill(mock.process.pid, signal.SIGKILL)
        mock.process.wait(timeout=5)
    finally:
        mock.stop()
    assert not _group_alive(mock.process.pid)


def test_start_failure_raises(tmp_path: Path) -> None:
    ms.require_mock_binary()
    broken = tmp_path / "broken.json"
    broken.write_text('{"openapi": "3.1.0", "paths": ')
    with pytest.raises(ms.MockStartError, match="exited"):
        ms.start_mock(broken, transform=None, startup_timeout=30)

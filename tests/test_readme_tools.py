"""The README's tool loop, stream and structured-output examples run as written, against a
loopback server answering as the APIs do (the plugins' own canned answers)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ipfs_accel.testing import FaultServer, Reply

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Tools, structured output and images", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def _run(code: str, scope: dict[str, Any]) -> dict[str, Any]:
    exec(compile(code, str(README), "exec"), scope)
    return scope


def test_readme_tool_loop_and_stream_run_against_claude(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The loop calls the tool once, sends the turn back and prints the answer; the stream
    example reads the whole answer from stream.result."""
    from ipfs_accel_claude import conformance_case  # noqa: PLC0415

    case = conformance_case()
    assert case.tools is not None and case.tools.stream is not None
    loop, stream, _ = _snippets()
    with FaultServer() as server:
        server.script([case.tools.reply, case.success, case.stream])
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        scope = _run(loop, {})
        assert capsys.readouterr().out.strip() == case.text
        _run(stream, scope)
        bodies = [r.json() for r in server.requests]
    assert scope["result"].text == case.text and scope["result"].usage.total_tokens > 0
    sent_back = json.dumps(bodies[1])
    assert '"tool_use"' in sent_back and '"tool_result"' in sent_back
    assert "Paris" in sent_back and "sky" in sent_back  # the tool's answer went back


def test_readme_structured_output_runs_against_gemini(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The schema goes out as Gemini's responseJsonSchema; the printed field comes from the
    JSON answer."""
    from ipfs_accel_gemini import conformance_case  # noqa: PLC0415

    success = conformance_case().success
    assert isinstance(success, Reply) and success.json is not None
    body = copy.deepcopy(success.json)
    body["candidates"][0]["content"]["parts"] = [{"text": '{"city": "Paris", "rain": true}'}]
    *_, structured = _snippets()
    with FaultServer() as server:
        server.script([Reply(200, json=body)])
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        # the README goes on from the first example, which imported json and Registry
        _run("import json\nfrom ipfs_accel import Registry\n" + structured, {})
        sent = server.requests[0].json()
    assert capsys.readouterr().out.strip() == "True"
    config = sent["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"] == ["city", "rain"]

"""A batch part that does not fit inline goes as a file: the choice, the file's lines, and
the chain of exchanges (upload start, upload, create from ``inputConfig.fileName``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ipfs_accel_gemini
import msgspec
import pytest
from _gemini_fixtures import BASE, KEY
from ipfs_accel import (
    BatchLine,
    BatchSubmit,
    Call,
    EndpointConfig,
    EndpointSettings,
    Exchange,
    InvokeResult,
    Response,
    Secret,
    VendorBatch,
)
from ipfs_accel_gemini._batch_case import operation
from ipfs_accel_gemini._batch_file import INLINE_MAX_BYTES, INLINE_MAX_REQUESTS

CONFIG = EndpointConfig(endpoint_id="e1", base_url=BASE, api_key=Secret(KEY), model=None,
                        options=None, settings=EndpointSettings())
FILED = msgspec.structs.replace(
    CONFIG, options=ipfs_accel_gemini.GeminiOptions(batch_input="file"))
UPLOAD_URL = f"{BASE}/upload/v1beta/files?upload_id=u-1&upload_protocol=resumable"
CREATE = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"


def _exchange(step: Any, config: EndpointConfig = FILED) -> Exchange:
    exchange = ipfs_accel_gemini.batch_exchange(step, config)
    assert exchange is not None
    return exchange


def _chat(text: str) -> Call:
    return Call(operation="chat", messages=[{"role": "user", "content": text}],
                model="gemini-2.5-flash", params={"temperature": 0.3})


def _part(tmp_path: Path, n: int = 3, *, count: int | None = None) -> BatchSubmit:
    lines = [_exchange(BatchLine(key=f"k{i}", call=_chat(f"q{i}"))).json for i in range(n)]
    path = tmp_path / "part-1.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(line) + b"\n" for line in lines))
    return BatchSubmit(lines=path, count=n if count is None else count, operation="chat",
                       model="gemini-2.5-flash", label="night-1")


def _parse(exchange: Exchange, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    assert exchange.parse is not None
    data = body
    if body is not None and exchange.response_type is not None:
        data = msgspec.convert(body, exchange.response_type)
    content = b"" if body is None else json.dumps(body).encode()
    return exchange.parse(Response(status=200, headers=headers or {}, content=content,
                                   data=data))


def _upload(tmp_path: Path, url: str = UPLOAD_URL) -> Exchange:
    started = _parse(_exchange(_part(tmp_path)), headers={"X-Goog-Upload-URL": url})
    assert isinstance(started, Exchange)
    return started


def test_the_start_declares_the_file_and_carries_the_key(tmp_path: Path) -> None:
    """The start: the Files API's resumable protocol, the file's size and type declared,
    the display name the part's label, the key in its header."""
    start = _exchange(_part(tmp_path))
    assert (start.method, start.path) == ("POST", "/upload/v1beta/files")
    assert start.json == {"file": {"displayName": "night-1"}}
    size = (tmp_path / "part-1.file.jsonl").stat().st_size
    assert start.headers == {
        "x-goog-api-key": KEY, "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start", "x-goog-upload-header-content-length": str(size),
        "x-goog-upload-header-content-type": "jsonl"}


def test_the_file_holds_each_request_under_its_key(tmp_path: Path) -> None:
    """Each line is ``{"key", "request"}``, the request the online call's, in order."""
    _exchange(_part(tmp_path))
    raw = (tmp_path / "part-1.file.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    rows = [json.loads(line) for line in raw.splitlines()]
    assert [row["key"] for row in rows] == ["k0", "k1", "k2"]
    assert all(set(row) == {"key", "request"} for row in rows)
    assert rows[1]["request"] == ipfs_accel_gemini.send(_chat("q1"), CONFIG).json


def test_the_upload_sends_the_file_to_the_url_given_without_the_key(tmp_path: Path) -> None:
    """The upload: to the start's x-goog-upload-url (a header of any case), upload and
    finalize at offset 0, the file's bytes as they were declared; no key with it."""
    upload = _upload(tmp_path)
    assert (upload.method, upload.path) == ("POST", UPLOAD_URL)
    assert upload.headers == {"x-goog-upload-command": "upload, finalize",
                              "x-goog-upload-offset": "0"}
    assert upload.body is not None
    sent = b"".join(upload.body.chunks())
    assert sent == (tmp_path / "part-1.file.jsonl").read_bytes()
    assert upload.body.length() == len(sent)


def test_the_batch_is_created_from_the_uploaded_file(tmp_path: Path) -> None:
    """The upload's answer names the file; the batch is created from it
    (``inputConfig.fileName``), with the key, and its answer read as a batch."""
    create = _parse(_upload(tmp_path), {"file": {"name": "files/in-1", "mimeType": "jsonl",
                                                 "sizeBytes": "120", "state": "ACTIVE"}})
    assert isinstance(create, Exchange)
    assert (create.method, create.path) == ("POST", CREATE)
    assert create.json == {"batch": {"displayName": "night-1",
                                     "inputConfig": {"fileName": "files/in-1"}}}
    assert create.headers == {"x-goog-api-key": KEY}
    out = _parse(create, operation("b1", "JOB_STATE_PENDING", (("k0", "completed"),)))
    assert isinstance(out, InvokeResult) and isinstance(out.data, VendorBatch)
    assert (out.data.id, out.data.state) == ("batches/b1", "validating")


@pytest.mark.parametrize("url", [
    "https://uploads.example.com/upload/v1beta/files?upload_id=u-1",
    "http://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=u-1",
    "https://generativelanguage.googleapis.com:8443/upload/v1beta/files?upload_id=u-1",
    "//uploads.example.com/upload/v1beta/files?upload_id=u-1",
])
def test_an_upload_url_elsewhere_is_refused(tmp_path: Path, url: str) -> None:
    """An upload URL on another scheme, host or port is not followed; the refusal names
    the hosts, not the URL (it carries the upload's ID)."""
    start = _exchange(_part(tmp_path))
    with pytest.raises(ValueError, match="not on the endpoint's host") as info:
        _parse(start, headers={"x-goog-upload-url": url})
    assert "u-1" not in str(info.value)


def test_an_upload_path_is_taken_on_the_endpoints_origin(tmp_path: Path) -> None:
    upload = _upload(tmp_path, "/upload/v1beta/files?upload_id=u-1")
    assert upload.path == f"{BASE}/upload/v1beta/files?upload_id=u-1"


def test_a_start_without_an_upload_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x-goog-upload-url"):
        _parse(_exchange(_part(tmp_path)), headers={"content-type": "text/plain"})


def test_a_retried_start_writes_the_file_once(tmp_path: Path) -> None:
    step = _part(tmp_path)
    _exchange(step)
    written = tmp_path / "part-1.file.jsonl"
    before = written.stat().st_mtime_ns
    _exchange(step)
    assert written.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-1.file.jsonl", "part-1.jsonl"]


def test_a_small_part_goes_inline(tmp_path: Path) -> None:
    """By default a part that fits goes inline, in one exchange."""
    exchange = _exchange(_part(tmp_path), CONFIG)
    assert exchange.path == CREATE
    assert not (tmp_path / "part-1.file.jsonl").exists()


def test_more_calls_than_inline_takes_go_as_a_file(tmp_path: Path) -> None:
    assert _exchange(_part(tmp_path, count=INLINE_MAX_REQUESTS), CONFIG).path == CREATE
    step = _part(tmp_path, count=INLINE_MAX_REQUESTS + 1)
    assert _exchange(step, CONFIG).path == "/upload/v1beta/files"


def _sized(tmp_path: Path, body: int) -> BatchSubmit:
    """A one-call part whose inline body (envelope and line) is ``body`` bytes."""
    label = "night-1"
    envelope = len(b'{"batch":{"displayName":"' + label.encode()
                   + b'","inputConfig":{"requests":{"requests":[' + b"]}}}}")
    base = b'{"request":{"contents":[{"role":"user","parts":[{"text":""}]}]},' \
           b'"metadata":{"key":"k"}}'
    pad = body - envelope - len(base) - 1  # the line's newline counts as its separator
    line = base.replace(b'"text":""', b'"text":"' + b"x" * pad + b'"')
    path = tmp_path / "part-1.jsonl"
    path.write_bytes(line + b"\n")
    return BatchSubmit(lines=path, count=1, operation="chat", model="gemini-2.5-flash",
                       label=label)


def test_a_body_of_20_mb_goes_as_a_file(tmp_path: Path) -> None:
    """Inline while the body is under 20 MB; at 20 MB the part is uploaded."""
    assert _exchange(_sized(tmp_path, INLINE_MAX_BYTES - 1), CONFIG).path == CREATE
    assert _exchange(_sized(tmp_path, INLINE_MAX_BYTES), CONFIG).path == "/upload/v1beta/files"
    rows = (tmp_path / "part-1.file.jsonl").read_bytes().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["key"] == "k"


def test_no_rendering_of_the_chain_shows_the_key(tmp_path: Path) -> None:
    start = _exchange(_part(tmp_path))
    upload = _parse(start, headers={"x-goog-upload-url": UPLOAD_URL})
    create = _parse(upload, {"file": {"name": "files/in-1"}})
    for exchange in (start, upload, create):
        assert KEY not in repr(exchange) and KEY not in exchange.path

"""Batch jobs sent as a file, through the core: upload start and upload, the batch created
from the file, polls, and the answers downloaded from its responsesFile (read again from
where a cut download broke off), against a scripted Files + Batch API."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from _gemini_fixtures import BASE, KEY, backend, endpoint, generate_response, usage_metadata
from ipfs_accel import BadRequestError, ChatResult, ResponseError
from ipfs_accel.testing import CutBody, Recorder

UPLOAD_URL = f"{BASE}/upload/v1beta/files?upload_id=u-1&upload_protocol=resumable"
CALLS = [{"id": "one", "messages": [{"role": "user", "content": "ping"}]},
         {"id": "two", "messages": [{"role": "user", "content": "fail"}]},
         {"id": "three", "messages": [{"role": "user", "content": "pang"}]}]


class _Provider:
    """The API's side: a resumable upload, a batch made from the file, running at the
    first poll and succeeded at the second, its answers in a responsesFile."""

    def __init__(self, upload_url: str = UPLOAD_URL, *, cut_once: bool = False) -> None:
        self.upload_url = upload_url
        self.cut_once = cut_once
        self.uploaded: list[dict[str, Any]] = []
        self.declared: dict[str, str] = {}
        self.polls = 0

    def _op(self, state: str) -> dict[str, Any]:
        n = str(len(self.uploaded))
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                     "GenerateContentBatch",
            "name": "batches/b1", "state": state,
            "inputConfig": {"fileName": "files/in-1"}, "batchStats": {"requestCount": n}}
        op: dict[str, Any] = {"name": "batches/b1", "metadata": meta}
        if state == "BATCH_STATE_SUCCEEDED":
            meta["batchStats"].update(successfulRequestCount="2", failedRequestCount="1")
            meta["output"] = {"responsesFile": "files/out-1"}
            op.update(done=True, response={
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                         "GenerateContentBatchOutput", "responsesFile": "files/out-1"})
        return op

    def _results(self) -> bytes:
        rows = []
        for row in reversed(self.uploaded):  # any order: the key says which is which
            text = row["request"]["contents"][0]["parts"][0]["text"]
            if text == "fail":
                rows.append({"key": row["key"], "error": {
                    "code": 3, "message": "* GenerateContentRequest.contents: bad"}})
            else:
                rows.append({"key": row["key"], "response": generate_response(
                    f"re: {text}", usage=usage_metadata(7, 2))})
        return b"".join(json.dumps(r).encode() + b"\n" for r in rows)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/upload/v1beta/files" and "upload_id" not in request.url.params:
            assert request.headers["x-goog-upload-command"] == "start"
            self.declared = {k: v for k, v in request.headers.items()
                             if k.startswith("x-goog-upload")}
            return httpx2.Response(200, headers={"X-Goog-Upload-URL": self.upload_url,
                                                 "X-Goog-Upload-Status": "active"})
        if path == "/upload/v1beta/files":
            self.uploaded = [json.loads(line) for line in request.content.splitlines()]
            return httpx2.Response(200, headers={"X-Goog-Upload-Status": "final"}, json={
                "file": {"name": "files/in-1", "mimeType": "jsonl", "state": "ACTIVE",
                         "sizeBytes": str(len(request.content))}})
        if path.endswith(":batchGenerateContent"):
            body = json.loads(request.content)
            assert body["batch"]["inputConfig"] == {"fileName": "files/in-1"}
            return httpx2.Response(200, json=self._op("BATCH_STATE_PENDING"))
        if path == "/v1beta/batches/b1":
            self.polls += 1
            return httpx2.Response(200, json=self._op(
                "BATCH_STATE_RUNNING" if self.polls == 1 else "BATCH_STATE_SUCCEEDED"))
        if path == "/download/v1beta/files/out-1:download":
            assert request.url.params["alt"] == "media"
            body = self._results()
            if self.cut_once:
                self.cut_once = False
                cut = body.index(b"\n", len(body) // 2) + 5  # one whole line, then a part
                return httpx2.Response(200, stream=CutBody(body[:cut]))
            return httpx2.Response(200, content=body)
        return httpx2.Response(404, json={"error": {"code": 404, "message": path,
                                                    "status": "NOT_FOUND"}})


def _run(provider: _Provider) -> tuple[Recorder, dict[str, Any], Any]:
    recorder = Recorder(provider)
    b = backend(recorder)
    eid = endpoint(b, batch_input="file")
    job = b.submit_batch(CALLS, endpoint_id=eid, label="night")
    assert job.batches == ["batches/b1"]
    assert job.status() == "in_progress"
    assert job.status() == "completed"
    out: dict[str, Any] = {}
    for key, value in job.results():
        assert key not in out  # each key once
        out[key] = value
    return recorder, out, b.get_stats(eid)


def test_a_job_sent_as_a_file() -> None:
    """Start, upload, create from the file, two polls, one download; each answer under
    its key, the failed item the online 400; batch tokens counted; the key in the header
    of every request to the API, none with the bytes, in no URL."""
    provider = _Provider()
    recorder, out, stats = _run(provider)
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/upload/v1beta/files"), ("POST", "/upload/v1beta/files"),
        ("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent"),
        ("GET", "/v1beta/batches/b1"), ("GET", "/v1beta/batches/b1"),
        ("GET", "/download/v1beta/files/out-1:download")]
    assert [row["key"] for row in provider.uploaded] == ["one", "two", "three"]
    upload = recorder.requests[1]
    assert provider.declared["x-goog-upload-header-content-length"] == str(
        len(upload.content))
    assert upload.headers["x-goog-upload-command"] == "upload, finalize"
    assert upload.headers["content-type"] == "application/octet-stream"  # the bytes as they are
    assert isinstance(out["one"], ChatResult) and out["one"].text == "re: ping"
    assert isinstance(out["three"], ChatResult) and out["three"].text == "re: pang"
    assert out["one"].usage.input_tokens == 7 and out["one"].usage.output_tokens == 2
    assert isinstance(out["two"], BadRequestError)
    assert (stats.batch_input_tokens, stats.batch_output_tokens) == (14, 4)
    for i, request in enumerate(recorder.requests):
        assert KEY not in str(request.url)
        if i == 1:
            assert "x-goog-api-key" not in request.headers
        else:
            assert request.headers["x-goog-api-key"] == KEY


def test_a_cut_download_is_read_again_without_a_line_twice() -> None:
    provider = _Provider(cut_once=True)
    recorder, out, _ = _run(provider)
    assert sorted(out) == ["one", "three", "two"]
    downloads = [r for r in recorder.requests if r.url.path.endswith(":download")]
    assert len(downloads) == 2


@pytest.mark.parametrize("url", ["https://uploads.example.com/upload?upload_id=u-1",
                                 "http://generativelanguage.googleapis.com/upload?upload_id=u-1"])
def test_an_upload_url_elsewhere_is_not_followed(url: str) -> None:
    """The submit fails, nothing goes to the other address, the error names neither the
    URL nor the key, and no batch is made."""
    provider = _Provider(url)
    recorder = Recorder(provider)
    b = backend(recorder)
    eid = endpoint(b, batch_input="file")
    with pytest.raises(ResponseError, match="not on the endpoint's host") as info:
        b.submit_batch(CALLS, endpoint_id=eid)
    assert [str(r.url.copy_with(query=None)) for r in recorder.requests] == [
        f"{BASE}/upload/v1beta/files"]
    for text in (str(info.value), repr(info.value)):
        assert "u-1" not in text and KEY not in text


def test_an_upload_refused_for_a_while_starts_again() -> None:
    """An upload answered 503 is retried from its start (a new upload session), and the
    batch is created once, from the file uploaded whole."""
    provider = _Provider()
    unavailable = httpx2.Response(503, json={"error": {"code": 503, "message": "busy",
                                                       "status": "UNAVAILABLE"}})
    answers = iter([unavailable])  # the first upload only

    def flaky(request: httpx2.Request) -> httpx2.Response:
        answer = next(answers, None) if "upload_id" in request.url.params else None
        return answer if answer is not None else provider(request)

    recorder = Recorder(flaky)
    b = backend(recorder)
    eid = endpoint(b, batch_input="file")
    job = b.submit_batch(CALLS, endpoint_id=eid)
    assert job.batches == ["batches/b1"]
    steps = [(r.url.path, r.headers.get("x-goog-upload-command")) for r in recorder.requests]
    assert steps == [("/upload/v1beta/files", "start"),
                     ("/upload/v1beta/files", "upload, finalize"),
                     ("/upload/v1beta/files", "start"),
                     ("/upload/v1beta/files", "upload, finalize"),
                     ("/v1beta/models/gemini-2.5-flash:batchGenerateContent", None)]
    assert b.get_stats(eid).retries == 1


def test_a_create_refused_for_a_while_is_sent_again_without_uploading_again() -> None:
    """A create answered 503 is retried by itself: the file is uploaded once."""
    provider = _Provider()
    unavailable = httpx2.Response(503, json={"error": {"code": 503, "message": "busy",
                                                       "status": "UNAVAILABLE"}})
    answers = iter([unavailable])  # the first create only

    def flaky(request: httpx2.Request) -> httpx2.Response:
        create = request.url.path.endswith(":batchGenerateContent")
        answer = next(answers, None) if create else None
        return answer if answer is not None else provider(request)

    recorder = Recorder(flaky)
    b = backend(recorder)
    eid = endpoint(b, batch_input="file")
    assert b.submit_batch(CALLS, endpoint_id=eid).batches == ["batches/b1"]
    steps = [(r.url.path, r.headers.get("x-goog-upload-command")) for r in recorder.requests]
    create = ("/v1beta/models/gemini-2.5-flash:batchGenerateContent", None)
    assert steps == [("/upload/v1beta/files", "start"),
                     ("/upload/v1beta/files", "upload, finalize"), create, create]
    assert b.get_stats(eid).retries == 1

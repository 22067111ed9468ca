"""The gemini plugin's Batch API steps against a mock of the Gemini native API spec.

Each step goes through the real ``Registry(plugins=[ipfs_accel_gemini])`` backend
(``submit_batch``, the job's ``status`` / ``cancel`` / ``results``) and real HTTP to the
Steady mock, which must accept every request with no diagnostic:

- submit: ``POST /v1beta/models/{model}:batchGenerateContent``, the lines streamed into
  ``{"batch": {"displayName", "inputConfig": {"requests": {"requests": [...]}}}}``;
- poll: ``GET /v1beta/batches/{batch}``; cancel: ``POST /v1beta/batches/{batch}:cancel``
  (answered ``{}``), then a poll;
- fetch: ``GET /download/v1beta/files/{file}:download?alt=media`` of a ``responsesFile``;
- a part sent as a file (``batch_input="file"``): the upload's start, ``POST
  /upload/v1beta/files`` with ``{"file": {"displayName"}}`` (the spec's
  ``CreateFileRequest``), then the batch created with ``inputConfig.fileName``. The spec
  describes neither the start's ``x-goog-upload-url`` answer header nor the upload URL's
  route (``upload, finalize`` with the bytes): against the spec as it is the start is
  accepted and the plugin stops there; for the rest of the chain the test's transport adds
  that header and answers the bytes' upload itself, every other request going to the mock.

Fix-ups on a temporary copy of the spec (never the file itself):

- The spec makes every field of a ``BatchOperation`` optional, so the mock answers ``{}``,
  which names no batch (the plugin refuses it, shown against the spec as it is). For the
  lifecycle, the operation has its ``name`` (``batches/conformance-1``) and ``metadata``
  with a ``state`` (``JOB_STATE_RUNNING``; ``JOB_STATE_SUCCEEDED`` with a
  ``responsesFile`` for the download) and its ``batchStats``.
- The spec's inline request takes only ``contents``, ``generationConfig`` and ``model``;
  the API takes a whole ``GenerateContentRequest`` there (the ``InlinedRequest`` of the
  proto), which the plugin sends as ``generateContent`` would. For the test of a call with
  a system prompt, tools and safety settings, the inline request is the spec's
  ``GenerateContentRequest`` plus ``model``; against the spec as it is, the same call is
  refused (the mock's 400), while plain calls are accepted as they are.
- The kit's case answers (``BatchCase``) are posted to an added route whose body is the
  spec's ``BatchOperation``, so the mock validates them as strictly as a request.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from ipfs_accel.testing import import_or_skip

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import mockserver as ms  # noqa: E402
from _conformance import AsyncRecordingTransport, RecordingTransport  # noqa: E402

ipfs_accel_gemini = import_or_skip("ipfs_accel_gemini")

from ipfs_accel import (  # noqa: E402
    Backend,
    BadRequestError,
    BatchMissingError,
    Registry,
    ResponseError,
)
from ipfs_accel.testing import TOOL  # noqa: E402

pytestmark = pytest.mark.conformance

SPEC = "gemini/gemini-native.openapi.json"
KEY = "AIzaCONFORMANCE-test-key"
NAME = "batches/conformance-1"
FILE = "files/batch-conformance-1"
FILE_IN = "files/batch-input-1"
UPLOAD = "/upload/v1beta/files"
SUBMIT = "/v1beta/models/{model}:batchGenerateContent"
POLL = "/v1beta/batches/{batch}"
CANCEL = "/v1beta/batches/{batch}:cancel"
DOWNLOAD = "/download/v1beta/files/{file}:download"
CHECK = "/conformance/batch-operation"
CALLS = [{"id": "item-1", "messages": [{"role": "user", "content": "ping"}]},
         {"id": "item-2", "messages": [{"role": "user", "content": "pong"}],
          "params": {"max_tokens": 16, "temperature": 0.2}}]
RICH = [{"id": "rich-1", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Weather in Paris?"}],
         "params": {"tools": [TOOL], "tool_choice": "auto", "safetySettings": [
             {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}}]


def _described(state: str, *, to_file: bool = False) -> Callable[[dict[str, Any]], Any]:
    """A transform under which every BatchOperation names the batch and is in ``state``."""

    def transform(doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        schemas = doc["components"]["schemas"]
        op = schemas["BatchOperation"]
        op["required"] = ["name", "metadata", "done"]
        op["properties"]["name"] = {"type": "string", "enum": [NAME]}
        meta = schemas["BatchOperationMetadata"]
        meta["required"] = ["state", "batchStats"]
        meta["properties"]["state"] = {"type": "string", "enum": [state]}
        schemas["BatchStats"]["required"] = ["requestCount"]
        if to_file:
            op["required"].append("response")
            schemas["BatchOperationOutput"]["required"] = ["responsesFile"]
            schemas["BatchOperationOutput"]["properties"]["responsesFile"] = {
                "type": "string", "enum": [FILE]}
        return doc

    transform.__qualname__ = transform.__name__ = f"described({state!r}, {to_file})"
    return transform


def _whole_inline_requests(doc: dict[str, Any]) -> dict[str, Any]:
    doc = _described("JOB_STATE_RUNNING")(doc)
    schemas = doc["components"]["schemas"]
    request = copy.deepcopy(schemas["GenerateContentRequest"])
    request["properties"]["model"] = {"type": "string"}
    schemas["BatchGenerateRequest"]["properties"]["request"] = request
    return doc


def _check_route(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    body = {"$ref": "#/components/schemas/BatchOperation"}
    doc["paths"][CHECK] = {"post": {
        "operationId": "conformance_checkBatchOperation",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "valid", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/EmptyObject"}}}}},
    }}
    return doc


class _ReadingTransport(RecordingTransport):
    """The recording transport, keeping a streamed request's body (read before it is sent,
    so that the test can look at what the mock validated)."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        return super().handle_request(request)


class _UploadingTransport(_ReadingTransport):
    """The reading transport, standing in for what the spec does not describe: the start's
    ``x-goog-upload-url`` answer header (an upload URL on the mock's origin) and the upload
    to that URL, answered here as the Files API answers it (``{"file": {"name"}}``)."""

    def __init__(self, seen: list[httpx2.Response], upload_url: str) -> None:
        super().__init__(seen)
        self.upload_url = upload_url
        self.uploads: list[httpx2.Request] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if "upload_id" in request.url.params:
            request.read()
            self.uploads.append(request)
            return httpx2.Response(200, json={"file": {"name": FILE_IN}}, request=request)
        response = super().handle_request(request)
        if request.headers.get("x-goog-upload-command") == "start":
            response.headers["x-goog-upload-url"] = self.upload_url
        return response


class _Mock:
    """A backend with one endpoint in front of ``server`` (``max_retries=0``, an empty
    environment, as ``_conformance.make_backend`` makes them), recording every response
    and the body of every request (``uploading``: through :class:`_UploadingTransport`)."""

    def __init__(self, server: ms.MockServer, *, uploading: bool = False,
                 **settings: Any) -> None:
        self.server = server
        self.seen: list[httpx2.Response] = []
        self.transport = (_UploadingTransport(self.seen, server.url(UPLOAD)
                                              + "?upload_id=conformance-1")
                          if uploading else _ReadingTransport(self.seen))
        registry = Registry(
            plugins=[ipfs_accel_gemini], entry_points=False, transport=self.transport,
            async_transport=AsyncRecordingTransport(self.seen), environ={},
        )
        self.backend: Backend = registry.get("gemini")
        self.eid = self.backend.create_endpoint(base_url=server.base_url, max_retries=0,
                                                api_key=KEY, **settings)

    def check(self, *paths: str) -> list[httpx2.Response]:
        """The requests went to the spec's ``paths`` in order, each accepted without a
        diagnostic and carrying the key in its header only."""
        assert [r.headers.get("x-steady-matched-path") for r in self.seen] == list(paths)
        for response in self.seen:
            request = response.request
            assert KEY not in str(request.url)
            assert request.headers["x-goog-api-key"] == KEY
            ms.assert_not_rejected(response)
        return self.seen


def _start(transform: Callable[[dict[str, Any]], Any] | None) -> Iterator[ms.MockServer]:
    spec = ms.require_spec(SPEC)
    with ms.start_mock(spec, transform=transform) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server() -> Iterator[ms.MockServer]:
    yield from _start(None)


@pytest.fixture(scope="module")
def running_server() -> Iterator[ms.MockServer]:
    yield from _start(_described("JOB_STATE_RUNNING"))


@pytest.fixture(scope="module")
def filed_server() -> Iterator[ms.MockServer]:
    yield from _start(_described("JOB_STATE_SUCCEEDED", to_file=True))


@pytest.fixture(scope="module")
def whole_server() -> Iterator[ms.MockServer]:
    yield from _start(_whole_inline_requests)


@pytest.fixture(scope="module")
def check_server() -> Iterator[ms.MockServer]:
    yield from _start(_check_route)


def test_submit_poll_and_cancel(running_server: ms.MockServer) -> None:
    """Submit (the streamed body of two plain calls), poll, and cancel then poll: each
    request fits the spec, and the generated operations are read as the running batch."""
    mock = _Mock(running_server)
    job = mock.backend.submit_batch(CALLS, endpoint_id=mock.eid, label='night "run"')
    assert job.batches == [NAME]
    assert job.status() == "in_progress"
    assert job.cancel() == "in_progress"  # the mock's batch is running still
    seen = mock.check(SUBMIT, POLL, CANCEL, POLL)
    submit, poll, cancel, again = (r.request for r in seen)
    assert submit.url.path == "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
    assert int(submit.headers["content-length"]) == len(submit.content)
    batch = json.loads(submit.content)["batch"]
    assert batch["displayName"].startswith('night "run"')
    requests = batch["inputConfig"]["requests"]["requests"]
    assert [r["metadata"] for r in requests] == [{"key": "item-1"}, {"key": "item-2"}]
    assert requests[1]["request"]["generationConfig"] == {"maxOutputTokens": 16,
                                                          "temperature": 0.2}
    assert poll.url.path == again.url.path == "/v1beta/batches/conformance-1"
    assert (cancel.method, cancel.url.path) == ("POST", "/v1beta/batches/conformance-1:cancel")


def test_submit_against_the_spec_as_it_is(plain_server: ms.MockServer) -> None:
    """The spec's operation may be ``{}`` (the mock's answer): the submit is accepted and
    the plugin refuses an answer that names no batch."""
    mock = _Mock(plain_server)
    with pytest.raises(ResponseError, match="no name"):
        mock.backend.submit_batch(CALLS, endpoint_id=mock.eid)
    mock.check(SUBMIT)


def test_results_file_is_downloaded(filed_server: ms.MockServer) -> None:
    """A batch whose answers are in a responsesFile: its download fits the spec
    (``alt=media``). The mock's body is made-up bytes, not JSONL, so no call has a
    result (each is a BatchMissingError)."""
    mock = _Mock(filed_server)
    job = mock.backend.submit_batch(CALLS, endpoint_id=mock.eid)
    assert job.status() == "completed"
    out = dict(job.results())
    assert set(out) == {"item-1", "item-2"}
    assert all(isinstance(e, BatchMissingError) for e in out.values())
    seen = mock.check(SUBMIT, POLL, DOWNLOAD)
    download = seen[-1].request
    assert download.url.path == "/download/v1beta/files/batch-conformance-1:download"
    assert dict(download.url.params) == {"alt": "media"}


def test_a_file_upload_starts_as_the_spec_says(plain_server: ms.MockServer) -> None:
    """The start of a part's upload (its display name in the spec's CreateFileRequest, the
    key in its header) is accepted; the spec's answer has no upload URL, so the plugin
    goes no further and no batch is made."""
    mock = _Mock(plain_server, batch_input="file")
    with pytest.raises(ResponseError, match="x-goog-upload-url"):
        mock.backend.submit_batch(CALLS, endpoint_id=mock.eid, label="night")
    start = mock.check(UPLOAD)[0].request
    assert json.loads(start.content) == {"file": {"displayName": "night-1"}}
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"


def test_a_batch_created_from_a_file(filed_server: ms.MockServer) -> None:
    """Start (the mock), upload (the test's transport: the spec has no route for it), then
    the batch created from the file (``inputConfig.fileName``), polled and its
    responsesFile downloaded: each request the mock gets fits the spec."""
    mock = _Mock(filed_server, uploading=True, batch_input="file")
    job = mock.backend.submit_batch(CALLS, endpoint_id=mock.eid)
    assert job.status() == "completed"
    assert set(dict(job.results())) == {"item-1", "item-2"}
    seen = mock.check(UPLOAD, SUBMIT, POLL, DOWNLOAD)
    create = json.loads(seen[1].request.content)["batch"]
    assert create["inputConfig"] == {"fileName": FILE_IN}
    assert isinstance(mock.transport, _UploadingTransport)
    (upload,) = mock.transport.uploads
    assert "x-goog-api-key" not in upload.headers and KEY not in str(upload.url)
    lines = [json.loads(line) for line in upload.content.splitlines()]
    assert [line["key"] for line in lines] == ["item-1", "item-2"]


def test_a_whole_request_fits_the_api_not_the_spec(whole_server: ms.MockServer,
                                                   plain_server: ms.MockServer) -> None:
    """A call with a system prompt, tools, tool_choice and safety settings is the
    GenerateContentRequest generateContent gets: accepted where the inline request is
    one (the API's), refused by the spec's narrower inline request."""
    mock = _Mock(whole_server)
    mock.backend.submit_batch(RICH, endpoint_id=mock.eid)
    request = json.loads(mock.check(SUBMIT)[0].request.content)[
        "batch"]["inputConfig"]["requests"]["requests"][0]["request"]
    assert set(request) == {"contents", "systemInstruction", "tools", "toolConfig",
                            "safetySettings"}
    strict = _Mock(plain_server)
    with pytest.raises(BadRequestError):
        strict.backend.submit_batch(RICH, endpoint_id=strict.eid)
    assert ms.is_rejected(strict.seen[-1])


_STATES = ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "cancelling",
           "cancelled", "failed", "expired"]


@pytest.mark.parametrize("state", _STATES)
def test_the_case_answers_fit_the_spec(check_server: ms.MockServer, state: str) -> None:
    """The kit's case describes the batch in each state as the spec's BatchOperation."""
    case = ipfs_accel_gemini.conformance_case().batch
    assert case is not None
    items = (("item-1", "completed"), ("item-2", "failed"), ("item-3", "expired"),
             ("item-4", "cancelled" if state == "cancelled" else "completed"))
    answers = [case.described("kit-1", state, items), *case.submitted("kit-1")]
    for reply in answers:
        response = httpx2.post(check_server.url(CHECK), json=reply.json, timeout=10)
        ms.assert_not_rejected(response)


def test_the_wire_shape_is_stricter_in_the_spec(check_server: ms.MockServer) -> None:
    """The route validates: the server's own shape (``@type``, BATCH_STATE_*) is refused,
    which is why the case answers as the spec allows and the plugin reads both."""
    wire = {"name": NAME, "metadata": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "state": "BATCH_STATE_PENDING"}}
    response = httpx2.post(check_server.url(CHECK), json=wire, timeout=10)
    ms.assert_rejected(response)

"""A fake OpenAI batch provider on a loopback port, for ``run --batch`` through the real CLI.

It speaks the wire of OpenAI's Files and Batch APIs (paths with or without ``/v1``):

- ``POST /files`` (multipart/form-data, parsed for real: ``purpose=batch`` and the ``file``
  part, each JSONL line a ``{"custom_id", "method": "POST", "url", "body"}`` request);
- ``POST /batches`` ``{input_file_id, endpoint, completion_window: "24h", metadata}``;
- ``GET /batches/{id}``: each poll moves the batch one state on (validating, in_progress,
  finalizing, completed); ``POST /batches/{id}/cancel``: cancelling, then cancelled at the
  next poll, every item in the error file as ``batch_cancelled``;
- ``GET /files/{id}/content``: the output file (``{"id", "custom_id", "response":
  {"status_code", "request_id", "body": <chat.completion>}, "error": null}`` lines), the
  error file (a 400 response line for an item whose last message says ``fail``, an
  ``"error": {"code": "batch_expired"}`` line for one that says ``expire``).

Every request must carry ``Authorization: Bearer <key>``; a request it refuses is noted in
``refused``. Batch objects leave unset fields out (the spec's are not nullable).
``submitted`` lists every custom_id of every file a created batch was made of (a line sent
twice shows twice), ``batches`` the batches created, ``downloaded`` each download's
custom_ids. ``failing = False``: the ``fail`` / ``expire`` items answer too;
``fail_in_output``: a 400 line goes in the output file; ``echo_key_at = "create"``: the
create is refused with an error quoting the request's Authorization header.

:meth:`FakeBatchProvider.hold` stops one request at a stage until the test releases it:
``upload`` (the body read, the file not stored yet), ``create`` (the batch created, not
answered yet: the client cannot know it exists), ``poll`` (its answer not sent) and
``download`` (half the file's lines sent and flushed, the rest held); the ``nth`` such
request from when the hold is armed. Its ``reached`` event is set when it stops.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeBatchProvider", "Hold"]

_FLOW = ("validating", "in_progress", "finalizing", "completed")
_ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
              "/v1/moderations")
_FORM = {"purpose", "expires_after[anchor]", "expires_after[seconds]"}  # and "file"
_SAFETY = 300  # a held request gives up after this long, should a test never release it


@dataclass
class Hold:
    """One request to stop at ``stage``: the ``nth`` one from when it is armed."""

    stage: str
    nth: int = 1
    seen: int = 0
    fired: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    ids: list[str] = field(default_factory=list)  # an input file's custom_ids, in order
    lines: dict[str, Any] = field(default_factory=dict)  # custom_id -> its request line
    created_at: int = field(default_factory=lambda: int(time.time()))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data),
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed"}


@dataclass
class _Batch:
    id: str
    input_file: _File
    endpoint: str
    metadata: dict[str, str] | None
    status: str = "validating"
    created_at: int = field(default_factory=lambda: int(time.time()))
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at...
    files: dict[str, str] = field(default_factory=dict)  # output_file_id, error_file_id
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        counts = {"total": len(self.input_file.ids), "completed": 0, "failed": 0, **self.counts}
        return {"id": self.id, "object": "batch", "endpoint": self.endpoint,
                "input_file_id": self.input_file.id, "completion_window": "24h",
                "status": self.status, "created_at": self.created_at,
                "request_counts": counts, "metadata": self.metadata, **self.times,
                **self.files}

    def moved(self, state: str) -> None:
        self.status = state
        self.times[f"{state}_at"] = int(time.time())


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FakeBatchProvider:
    """The fake provider (a context manager: serving inside it, every hold released at
    its end). ``url`` ends in ``/v1``, as ``-u`` takes it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self.submitted: list[str] = []
        self.downloaded: list[list[str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.refused: list[str] = []
        self.holds: list[Hold] = []
        self.failing = True
        self.fail_in_output = False
        self.echo_key_at = ""
        self.echoed = ""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider._serve(self, "GET")

            def do_POST(self) -> None:
                provider._serve(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeBatchProvider:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for hold in self.holds:
            hold.release()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what the tests ask -----------------------------------------------------------

    def hold(self, stage: str, *, nth: int = 1) -> Hold:
        """Stop the ``nth`` next request at ``stage`` (see the module); one request only."""
        assert stage in ("upload", "create", "poll", "download"), stage
        hold = Hold(stage, nth=nth)
        with self.lock:
            self.holds.append(hold)
        return hold

    @property
    def created(self) -> int:
        with self.lock:
            return len(self.batches)

    def batch_ids(self, batch_id: str) -> list[str]:
        """The custom_ids the batch ``batch_id`` was made of, in file order."""
        with self.lock:
            return list(self.batches[batch_id].input_file.ids)

    def status_of(self, batch_id: str) -> str:
        """The batch's status now (without polling it)."""
        with self.lock:
            return self.batches[batch_id].status

    # -- serving ------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path.split("?", 1)[0]
        path = path[3:] if path.startswith("/v1/") else path
        body = h.rfile.read(int(h.headers.get("content-length") or 0))
        with self.lock:
            self.requests.append((method, path))
        parts = path.strip("/").split("/")
        try:
            if h.headers.get("authorization") != f"Bearer {self.key}":
                raise _Refused(401, "Incorrect API key provided")
            if method == "POST" and parts == ["files"]:
                self._answer(h, 200, self._upload(h, body))
            elif method == "POST" and parts == ["batches"]:
                self._create(h, body)
            elif method == "GET" and len(parts) == 2 and parts[0] == "batches":
                self._poll(h, parts[1])
            elif method == "POST" and len(parts) == 3 and parts[::2] == ["batches", "cancel"]:
                self._answer(h, 200, self._cancel(parts[1]))
            elif method == "GET" and len(parts) == 3 and parts[::2] == ["files", "content"]:
                self._download(h, parts[1])
            else:
                raise _Refused(404, f"no route {method} {path}")
        except _Refused as exc:
            with self.lock:
                self.refused.append(f"{method} {path}: {exc}")
            self._answer(h, exc.status, _error_body(str(exc)))
        except OSError:  # the client went away (killed while held)
            pass

    def _answer(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(raw)))
        h.send_header("x-request-id", "req_" + secrets.token_hex(6))
        h.end_headers()
        h.wfile.write(raw)
        h.wfile.flush()

    def _stop(self, stage: str) -> Hold | None:
        """The hold armed for this request, if any (counted; fired once)."""
        with self.lock:
            for hold in self.holds:
                if hold.stage == stage and not hold.fired:
                    hold.seen += 1
                    hold.fired = hold.seen == hold.nth
                    if hold.fired:
                        return hold
        return None

    @staticmethod
    def _wait(hold: Hold | None) -> None:
        if hold is not None:
            hold.reached.set()
            hold.released.wait(_SAFETY)

    def _upload(self, h: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        fields, filename, data = _multipart(h.headers.get("content-type", ""), body)
        if fields.get("purpose") != "batch" or set(fields) - _FORM:
            raise _Refused(400, f"form fields {sorted(fields)}: purpose must be batch")
        ids, lines = _requests(data)
        self._wait(self._stop("upload"))
        file = _File("file-" + secrets.token_hex(8), filename, "batch", data, ids, lines)
        with self.lock:
            self.files[file.id] = file
        return file.describe()

    def _create(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.echo_key_at == "create":
            self.echoed = f"your request ({h.headers.get('authorization')}) is refused"
            raise _Refused(400, self.echoed)
        req = _json(body)
        if {"input_file_id", "endpoint", "completion_window"} - set(req):
            raise _Refused(400, f"missing fields in {sorted(req)}")
        if req["completion_window"] != "24h" or req["endpoint"] not in _ENDPOINTS:
            raise _Refused(400, "bad completion_window or endpoint")
        metadata = req.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict) and all(
                isinstance(v, str) for v in metadata.values())):
            raise _Refused(400, "metadata must map strings to strings")
        with self.lock:
            file = self.files.get(req["input_file_id"])
            if file is None:
                raise _Refused(404, f"no file {req['input_file_id']}")
            if any(line["url"] != req["endpoint"] for line in file.lines.values()):
                raise _Refused(400, "a line's url is not the batch's endpoint")
            batch = _Batch("batch_" + secrets.token_hex(8), file, req["endpoint"], metadata)
            self.batches[batch.id] = batch
            self.submitted.extend(file.ids)
            answer = batch.describe()
        self._wait(self._stop("create"))
        self._answer(h, 200, answer)

    def _poll(self, h: BaseHTTPRequestHandler, batch_id: str) -> None:
        with self.lock:
            batch = self._batch(batch_id)
            if batch.status == "cancelling":
                self._end(batch, "cancelled")
            elif batch.status in _FLOW[:-2]:
                batch.moved(_FLOW[_FLOW.index(batch.status) + 1])
            elif batch.status == "finalizing":
                self._end(batch, "completed")
            answer = batch.describe()
        self._wait(self._stop("poll"))
        self._answer(h, 200, answer)

    def _cancel(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            batch = self._batch(batch_id)
            if batch.status in _FLOW[:-1]:
                batch.moved("cancelling")
            return batch.describe()

    def _batch(self, batch_id: str) -> _Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise _Refused(404, f"no batch {batch_id}")
        return batch

    def _end(self, batch: _Batch, state: str) -> None:
        """Write the batch's output and error files (under the lock)."""
        files: dict[str, list[bytes]] = {"output_file_id": [], "error_file_id": []}
        failed = 0
        for custom_id in batch.input_file.ids:
            line = batch.input_file.lines[custom_id]
            said = _last_message(line["body"])
            row: dict[str, Any] = {"id": "batch_req_" + secrets.token_hex(6),
                                   "custom_id": custom_id, "response": None, "error": None}
            if state == "cancelled":
                row["error"] = {"code": "batch_cancelled",
                                "message": "This request was cancelled with its batch."}
            elif self.failing and "expire" in said:
                row["error"] = {"code": "batch_expired", "message": "This request could not "
                                "be executed before the completion window expired."}
            elif self.failing and "fail" in said:
                row["response"] = {"status_code": 400, "request_id": "req_" + custom_id,
                                   "body": _error_body(f"refused: {said}")}
            else:
                row["response"] = {"status_code": 200, "request_id": "req_" + custom_id,
                                   "body": _completion(custom_id, line["body"], said)}
            ok = row["response"] is not None and row["response"]["status_code"] == 200
            failed += not ok
            output = ok or (row["response"] is not None and self.fail_in_output)
            files["output_file_id" if output else "error_file_id"].append(
                json.dumps(row).encode() + b"\n")
        for attr, rows in files.items():
            if rows:
                file = _File("file-" + secrets.token_hex(8), f"{batch.id}_{attr}.jsonl",
                             "batch_output", b"".join(rows))
                self.files[file.id] = file
                batch.files[attr] = file.id
        batch.moved(state)
        batch.counts = {"completed": len(batch.input_file.ids) - failed, "failed": failed}

    def _download(self, h: BaseHTTPRequestHandler, file_id: str) -> None:
        with self.lock:
            file = self.files.get(file_id)
            if file is None:
                raise _Refused(404, f"no file {file_id}")
            rows = file.data.splitlines(keepends=True)
            self.downloaded.append([json.loads(row)["custom_id"] for row in rows])
        hold = self._stop("download")
        h.send_response(200)
        h.send_header("content-type", "application/octet-stream")
        h.send_header("content-length", str(len(file.data)))  # the whole file's
        h.end_headers()
        half = len(rows) // 2 if hold is not None else len(rows)
        h.wfile.write(b"".join(rows[:half]))
        h.wfile.flush()
        self._wait(hold)
        h.wfile.write(b"".join(rows[half:]))
        h.wfile.flush()


def _error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": None}}


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _Refused(400, "the body is not a JSON object")
    return data


def _multipart(ctype: str, body: bytes) -> tuple[dict[str, str], str, bytes]:
    """The form's fields, and its one file part's filename and bytes (framing checked)."""
    kind, _, params = ctype.partition(";")
    if kind.strip() != "multipart/form-data" or not params.strip().startswith("boundary="):
        raise _Refused(400, f"not a multipart/form-data body: {ctype!r}")
    boundary = params.strip().removeprefix("boundary=").strip('"')
    chunks = body.split(b"--" + boundary.encode())
    if len(chunks) < 3 or chunks[0] or chunks[-1] not in (b"--", b"--\r\n"):
        raise _Refused(400, "the multipart body is not opened or closed by its boundary")
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not (sep and chunk.startswith(b"\r\n") and content.endswith(b"\r\n")):
            raise _Refused(400, "a multipart part is not framed by CRLF")
        headers = {k.strip().lower(): v.strip() for k, v in (
            line.split(":", 1) for line in head.decode().split("\r\n"))}
        disposition = dict(p.strip().split("=", 1) for p in
                           headers.get("content-disposition", "").split(";")[1:])
        name = disposition.get("name", "").strip('"')
        if "filename" in disposition and name == "file":
            files.append((disposition["filename"].strip('"'), content[:-2]))
        elif "filename" not in disposition:
            fields[name] = content[:-2].decode()
        else:
            raise _Refused(400, f"a file part named {name!r}, not 'file'")
    if len(files) != 1:
        raise _Refused(400, f"{len(files)} file parts, not one")
    return fields, files[0][0], files[0][1]


def _requests(data: bytes) -> tuple[list[str], dict[str, Any]]:
    """The custom_ids of a batch input file, in order, and each one's request line."""
    ids: list[str] = []
    lines: dict[str, Any] = {}
    for n, raw in enumerate(data.splitlines(), start=1):
        try:
            line = json.loads(raw)
        except ValueError:
            raise _Refused(400, f"line {n} of the file is not JSON") from None
        if not isinstance(line, dict) or set(line) != {"custom_id", "method", "url", "body"}:
            raise _Refused(400, f"line {n}: not a batch request line: {raw[:200]!r}")
        if line["method"] != "POST" or line["custom_id"] in lines:
            raise _Refused(400, f"line {n}: not POST, or its custom_id is used twice")
        ids.append(line["custom_id"])
        lines[line["custom_id"]] = line
    if not ids:
        raise _Refused(400, "the file holds no request")
    return ids, lines


def _last_message(body: dict[str, Any]) -> str:
    content = (body.get("messages") or [{}])[-1].get("content")
    return content if isinstance(content, str) else json.dumps(content)


def _completion(custom_id: str, body: dict[str, Any], said: str) -> dict[str, Any]:
    return {"id": "chatcmpl-" + custom_id, "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "gpt-4o-mini"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": f"echo: {said}",
                                     "refusal": None}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}

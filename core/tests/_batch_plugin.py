"""A test backend with an OpenAI-shaped batch API, and the provider it talks to.

:class:`Provider` is a fake of the provider's side, behind ``httpx2.MockTransport``: it
takes a multipart upload (parsing the form for real), creates batches from uploaded files,
moves each batch one state on per poll (validating, in_progress, finalizing, then an end),
and serves the results JSONL. Each item's outcome is what its message asks for: a message
``"fail"`` is a 400, ``"expire"`` an expired item, ``"lose"`` no line at all.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

import httpx2
from ipfs_accel import (
    BackendInfo,
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchLimits,
    BatchLine,
    BatchOutcome,
    BatchPoll,
    BatchSubmit,
    Call,
    ChatResult,
    EndpointConfig,
    Exchange,
    Failure,
    InvokeResult,
    LinesBody,
    Response,
    Usage,
    VendorBatch,
    hookimpl,
)
from ipfs_accel.testing import CutBody

MAX_REQUESTS = 3
MAX_BYTES = 4000


@hookimpl
def backend_info() -> BackendInfo:
    return BackendInfo(
        name="batchy", provider="batchy", default_base_url="http://batchy.test/v1",
        default_model="m-1", operations=frozenset({"chat", "generate", "embed"}),
        batch=BatchLimits(max_requests=MAX_REQUESTS, max_bytes=MAX_BYTES,
                          operations=frozenset({"chat"})),
    )


def _auth(endpoint: EndpointConfig) -> dict[str, str]:
    key = endpoint.api_key
    return {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}


def _chat(resp: Response) -> ChatResult:
    return _answer(resp.data)


def _answer(data: dict[str, Any]) -> ChatResult:
    usage = data["usage"]
    return ChatResult(text=data["text"], model=data.get("model"),
                      usage=Usage(input_tokens=usage[0], output_tokens=usage[1],
                                  total_tokens=usage[0] + usage[1]))


@hookimpl
def send(call: Call, endpoint: EndpointConfig) -> Exchange:
    return Exchange(path="/chat", json={"model": call.model, "messages": call.messages},
                    headers=_auth(endpoint), parse=_chat)


def _described(resp: Response) -> InvokeResult:
    d = resp.data
    return InvokeResult(data=VendorBatch(
        id=d["id"], state=d["status"], native_state=d["status"],
        counts=BatchCounts(**d["counts"]), outputs=tuple(d.get("outputs", ())),
        error=d.get("error")))


@hookimpl
def batch_exchange(step: Any, endpoint: EndpointConfig) -> Exchange | None:
    auth = _auth(endpoint)
    if isinstance(step, BatchLine):
        call = step.call
        return Exchange(path="", json={"custom_id": step.key, "body": {
            "model": call.model, "messages": call.messages}})
    if isinstance(step, BatchSubmit):
        def created(resp: Response) -> Exchange:
            return Exchange(path="/batches", headers=auth, parse=_described, json={
                "input_file_id": resp.data["id"], "label": step.label})
        return Exchange(path="/files", headers=auth, parse=created, body=LinesBody(
            path=step.lines, multipart={"purpose": "batch"}))
    if isinstance(step, BatchPoll):
        return Exchange(method="GET", path=f"/batches/{step.batch_id}", headers=auth,
                        parse=_described)
    if isinstance(step, BatchCancel):
        return Exchange(path=f"/batches/{step.batch_id}/cancel", headers=auth,
                        parse=_described)
    if isinstance(step, BatchFetch):
        return Exchange(method="GET", path=f"/files/{step.output}/content", headers=auth)
    return None


@hookimpl
def batch_result(data: Any, operation: str) -> BatchOutcome:
    key = data["custom_id"]
    if "error" in data:
        if data["error"] == "expired":
            return BatchOutcome(key=key, state="expired", message="window closed")
        return BatchOutcome(key=key, state="failed", failure=Failure(
            operation=operation, status=400, data={"error": {"message": data["error"]}}))
    return BatchOutcome(key=key, result=_answer(data["answer"]))


class Provider:
    """The provider's side: files, batches, and what each poll answers."""

    def __init__(self, *, end: str = "completed") -> None:
        self.files: dict[str, list[dict[str, Any]]] = {}
        self.sizes: dict[str, int] = {}  # each file's bytes as uploaded
        self.batches: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx2.Request] = []
        self.end = end  # how a batch ends
        self.faults: list[httpx2.Response] = []  # answered first, to the next requests
        self.cut_once = False  # the next download stops half-way, once
        self.transport = httpx2.MockTransport(self.handle)

    def lines_of(self, batch_id: str) -> list[dict[str, Any]]:
        return self.files[self.batches[batch_id]["input_file_id"]]

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.faults:
            return self.faults.pop(0)
        path = request.url.path.removeprefix("/v1")
        if path == "/files":
            return self._upload(request)
        if path == "/batches":
            body = json.loads(request.content)
            bid = f"batch_{len(self.batches) + 1}"
            self.batches[bid] = {"id": bid, "input_file_id": body["input_file_id"],
                                 "status": "validating", "polls": 0}
            return httpx2.Response(200, json=self._view(bid))
        bid = path.split("/")[2] if path.startswith("/batches/") else ""
        if path.endswith("/cancel"):
            self.batches[bid]["status"] = "cancelled"
            return httpx2.Response(200, json=self._view(bid))
        if path.startswith("/batches/"):
            batch = self.batches[bid]
            order = ["validating", "in_progress", "finalizing", self.end]
            batch["status"] = order[min(order.index(batch["status"]) + 1, 3)]
            return httpx2.Response(200, json=self._view(bid))
        if path.startswith("/files/") and path.endswith("/content"):
            return self._download(path.split("/")[2])
        return httpx2.Response(404, json={"error": {"message": f"no route {path}"}})

    def _upload(self, request: httpx2.Request) -> httpx2.Response:
        assert int(request.headers["content-length"]) == len(request.content)
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            head + request.content)
        fields = {part.get_param("name", header="content-disposition"): part.get_content()
                  for part in form.iter_parts()}
        assert fields["purpose"] == "batch"
        text = fields["file"]
        text = text if isinstance(text, str) else text.decode()
        fid = f"file_{len(self.files) + 1}"
        self.sizes[fid] = len(text.encode())
        self.files[fid] = [json.loads(line) for line in text.splitlines() if line]
        return httpx2.Response(200, json={"id": fid})

    def _view(self, bid: str) -> dict[str, Any]:
        batch = self.batches[bid]
        status = batch["status"]
        out: dict[str, Any] = {"id": bid, "status": status,
                               "counts": {"total": len(self.lines_of(bid))}}
        if status in ("completed", "expired", "cancelled"):
            kinds = [self._kind(line) for line in self.lines_of(bid)]
            out["counts"].update(completed=kinds.count("ok"), failed=kinds.count("fail"),
                                 expired=kinds.count("expire"))
            out["outputs"] = [f"out_{bid}"]
        if status == "failed":
            out["error"] = "the input file is not valid"
        return out

    @staticmethod
    def _kind(line: dict[str, Any]) -> str:
        text = line["body"]["messages"][-1]["content"]
        return text if text in ("fail", "expire", "lose") else "ok"

    def _download(self, output: str) -> httpx2.Response:
        bid = output.removeprefix("out_")
        rows = []
        cancelled = self.batches[bid]["status"] == "cancelled"  # nothing ran
        for line in () if cancelled else self.lines_of(bid):
            kind, key = self._kind(line), line["custom_id"]
            if kind == "ok":
                rows.append({"custom_id": key, "answer": {
                    "text": f"re: {line['body']['messages'][-1]['content']}", "usage": [3, 2]}})
            elif kind in ("fail", "expire"):
                rows.append({"custom_id": key,
                             "error": "expired" if kind == "expire" else "bad item"})
        body = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
        if self.cut_once:
            self.cut_once = False
            return httpx2.Response(200, stream=CutBody(body[: len(body) // 2 + 1]))
        return httpx2.Response(200, content=body)



"""The OpenAI Batch API (files, batches, downloads) played from a :class:`BatchCase`, in
process: a ``httpx2.MockTransport`` handler for an OpenAI-compatible plugin's batch tests."""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

import httpx2

from ._actions import Reply
from ._batch_case import BatchCase

__all__ = ["OpenAIBatchPlayer"]

_KINDS = {"fail": "failed", "expire": "expired"}


def _http(reply: Reply) -> httpx2.Response:
    if reply.json is not None:
        return httpx2.Response(reply.status, json=reply.json, headers=dict(reply.headers))
    return httpx2.Response(reply.status, content=reply.body, headers=dict(reply.headers))


def _said(body: dict[str, Any]) -> Any:
    messages = body.get("messages")  # an embeddings line has none: it is answered
    return messages[-1].get("content") if messages else None


class OpenAIBatchPlayer:
    """A ``MockTransport`` handler playing one batch, ``batch_id``, of the OpenAI Batch API
    from ``case`` (the answers the kit's batch check replays).

    The upload's JSONL lines are kept in ``lines``; each item's kind is what its last
    message asks for (``"fail"``: the API's 400, ``"expire"``: never ran, anything else,
    and an embeddings request: answered). Each poll moves the batch one state on through
    ``states``; a cancel cancels the items not answered; a download answers from
    ``case.results``. Every request is kept in ``requests``; paths are read below
    ``prefix`` (``"/v1"``; Groq: ``"/openai/v1"``).
    """

    def __init__(self, case: BatchCase, states: tuple[str, ...], *, prefix: str = "/v1",
                 batch_id: str = "batch_abc123") -> None:
        self.case, self.states, self.prefix, self.batch_id = case, list(states), prefix, batch_id
        self.state = case.states[0]
        self.requests: list[httpx2.Request] = []
        self.lines: list[dict[str, Any]] = []
        self.outcomes: list[tuple[str, str]] = []
        self.outputs: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        path, bid = request.url.path.removeprefix(self.prefix), self.batch_id
        if path == "/files":
            self._upload(request)
            return _http(self.case.submitted(bid)[0])
        if path == "/batches":
            return _http(self.case.submitted(bid)[1])
        if path == f"/batches/{bid}/cancel":
            self.state = "cancelled"
            self.outcomes = [(k, "completed" if kind == "completed" else "cancelled")
                             for k, kind in self.outcomes]
            return self._described()
        if path == f"/batches/{bid}":
            if self.states:
                self.state = self.states.pop(0)
            return self._described()
        if path.endswith("/content"):
            file_id = path.split("/")[2]
            return _http(self.case.results(bid, self.outcomes)[self.outputs.index(file_id)])
        return httpx2.Response(404, json={"error": {"message": f"no route {path}"}})

    def _upload(self, request: httpx2.Request) -> None:
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            head + request.content)
        [file] = [p for p in form.iter_parts() if p.get_filename()]
        payload = file.get_payload(decode=True)
        assert isinstance(payload, bytes)
        self.lines = [json.loads(line) for line in payload.splitlines()]
        self.outcomes = [(x["custom_id"], _KINDS.get(_said(x["body"]), "completed"))
                         for x in self.lines]

    def _described(self) -> httpx2.Response:
        reply = self.case.described(self.batch_id, self.state, self.outcomes)
        assert isinstance(reply.json, dict)
        self.outputs = [reply.json[f] for f in ("output_file_id", "error_file_id")
                        if f in reply.json]
        return _http(reply)

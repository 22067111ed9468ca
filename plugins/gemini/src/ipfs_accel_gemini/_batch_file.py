"""Gemini batches whose requests go as a file (the Files API), for a part too big to send
inline.

A part goes inline (:mod:`._batch`) when it fits: at most :data:`INLINE_MAX_REQUESTS` calls
and an inline body under :data:`INLINE_MAX_BYTES` (the batch guide: inline requests for a
total "under 20MB"). Otherwise, or always with ``GeminiOptions(batch_input="file")``, its
lines go as a JSONL file, in three exchanges chained (each ``parse`` answers the next)::

    start    POST /upload/{v}/files        x-goog-upload-protocol: resumable
                                           x-goog-upload-command: start
                                           x-goog-upload-header-content-length: <bytes>
                                           x-goog-upload-header-content-type: jsonl
             {"file": {"displayName": <label>}}   -> the x-goog-upload-url header
    upload   POST <that URL>               x-goog-upload-command: upload, finalize
                                           x-goog-upload-offset: 0
             the JSONL bytes                      -> {"file": {"name": "files/...", ...}}
    create   POST /{v}/models/{model}:batchGenerateContent
             {"batch": {"displayName": <label>, "inputConfig": {"fileName": "files/..."}}}
                                                  -> the Operation, read as an inline one

The create resumes (``Exchange.resume``): a retry of a refused create (a 429, a 5xx) sends
the create again, the file already uploaded; a retry of a refused start or upload starts
the upload over (a new upload session).

The file's lines are the batch guide's, ``{"key": <key>, "request": <GenerateContentRequest>}``,
written from the part's inline lines (``{"request", "metadata": {"key"}}``) beside them, one
line at a time, each request's JSON copied as it is (never decoded). Once the batch
succeeded its answers are its ``responsesFile``, downloaded by the core (``BatchFetch``,
``GET /download/{v}/files/{id}:download?alt=media``) and read a line at a time: ``{"key",
"response" | "error"}``, by :mod:`._batch_result`.

The upload URL is the server's: it is followed only on the endpoint's own scheme, host and
port (a bare path is taken on that origin), and the key is not sent to it: the start carries
the key, and the URL it answers authorizes the upload by itself (the Files guide's curl sends
no key with the bytes). A refused URL fails the submit (a ``ResponseError`` naming both
hosts, never the URL, which carries the upload's ID).

Limits: an input file may be up to 2 GB (the batch guide: "The maximum allowed file size for
an input file is 2GB"), :data:`FILE_MAX_BYTES`; Google documents no count of requests for a
file, so a part holds at most :data:`FILE_MAX_REQUESTS` (ours: it bounds what one failed or
expired batch costs). The Files API keeps an upload 48 hours; it is not deleted here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from ipfs_accel import BatchSubmit, Exchange, LinesBody, Response

from ._wire import _In

__all__ = [
    "FILE_MAX_BYTES",
    "FILE_MAX_REQUESTS",
    "INLINE_MAX_BYTES",
    "INLINE_MAX_REQUESTS",
    "MIME_TYPE",
    "BatchInput",
    "UploadedFile",
    "create_body",
    "file_lines",
    "fits_inline",
    "upload_exchange",
]

INLINE_MAX_REQUESTS = 10_000
"""Calls a part sends inline at most: Google documents no count for inline requests, and
every answer comes back inline in the batch's description, read whole, so a larger part
goes as a file (its answers then come as a file too, read a line at a time)."""
INLINE_MAX_BYTES = 20_000_000
"""An inline body (the envelope, the display name and the requests) is under this: the
batch guide's "under 20MB" for the total request size."""
FILE_MAX_BYTES = 2_000_000_000
"""Request lines a batch holds at most: an input file may be up to 2 GB (the batch guide)."""
FILE_MAX_REQUESTS = 100_000
"""Calls a batch holds at most: ours (Google documents no count for a file)."""
MIME_TYPE = "jsonl"
"""The file's type, as the batch guide's examples upload it (``mime_type='jsonl'``)."""

BatchInput = Literal["auto", "file"]
_UPLOAD_URL = "x-goog-upload-url"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Key(_In):
    key: str


class _InlineLine(_In):
    """A part's line as :func:`._batch.line` writes it; the request is kept as raw JSON."""

    request: msgspec.Raw
    metadata: _Key


class _File(_In):
    name: str


class UploadedFile(_In):
    """The upload's answer, ``{"file": File}``: only the file's ``name`` is read."""

    file: _File


_LINE = msgspec.json.Decoder(_InlineLine)
_ENCODE = msgspec.json.encode


def fits_inline(step: BatchSubmit, envelope: int, batch_input: BatchInput = "auto") -> bool:
    """Whether ``step``'s part goes inline: ``envelope`` bytes of body around its lines
    (each line counts its newline, one more byte than the comma that joins it inline)."""
    if batch_input == "file":
        return False
    return (step.count <= INLINE_MAX_REQUESTS
            and envelope + step.lines.stat().st_size < INLINE_MAX_BYTES)


def file_lines(inline: Path) -> Path:
    """The part's lines in the file's form (:mod:`module docstring <._batch_file>`),
    written beside ``inline`` (once: a retried submit finds them written) and returned."""
    out = inline.with_name(inline.stem + ".file.jsonl")
    if out.exists():
        return out
    partial = out.with_name(out.name + ".partial")
    with inline.open("rb") as src, partial.open("wb") as dst:
        for raw in src:
            if not raw.strip():
                continue
            line = _LINE.decode(raw)
            dst.write(b'{"key":' + _ENCODE(line.metadata.key) + b',"request":'
                      + bytes(line.request) + b"}\n")
    partial.replace(out)
    return out


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _same_origin(url: str, base_url: str) -> str:
    """``url`` to send to, when it is on ``base_url``'s origin (a path: on that origin)."""
    if url.startswith("/") and not url.startswith("//"):
        scheme, netloc = urlsplit(base_url)[:2]
        return f"{scheme}://{netloc}{url}"
    if _origin(url) != _origin(base_url):
        raise ValueError(
            f"the upload URL the server gave is on {_origin(url)[1] or 'no host'!r}, not on "
            f"the endpoint's host {_origin(base_url)[1]!r}: the batch's file is not sent there")
    return url


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain mapping, whatever the case of its names
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def create_body(label: str, file_name: str) -> dict[str, Any]:
    """The batch's creation from the uploaded file ``file_name`` (``files/...``)."""
    return {"batch": {"displayName": label, "inputConfig": {"fileName": file_name}}}


def upload_exchange(step: BatchSubmit, headers: Mapping[str, str], version: str, *,
                    base_url: str, create: Callable[[str], Exchange]) -> Exchange:
    """The start of the part's upload; its chain uploads the lines and then asks
    ``create(file_name)`` for the batch's creation."""
    lines = file_lines(step.lines)
    size = lines.stat().st_size
    start_headers = {**headers, "x-goog-upload-protocol": "resumable",
                     "x-goog-upload-command": "start",
                     "x-goog-upload-header-content-length": str(size),
                     "x-goog-upload-header-content-type": MIME_TYPE}

    def uploaded(resp: Response) -> Exchange:
        data = resp.data if isinstance(resp.data, UploadedFile) else msgspec.convert(
            resp.data, UploadedFile)
        return create(data.file.name)

    def started(resp: Response) -> Exchange:
        url = _header(resp.headers, _UPLOAD_URL)
        if not url:
            raise ValueError("the upload's start answered no x-goog-upload-url header")
        return Exchange(
            path=_same_origin(url, base_url),
            headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"},
            body=LinesBody(path=lines, separator=b"\n", suffix=b"\n",
                           media_type="application/octet-stream"),  # the bytes as they are
            parse=uploaded, response_type=UploadedFile)

    return Exchange(path=f"/upload/{version}/files", headers=start_headers,
                    json={"file": {"displayName": step.label}}, parse=started)

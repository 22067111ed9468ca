"""Plumbing shared by the plugins' conformance tests (``test_conformance_<name>.py``).

``mockserver.py`` runs the Steady mock and reads its verdict on one response; this module
puts a plugin's real ``Registry`` backend in front of it:

- :class:`RecordingTransport` / :class:`AsyncRecordingTransport`: the real HTTP transports,
  keeping every response (``response.request`` is the request sent) so that the mock's
  verdict headers can be checked after the plugin has consumed the answer;
- :func:`make_backend`: ``Registry(plugins=[plugin], entry_points=False, ...)`` with both
  recording transports and an empty environment, plus one endpoint with ``max_retries=0``
  (a rejected request must fail at once, not be retried);
- :func:`assert_all_accepted` / :func:`matched_paths`: every recorded request reached the
  mock, was accepted with no diagnostic at all, and matched the expected spec path;
- :func:`drain_interrupted` / :func:`adrain_interrupted`: consume one of the mock's
  streams, which never send the API's own terminal event (``data: [DONE]``, a
  ``finishReason``, ``"done": true``, ...), so the plugin must report
  ``StreamInterruptedError`` rather than end quietly or leak the body as text;
- :data:`FAST_STREAM`: request headers that make the mock's streams short and instant;
- :func:`embeddings_in_order`: a spec transform under which the mock answers an
  OpenAI-style embeddings request with one row per input, each row's ``index`` its
  position, as a conforming server does (the schema alone gives one row, index 0..100).

Import it after putting this folder on ``sys.path`` (as the test modules do); the
``mock_pool`` fixture still comes from ``mockserver``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import AsyncIterable, Iterable
from types import ModuleType
from typing import Any, Final, TypeVar

import httpx2
import pytest
from ipfs_accel import Backend, Registry, StreamInterruptedError
from mockserver import SpecTransform, assert_not_rejected

__all__ = [
    "FAST_STREAM",
    "AsyncRecordingTransport",
    "RecordingTransport",
    "adrain_interrupted",
    "assert_all_accepted",
    "drain_interrupted",
    "embeddings_in_order",
    "make_backend",
    "matched_paths",
]

_T = TypeVar("_T")

#: Per-request headers read by Steady: 3 stream events/lines, no delay between them.
FAST_STREAM: Final[dict[str, str]] = {
    "X-Steady-Stream-Count": "3",
    "X-Steady-Stream-Interval-Ms": "0",
}


class RecordingTransport(httpx2.HTTPTransport):
    """The real HTTP transport, appending every response to ``seen``."""

    def __init__(self, seen: list[httpx2.Response]) -> None:
        super().__init__()
        self.seen = seen

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        self.seen.append(response)
        return response


class AsyncRecordingTransport(httpx2.AsyncHTTPTransport):
    """The real async HTTP transport, appending every response to ``seen``."""

    def __init__(self, seen: list[httpx2.Response]) -> None:
        super().__init__()
        self.seen = seen

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await super().handle_async_request(request)
        self.seen.append(response)
        return response


def make_backend(
    plugin: ModuleType,
    name: str,
    base_url: str,
    seen: list[httpx2.Response],
    **settings: Any,
) -> tuple[Backend, str]:
    """The ``name`` backend of a registry holding only ``plugin`` (no entry points, empty
    environment), whose sync and async transports record into ``seen``, and the id of a
    new endpoint at ``base_url`` with ``max_retries=0`` and ``settings``."""
    registry = Registry(
        plugins=[plugin], entry_points=False, transport=RecordingTransport(seen),
        async_transport=AsyncRecordingTransport(seen), environ={},
    )
    backend = registry.get(name)
    eid = backend.create_endpoint(base_url=base_url, max_retries=0, **settings)
    return backend, eid


def matched_paths(seen: list[httpx2.Response]) -> list[str | None]:
    """The spec path the mock matched for each recorded response (``X-Steady-Matched-Path``)."""
    return [r.headers.get("x-steady-matched-path") for r in seen]


def assert_all_accepted(seen: list[httpx2.Response], path: str | None = None) -> None:
    """At least one request reached the mock; each was accepted with no diagnostic and,
    if ``path`` is given, matched that spec path (e.g. ``"/chat/completions"``)."""
    assert seen, "no request reached the mock"
    for response in seen:
        assert_not_rejected(response)
        if path is not None:
            assert response.headers.get("x-steady-matched-path") == path


def drain_interrupted(stream: Iterable[_T]) -> list[_T]:
    """Consume ``stream``, require it to end in ``StreamInterruptedError`` and return the
    chunks it yielded before (for the caller's checks on each)."""
    chunks: list[_T] = []
    with pytest.raises(StreamInterruptedError):
        for chunk in stream:  # a loop, not list(): keep what came before the error
            chunks.append(chunk)
    return chunks


async def adrain_interrupted(stream: AsyncIterable[_T]) -> list[_T]:
    """Async form of :func:`drain_interrupted`."""
    chunks: list[_T] = []
    with pytest.raises(StreamInterruptedError):
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


@functools.cache
def embeddings_in_order(path: str, count: int) -> SpecTransform:
    """A spec transform (``pool.get(spec, transform=...)``) under which the mock answers
    ``POST path``, an OpenAI-style embeddings operation, with exactly ``count`` rows in
    ``data``, row ``i`` carrying ``"index": i``.

    Generated from the schema alone, the answer has one row (Steady's default array size)
    whose required ``index`` is an integer drawn from 0..100, whatever the request: a body
    no server sends, and the plugin rightly refuses it. The spec ties both to the request
    only in prose ("The list of embeddings generated by the model", "The index of the
    embedding in the list of embeddings"); this writes that prose down, for a request of
    ``count`` inputs, as ``prefixItems`` whose row ``i`` is the spec's row with ``index``
    narrowed to ``i``. Everything else is still generated from the spec. The same
    arguments give the same function, so a ``MockPool`` starts one mock per shape.
    """

    def transform(doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        media = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        row = _resolve(doc, media["schema"])["properties"]["data"]["items"]
        rows = [{"allOf": [row, {"properties": {"index": {"enum": [i]}}}]} for i in range(count)]
        data = {"type": "array", "minItems": count, "maxItems": count, "items": row,
                "prefixItems": rows}
        # allOf: Steady merges the members' properties, the later one's ``data`` winning
        media["schema"] = {"allOf": [media["schema"], {"properties": {"data": data}}]}
        return doc

    transform.__qualname__ = transform.__name__ = f"embeddings_in_order({path!r}, {count})"
    return transform


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or the schema its local ``$ref`` (``#/components/...``) points at."""
    while "$ref" in schema:
        node: Any = doc
        for key in schema["$ref"].removeprefix("#/").split("/"):
            node = node[key.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema

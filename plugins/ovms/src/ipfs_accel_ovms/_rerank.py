"""OVMS's Cohere-style rerank: ``POST /v3/rerank`` (model_server_rest_api_rerank.md).

Request: ``{"model", "query", "documents": [...], "top_n"?, "return_documents"?}``.
Answer: ``{"results": [{"index", "relevance_score", "document"?}, ...]}``, without Cohere's
``id`` or ``meta``. The core decodes it into :class:`_RerankAnswer`, so a result whose index
or score has the wrong type is a ``ResponseError`` naming it; the call returns the results
as the server sent them (``document`` and any extra fields included).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from ipfs_accel import Call, ConfigurationError, Exchange, InvokeResult, Response, decode_json

__all__ = ["rerank_exchange"]


class _RerankRow(msgspec.Struct):
    """One ranked document: where it was in ``documents`` and how relevant it is."""

    index: int
    relevance_score: float


class _RerankAnswer(msgspec.Struct):
    """The rerank answer: only ``results`` is read."""

    results: list[_RerankRow]


def _rerank_result(resp: Response) -> InvokeResult:
    # the typed decode checked every row; the user gets the rows as the server sent them
    return InvokeResult(data=decode_json(resp.content)["results"])


def rerank_exchange(call: Call, headers: Mapping[str, str]) -> Exchange:
    """The ``/v3/rerank`` exchange of ``invoke("rerank", query=..., documents=[...])``."""
    if not call.model:
        raise ConfigurationError(
            "ovms rerank needs a model: pass model=, or set it on the endpoint"
        )
    params = dict(call.params)
    if not isinstance(params.get("query"), str):
        raise ConfigurationError("ovms rerank needs query= (a string)")
    if not isinstance(params.get("documents"), list):
        raise ConfigurationError("ovms rerank needs documents= (a list of strings)")
    body = {"model": call.model, **params}
    return Exchange(path="/v3/rerank", json=body, headers=headers, parse=_rerank_result,
                    response_type=_RerankAnswer)

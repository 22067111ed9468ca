"""Answers the hf_tgi plugin must refuse: wrong-typed fields in its Messages API answers."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest
from _hf_tgi_fixtures import CHAT, Server, backend
from ipfs_accel import ResponseError

HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("finish_reason", 1, "hf_tgi returned finish_reason of type int, expected a string"),
        ("finish_reason", {"x": 1}, "hf_tgi returned finish_reason of type dict"),
        ("model", 12, "hf_tgi returned model of type int"),
    ],
)
def test_wrong_typed_chat_field_raises_naming_it(field: str, value: Any, words: str) -> None:
    """A /v1/chat/completions answer with a wrong-typed field is a ResponseError naming it."""
    body = copy.deepcopy(CHAT)
    if field == "model":
        body["model"] = value
    else:
        body["choices"][0][field] = value
    server = Server(httpx2.Response(200, json=body))
    b, eid = backend(server)
    with pytest.raises(ResponseError, match=words):
        b.chat(HI, endpoint_id=eid)
    assert len(server.requests) == 1


def test_negative_token_count_raises_and_stats_stay_at_zero() -> None:
    """A negative completion_tokens is a ResponseError; the stats do not go negative."""
    body = copy.deepcopy(CHAT)
    body["usage"]["completion_tokens"] = -2
    b, eid = backend(Server(httpx2.Response(200, json=body)))
    with pytest.raises(ResponseError, match=r"usage\.output_tokens of -2"):
        b.chat(HI, endpoint_id=eid)
    stats = b.get_stats(eid)
    assert (stats.output_tokens, stats.total_tokens) == (0, 0)

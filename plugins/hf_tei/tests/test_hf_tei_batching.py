"""hf_tei: batches larger than max_client_batch_size are split and reassembled in order."""

from __future__ import annotations

import json
import threading

import httpx2
import pytest
from _hf_tei_fixtures import Server, backend, embed_server, error, info, vector
from ipfs_accel import BadRequestError, ResponseError
from ipfs_accel_hf_tei._batch import SIZES, BatchSizes

TEN = [f"t{i}" for i in range(10)]


def tei(max_batch: int, *, fail_first_slice: int = 0) -> Server:
    """A TEI that answers /info with ``max_batch`` and refuses bigger batches with 413."""
    state = {"fail": fail_first_slice}

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/info":
            return httpx2.Response(200, json=info(max_batch))
        inputs = json.loads(request.content)["inputs"]
        if len(inputs) > max_batch:
            return error(413, f"batch size {len(inputs)} > maximum allowed batch size "
                              f"{max_batch}", "validation")
        if state["fail"] and inputs[0] == "t4":
            state["fail"] -= 1
            return error(429, "Model is overloaded", "overloaded")
        return embed_server()(request)

    return Server(handle)


def test_ten_inputs_max_four_three_requests_in_order() -> None:
    """10 inputs, max 4: /info then 3 /embed requests; vectors in input order, usage summed."""
    server = tei(4)
    b, eid = backend(server)
    result = b.embed(TEN, endpoint_id=eid, request_id="req-b", normalize=True)
    paths = [(r.method, r.url.path) for r in server.requests]
    assert paths == [("GET", "/info"), ("POST", "/embed"), ("POST", "/embed"), ("POST", "/embed")]
    assert [server.body(i)["inputs"] for i in (1, 2, 3)] == [TEN[0:4], TEN[4:8], TEN[8:10]]
    assert all(server.body(i)["normalize"] is True for i in (1, 2, 3))
    assert {r.headers["x-request-id"] for r in server.requests} == {"req-b"}
    assert result.vectors == [vector(t) for t in TEN]
    assert result.usage.input_tokens == 20  # 2 per input, summed over the three slices
    assert result.usage.details["x-total-time"] == 15.0
    assert result.raw is None
    stats = b.get_stats(eid)
    assert (stats.total_requests, stats.successful_requests, stats.input_tokens) == (1, 1, 20)


def test_size_is_probed_once_per_base_url() -> None:
    """A second call to the same server reuses the cached size: no second /info."""
    server = tei(4)
    b, eid = backend(server)
    b.embed(TEN, endpoint_id=eid)
    b.embed(TEN[:6], endpoint_id=eid)
    paths = [r.url.path for r in server.requests]
    assert paths.count("/info") == 1
    assert [server.body(i)["inputs"] for i in (4, 5)] == [TEN[0:4], TEN[4:6]]
    other = b.create_endpoint("other", base_url="http://tei-other.test")
    b.embed(TEN[:2], endpoint_id=other)
    assert [r.url.path for r in server.requests].count("/info") == 2


def test_option_skips_the_probe() -> None:
    """max_client_batch_size on the endpoint splits without asking /info."""
    server = tei(3)
    b, eid = backend(server, max_client_batch_size=3)
    result = b.embed(TEN, endpoint_id=eid)
    assert [r.url.path for r in server.requests] == ["/embed"] * 4
    assert result.vectors == [vector(t) for t in TEN]


def test_batch_within_limit_is_one_request() -> None:
    """A batch no larger than the limit goes in one request; /embed has nothing but the
    vectors, so raw is None rather than a second copy of them."""
    server = tei(32)
    b, eid = backend(server)
    result = b.embed(TEN, endpoint_id=eid)
    assert [r.url.path for r in server.requests] == ["/info", "/embed"]
    assert result.vectors == [vector(t) for t in TEN]
    assert result.raw is None


def test_retry_mid_chain_restarts_cleanly() -> None:
    """An overloaded slice is retried; the result has each vector exactly once, in order."""
    server = tei(4, fail_first_slice=1)
    b, eid = backend(server)
    result = b.embed(TEN, endpoint_id=eid)
    assert result.vectors == [vector(t) for t in TEN]
    assert result.usage.input_tokens == 20
    assert b.get_stats(eid).successful_requests == 1


def test_openai_route_is_split_too() -> None:
    """With openai_api=True the slices go to /v1/embeddings and body usages are summed."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/info":
            return httpx2.Response(200, json=info(4))
        part = json.loads(request.content)["input"]
        rows = [{"object": "embedding", "embedding": vector(t), "index": i}
                for i, t in enumerate(part)]
        return httpx2.Response(200, json={
            "object": "list", "data": rows[::-1], "model": "bge",
            "usage": {"prompt_tokens": len(part), "total_tokens": len(part)},
        })

    server = Server(handle)
    b, eid = backend(server, openai_api=True)
    result = b.embed(TEN, endpoint_id=eid)
    assert [r.url.path for r in server.requests] == ["/info"] + ["/v1/embeddings"] * 3
    assert result.vectors == [vector(t) for t in TEN]
    assert result.usage.input_tokens == 10
    assert result.model == "bge"


def test_unusable_info_size_sends_one_request() -> None:
    """An /info without a usable size (0) does not split: the server decides."""
    server = tei(0)
    b, eid = backend(server)
    with pytest.raises(BadRequestError) as got:
        b.embed(TEN, endpoint_id=eid)
    assert got.value.status == 413 and got.value.attempts == 1


def test_vector_count_mismatch_is_an_error() -> None:
    """A slice answered with the wrong number of vectors fails instead of misaligning."""
    server = Server(httpx2.Response(200, json=[[1.0]]))
    b, eid = backend(server, max_client_batch_size=4)
    with pytest.raises(ResponseError):
        b.embed(["t1", "t2"], endpoint_id=eid)


@pytest.mark.asyncio
async def test_async_split() -> None:
    """aembed splits the same way."""
    server = tei(4)
    b, eid = backend(server)
    result = await b.aembed(TEN, endpoint_id=eid)
    assert result.vectors == [vector(t) for t in TEN]
    assert len(server.requests) == 4


def test_batch_sizes_cache_is_thread_safe() -> None:
    """Concurrent puts and gets keep one consistent size per base URL."""
    sizes = BatchSizes()

    def work(n: int) -> None:
        for i in range(200):
            sizes.put(f"http://h{i % 5}", 4)
            assert sizes.get(f"http://h{i % 5}") == 4

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(sizes.get(f"http://h{i}") == 4 for i in range(5))
    SIZES.clear()

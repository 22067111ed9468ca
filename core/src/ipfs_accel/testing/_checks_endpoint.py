"""The per-endpoint checks: each endpoint counts only its own calls and sends only its own key."""

from __future__ import annotations

from ._actions import RecordedRequest, Reply
from ._run import CheckRun, expect, serving

__all__ = ["check_counters", "check_keys"]


def check_counters(run: CheckRun) -> str:
    """4 calls on one endpoint (3 succeed, 1 fails): its counters exact, the other's zero."""
    case = run.case
    tin, tout = case.tokens
    expect(tin > 0 or tout > 0,
            f"the case declares tokens={case.tokens}: with no usage in its success reply the "
            "token counters are not checked (declare the usage the reply carries)")
    backend = run.backend()
    with serving(case.success, case.success, case.bad_request, case.success) as server:
        used = run.endpoint(backend, server, max_retries=0)
        idle = run.endpoint(backend, server, max_retries=0)
        for _ in range(2):
            run.call(backend, used)
        run.fail_call(backend, used)
        run.call(backend, used)
        expect(len(server.requests) == 4, f"4 calls sent {len(server.requests)} requests")
    s = backend.get_stats(used)
    got = (s.total_requests, s.successful_requests, s.failed_requests,
           s.input_tokens, s.output_tokens, s.total_tokens)
    want = (4, 3, 1, 3 * tin, 3 * tout, 3 * (tin + tout))
    names = ("total_requests", "successful_requests", "failed_requests",
             "input_tokens", "output_tokens", "total_tokens")
    wrong = [f"{n}={g} (expected {w})" for n, g, w in zip(names, got, want, strict=True) if g != w]
    expect(not wrong, "endpoint counters wrong: " + ", ".join(wrong))
    other = backend.get_stats(idle)
    expect(other.total_requests == 0 and other.total_tokens == 0,
            f"the unused endpoint moved: total_requests={other.total_requests}, "
            f"total_tokens={other.total_tokens}")
    agg = backend.get_stats()
    expect(agg.total_requests == 4 and agg.endpoints_count == 2,
            f"aggregate wrong: total_requests={agg.total_requests}, "
            f"endpoints_count={agg.endpoints_count}")
    return (f"4 calls -> total 4, ok 3, failed 1, tokens {3 * tin}+{3 * tout}; "
            "second endpoint untouched; aggregate sums both")


def _carries(request: RecordedRequest, secret: str) -> bool:
    blob = request.body.decode("utf-8", "replace") + request.path + repr(request.query)
    return secret in blob or any(secret in v for v in request.headers.values())


def check_keys(run: CheckRun) -> str:
    """Two endpoints, two keys: each request carries its own key in the API's header, only."""
    case = run.case
    expect(case.auth is not None, "the case declares no auth header: the plugin sends no key")
    assert case.auth is not None
    header, template = case.auth
    backend = run.backend()
    key_a, key_b = run.key(), run.key()
    with serving(*[case.success] * 4) as server:
        eid_a = run.endpoint(backend, server, key=key_a, max_retries=0)
        eid_b = run.endpoint(backend, server, key=key_b, max_retries=0)
        order = [(eid_a, key_a, key_b), (eid_b, key_b, key_a)] * 2
        for eid, _, _ in order:
            run.call(backend, eid)
        requests = server.requests
    expect(len(requests) == 4, f"4 calls sent {len(requests)} requests")
    for n, (request, (eid, own, other)) in enumerate(zip(requests, order, strict=True), 1):
        sent = request.header(header)
        expect(sent is not None, f"request {n} ({eid}) has no {header!r} header")
        expect(sent == template.format(key=own),
                f"request {n} ({eid}): {header!r} is not {template!r} with its own key")
        expect(not _carries(request, other), f"request {n} ({eid}) carries the other key")
    # A server that echoes the key must not get it into the error.
    with serving(Reply(401, json={"error": {"message": f"invalid api key {key_a}"}})) as server:
        eid = run.endpoint(backend, server, key=key_a, max_retries=0)
        err = run.fail_call(backend, eid)
    text = f"{err} {err!r} {err.message} {err.body!r} {err.args!r}"
    expect(key_a not in text, "an error repeated the endpoint's API key")
    expect(key_a not in repr(backend.get_endpoint(eid)), "the endpoint's repr shows its key")
    return (f"key in {header!r} as {template!r}; two endpoints, four requests, each with only "
            "its own key; no key in errors or reprs")

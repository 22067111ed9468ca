"""The params check: each common parameter reaches the request in the form the case declares.

The kit calls chat (and stream_chat, when the case covers it) with ``max_tokens``,
``temperature``, ``top_p`` and ``stop`` set to values nothing else would send, then looks
each up in the request body at the case's dotted path (``"p"``, ``"stop_sequences"``,
``"generationConfig.maxOutputTokens"``). A parameter the plugin drops, renames wrongly or
leaves at its own default is named.
"""

from __future__ import annotations

from typing import Any

from ._checks_ops import verify
from ._drive import covered, drive, reply_for
from ._run import CheckFailed, CheckRun, conformance_id, expect, serving, skip

__all__ = ["COMMON_PARAMS", "check_params", "find"]

COMMON_PARAMS: dict[str, Any] = {
    "max_tokens": 17, "temperature": 0.25, "top_p": 0.75, "stop": ["zz-stop"],
}
"""The common parameters and the values the check sends (unlikely as anyone's defaults)."""

_MISSING = object()


def find(body: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``body`` (list items by index), or a sentinel."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _same(name: str, sent: Any, found: Any) -> bool:
    if name == "stop" and found == sent[0]:  # an API that takes one stop string
        return True
    if isinstance(sent, float) and isinstance(found, int | float):
        return abs(found - sent) < 1e-9
    return bool(found == sent and type(found) is type(sent))


def check_params(run: CheckRun) -> str:
    """max_tokens, temperature, top_p and stop, given to chat (and stream_chat), each reach
    the request body at the path the case declares, with the value given."""
    case = run.case
    offered = run.registry.hooks(case.backend).info.operations
    if not {"chat", "stream_chat"} & offered:
        skip("n/a: the backend offers neither chat nor stream_chat")
    if not case.params:
        skip("the case declares no request form of the common parameters (Case.params)")
    undeclared = [n for n in COMMON_PARAMS if n not in case.params]
    expect(not undeclared, f"the case does not say where {', '.join(undeclared)} goes in the "
                           "request (declare a path, or None for a parameter the API lacks)")
    unknown = [n for n in case.params if n not in COMMON_PARAMS]
    expect(not unknown, f"the case declares {', '.join(unknown)}, not a common parameter")
    ops = [op for op in ("chat", "stream_chat") if op in covered(case) and op in offered]
    if not ops:
        skip("the case covers neither chat nor stream_chat (declare text, stream)")
    backend = run.backend()
    with serving(*[reply_for(case, op) for op in ops]) as server:
        eid = run.endpoint(backend, server, max_retries=0)
        for op in ops:
            d = drive(backend, op, case, eid, conformance_id(), params=dict(COMMON_PARAMS))
            verify(case, d)
        requests = server.requests
    expect(len(requests) == len(ops), f"{len(ops)} calls sent {len(requests)} requests")
    for op, request in zip(ops, requests, strict=True):
        try:
            body = request.json()
        except ValueError:
            raise CheckFailed(f"{op}: the request body is not JSON") from None
        for name, path in case.params.items():
            if path is None:
                continue
            sent = COMMON_PARAMS[name]
            found = find(body, path)
            if found is _MISSING:
                raise CheckFailed(f"{op}: {name}={sent!r} did not reach the request as "
                                  f"{path!r} (the body has no {path!r})")
            expect(_same(name, sent, found),
                   f"{op}: {name}={sent!r} reached the request as {path!r}={found!r}")
    forms = ", ".join(f"{n}->{p}" if p else f"{n} (none)" for n, p in case.params.items())
    return f"{forms}; in the {' and '.join(ops)} request bodies"

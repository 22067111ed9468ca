"""The demo's network: servers that limit each key as vendors do, one that goes down, and a
pool per backend over them.

Each plugin is asked which rate-limit headers it reads (its ``parse_rate_limits`` hook,
offered each style the kit's :class:`~ipfs_accel.testing.FaultServer` speaks). Backends
reading the same style share a server that limits every key to :data:`RPM` requests a minute
and reports the budgets in that style; plugins that read none share one that only answers
429s. Each backend has ``keys`` endpoints there, each with its own fake key: a plugin that
reads the headers paces by them, the others are told their keys' ``rpm``. A server knows a
key where most APIs send one (see :func:`~ipfs_accel.testing._ratelimit.request_key`); a
plugin that sends its key elsewhere gets a server per key, so each key still has its own
limit. One more endpoint
per backend lives on a spare server with no limits, which goes down halfway through the run.
All of a backend's endpoints are the members of its pool; the calls go through the pools.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._pool import Pool
from ..testing import Case, FaultServer, RateLimit, RecordedRequest
from ..testing._ratelimit import request_key
from ..testing._ratelimit_wire import HeaderStyle, Snapshot, budget_headers
from ._demo_server import DemoResponder, endpoint_key

if TYPE_CHECKING:
    from .._backend import Backend
    from .._plugin import PluginHooks
    from .._stats import Stats

__all__ = ["RPM", "Network", "build_network", "header_style", "keys_told_apart"]

RPM = 600  # each key's limit on the servers: one request every 0.1 s
_BURST = 2  # back-to-back requests a full budget lets through (a little slack for jitter)
_STYLES: tuple[HeaderStyle, ...] = ("openai", "anthropic")


def header_style(hooks: PluginHooks) -> HeaderStyle:
    """The rate-limit header style the plugin reads (``None``: it reads none)."""
    if not hooks.reads_rate_limits:
        return None
    for style in _STYLES:
        sample = budget_headers(style, time.time(), requests=Snapshot(RPM, 0, 1.0), tokens=None)
        limits = hooks.parse_rate_limits(sample)
        if limits is not None and limits.requests_remaining == 0:
            return style
    return None


def keys_told_apart(case: Case) -> bool:
    """Whether a limiting server reads this backend's key (and so limits each key alone)."""
    if case.auth is None:
        return False
    header, template = case.auth
    probe = "demo-key-probe-1"
    request = RecordedRequest(method="POST", path="/", query={}, body=b"", received_at=0.0,
                              connection=0, headers={header.lower(): template.format(key=probe)})
    return request_key(request) == probe


@dataclass
class Network:
    """The demo's servers, and each backend's pool and members."""

    limited: list[FaultServer]
    spare: FaultServer
    styles: dict[str, HeaderStyle]
    apart: dict[str, bool]  # by backend: does a shared server tell its keys apart?
    pools: dict[str, Pool] = field(default_factory=dict)
    keyed: list[tuple[Backend, str]] = field(default_factory=list)  # on the limited servers
    spared: list[tuple[Backend, str]] = field(default_factory=list)  # on the spare server

    def member_stats(self, members: list[tuple[Backend, str]]) -> list[Stats]:
        """The endpoint stats of ``members``."""
        return [backend.get_stats(eid) for backend, eid in members]

    def refused_429(self) -> int:
        """The 429s the limiting servers answered for the keys' rate limits."""
        return sum(s.refused for server in self.limited for s in server.rate_stats().values())

    def seen(self, server: FaultServer) -> int:
        """The requests ``server`` received (a refused one too)."""
        return len(server.requests)


def build_network(
    stack: ExitStack, backends: Mapping[str, Backend], hooks: Mapping[str, PluginHooks],
    cases: Mapping[str, Case], responder: DemoResponder, *, keys: int, calls: int,
) -> Network:
    """Start the servers (closed by ``stack``), make the endpoints and one pool per backend."""

    def server(style: HeaderStyle) -> FaultServer:
        started = stack.enter_context(FaultServer(
            responder=responder, default_rate_limit=RateLimit(rpm=RPM, burst=_BURST),
            rate_limit_headers=style))
        net.limited.append(started)
        return started

    styles = {name: header_style(hooks[name]) for name in backends}
    apart = {name: keys_told_apart(cases[name]) for name in backends}
    net = Network([], stack.enter_context(FaultServer(responder=responder)), styles, apart)
    shared = {style: server(style)
              for style in dict.fromkeys(styles[n] for n in backends if apart[n])}
    for name, backend in backends.items():
        members = []
        for i in range(1, keys + 2):
            eid = f"{name}-{i}"
            spare = i == keys + 1
            on = net.spare if spare else shared[styles[name]] if apart[name] else server(
                styles[name])
            backend.create_endpoint(eid, **{
                **cases[name].settings, "base_url": f"{on.base_url}/ep/{eid}",
                "api_key": endpoint_key(eid), "max_concurrent_requests": 4 if spare else 1 + i % 4,
                "queue_size": max(100, calls), "timeout": 10.0,
                # told its key's limit only when the server's headers will not say it
                "rpm": RPM if styles[name] is None and not spare else None,
            })
            (net.spared if spare else net.keyed).append((backend, eid))
            members.append((backend, eid))
        net.pools[name] = Pool(members, max_retries=10, initial_retry_delay=0.05,
                               max_retry_delay=0.5)
    return net

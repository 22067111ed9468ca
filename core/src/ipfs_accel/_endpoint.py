"""One endpoint: its settings, resolved key and URL, queue and counters."""

from __future__ import annotations

from ._queue import Limiter
from ._settings import EndpointConfig
from ._stats import StatsCounter

__all__ = ["Endpoint", "EndpointConfig"]


class Endpoint:
    """The live state of one endpoint. Created and owned by a :class:`Backend`."""

    __slots__ = ("config", "endpoint_id", "limiter", "stats")

    def __init__(self, config: EndpointConfig) -> None:
        self.endpoint_id = config.endpoint_id
        self.config = config
        s = config.settings
        self.limiter = Limiter(s.max_concurrent_requests, s.queue_size)
        self.stats = StatsCounter()

    def reconfigure(self, config: EndpointConfig) -> None:
        """Swap in new settings; calls already running keep the ones they started with."""
        self.config = config
        s = config.settings
        self.limiter.resize(s.max_concurrent_requests, s.queue_size)

    def __repr__(self) -> str:
        return f"<Endpoint {self.endpoint_id} {self.config.base_url}>"

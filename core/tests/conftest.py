"""Fixtures the core's tests share: a throwaway Redis for the tests of shared limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ipfs_accel.testing import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A ``redis-server`` of the test module's own (skipped without one, failed under CI)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_emptied(redis: RedisServer) -> RedisServer:
    """The module's Redis, running (a test may have stopped it) and empty."""
    if not redis.running:
        redis.start()
    redis.command("FLUSHALL")
    return redis

"""The example plugin, found through its entry point, passes the kit's conformance suite."""

from __future__ import annotations

import ipfs_accel_example
from ipfs_accel import Registry
from ipfs_accel.testing import BackendConformance


def test_discovered_through_its_entry_point() -> None:
    """Registry() finds the installed example plugin without being told about it."""
    registry = Registry()
    assert "example" in registry.names()
    status = {s.name: s for s in registry.status()}["example"]
    assert status.distribution == "ipfs-accel-plugin-example"
    assert registry.hooks("example").plugin is ipfs_accel_example


class TestExampleConformance(BackendConformance):
    """Counters, keys, backoff, queue, request ID, classify_error: the standard six."""

    case = ipfs_accel_example.conformance_case()  # plugin=None: found via the entry point

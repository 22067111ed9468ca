"""The brook plugin, found through its entry point, passes the kit's conformance suite."""

from __future__ import annotations

import ipfs_accel_brook
from ipfs_accel import Registry
from ipfs_accel.testing import BackendConformance


def test_discovered_through_its_entry_point() -> None:
    """Registry() finds the installed brook plugin without being told about it."""
    registry = Registry()
    assert "brook" in registry.names()
    status = {s.name: s for s in registry.status()}["brook"]
    assert status.distribution == "ipfs-accel-plugin-brook"
    assert registry.hooks("brook").plugin is ipfs_accel_brook


class TestBrookConformance(BackendConformance):
    """The kit's standard checks, driven by the plugin's own conformance case."""

    case = ipfs_accel_brook.conformance_case()  # plugin=None: found via the entry point

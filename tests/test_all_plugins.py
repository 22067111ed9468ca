"""All nine built-in plugins installed together: discovered, loaded, validated."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ipfs_accel import Registry

BUILT_IN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]


def test_every_built_in_plugin_is_discovered_through_entry_points():
    """Registry() lists all nine through their entry points, with distribution and version."""
    status = {s.name: s for s in Registry().status()}
    for name in BUILT_IN:
        assert name in status, f"{name} not installed"
        s = status[name]
        assert s.distribution and s.distribution.replace("-", "_").endswith(name.replace("-", "_"))
        assert s.version and s.target == f"ipfs_accel_{name}"


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_plugin_loads_and_declares_itself(name):
    """Each plugin imports, validates and declares its name, operations and base URL."""
    backend = Registry().get(name)
    info = backend.info
    assert info.name == name
    assert info.operations
    assert info.description
    assert info.default_base_url is None or info.default_base_url.startswith("http")


def test_listing_imports_no_plugin_code():
    """Registry().names() reads metadata only: no plugin module is imported."""
    code = (
        "import sys, ipfs_accel; names = ipfs_accel.Registry().names(); "
        "loaded = [m for m in sys.modules if m.startswith('ipfs_accel_')]; "
        "print(len(names), loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = out.stdout.split(" ", 1)
    assert int(count) >= len(BUILT_IN)
    assert loaded.strip() == "[]"


def test_a_call_for_one_backend_uses_only_its_plugin():
    """Each backend has its own plugin manager holding exactly one plugin (O(1) dispatch)."""
    registry = Registry()
    for name in BUILT_IN:
        hooks = registry.hooks(name)
        assert len(hooks.pm.get_plugins()) == 1

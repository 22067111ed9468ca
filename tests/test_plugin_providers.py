"""Every installed plugin names its API for telemetry (``BackendInfo.provider``, OpenTelemetry's
``gen_ai.provider.name``), and the hosted APIs use the GenAI conventions' well-known values."""

from __future__ import annotations

import pytest
from ipfs_accel import Registry

# The GenAI semantic conventions' values for the hosted APIs the built-in plugins speak.
WELL_KNOWN = {"openai": "openai", "claude": "anthropic", "gemini": "gcp.gemini", "groq": "groq"}
BUILT_IN = ["claude", "gemini", "groq", "hf_tei", "hf_tgi", "llvm", "ollama", "openai", "ovms"]
INSTALLED = Registry().names()  # the entry-point group ipfs_accel.backends


def test_every_built_in_plugin_is_installed():
    assert set(BUILT_IN) <= set(INSTALLED)


@pytest.mark.parametrize("name", INSTALLED)
def test_each_installed_plugin_declares_a_provider(name):
    """Non-empty, lowercase and without whitespace, as a telemetry attribute value."""
    provider = Registry().get(name).info.provider
    assert provider, f"{name} declares no provider"
    assert provider == provider.lower(), f"{name}: {provider!r} is not lowercase"
    assert not any(c.isspace() for c in provider), f"{name}: {provider!r} has whitespace"


@pytest.mark.parametrize(("name", "provider"), sorted(WELL_KNOWN.items()))
def test_hosted_apis_use_the_conventions_values(name, provider):
    assert Registry().get(name).info.provider == provider

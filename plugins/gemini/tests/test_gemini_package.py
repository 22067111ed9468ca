"""The distribution's declarations: entry point, public surface, backend info."""

from __future__ import annotations

import tomllib
from pathlib import Path

import ipfs_accel_gemini

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_entry_point_is_declared() -> None:
    """pyproject.toml declares the ``gemini`` backend entry point to the package."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project["name"] == "ipfs-accel-plugin-gemini"
    assert project["entry-points"]["ipfs_accel.backends"] == {"gemini": "ipfs_accel_gemini"}


def test_public_surface() -> None:
    """``__all__`` is sorted and is exactly the hooks, the options and the default models."""
    assert ipfs_accel_gemini.__all__ == sorted(ipfs_accel_gemini.__all__)
    assert set(ipfs_accel_gemini.__all__) == {
        "DEFAULT_EMBED_MODEL", "DEFAULT_MODEL", "GeminiOptions", "backend_info",
        "batch_exchange", "batch_result", "classify_error", "parse_usage", "send",
    }


def test_backend_info() -> None:
    """The backend declares its base URL, key env vars, default model and operations."""
    info = ipfs_accel_gemini.backend_info()
    assert info.name == "gemini"
    assert info.default_base_url == "https://generativelanguage.googleapis.com"
    assert info.api_key_env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert info.api_key_required
    assert info.default_model == "gemini-2.5-flash"
    assert info.operations == {"chat", "generate", "embed", "stream_chat", "stream_generate"}
    assert info.options is ipfs_accel_gemini.GeminiOptions
    assert info.batch is not None and info.batch.operations == {"chat"}

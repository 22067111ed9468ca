"""The groq plugin as a package: entry point, public surface, backend declaration."""

from __future__ import annotations

import pathlib
import tomllib

import ipfs_accel_groq
from ipfs_accel import BatchLimits, Registry

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_entry_point_declared() -> None:
    """pyproject.toml declares the `groq` backend entry point and the distribution name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ipfs-accel-plugin-groq"
    assert project["entry-points"]["ipfs_accel.backends"] == {"groq": "ipfs_accel_groq"}


def test_public_surface() -> None:
    """__all__ is sorted and is exactly the public names of the module."""
    module = ipfs_accel_groq
    public = {
        name for name, value in vars(module).items()
        if not name.startswith("_")
        and (name.isupper() or getattr(value, "__module__", None) == module.__name__)
    }
    assert sorted(ipfs_accel_groq.__all__) == ipfs_accel_groq.__all__
    assert set(ipfs_accel_groq.__all__) == public


def test_backend_declaration() -> None:
    """The plugin validates and declares its defaults, env vars and operations."""
    info = Registry(plugins=[ipfs_accel_groq], entry_points=False).hooks("groq").info
    assert info.default_base_url == "https://api.groq.com/openai/v1"
    assert info.api_key_env == ("GROQ_API_KEY",) and info.api_key_required
    assert info.base_url_env == ("GROQ_BASE_URL",)
    assert info.default_model == "llama-3.3-70b-versatile"
    assert dict(info.default_models) == {"embed": "nomic-embed-text-v1_5"}
    assert info.operations == {"chat", "generate", "embed", "stream_chat", "stream_generate"}
    assert info.server_request_id_headers == ("x-request-id",)
    chat = {"tools", "json_schema", "json_object", "images"}
    assert dict(info.features or {}) == {"chat": chat, "stream_chat": chat,
                                         "generate": set(), "stream_generate": set()}
    assert info.batch == BatchLimits(max_requests=50_000, max_bytes=100_000_000,
                                     operations=frozenset({"chat"}))

"""The openai plugin as a package: entry point, public surface, backend declaration."""

from __future__ import annotations

import pathlib
import tomllib

import ipfs_accel_openai
from ipfs_accel import BatchLimits, Registry

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_entry_point_declared() -> None:
    """pyproject.toml declares the `openai` backend entry point and the distribution name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ipfs-accel-plugin-openai"
    assert project["entry-points"]["ipfs_accel.backends"] == {"openai": "ipfs_accel_openai"}


def test_public_surface() -> None:
    """__all__ is sorted and is exactly the public names of the module."""
    module = ipfs_accel_openai
    public = {
        name for name, value in vars(module).items()
        if not name.startswith("_")
        and (name.isupper() or getattr(value, "__module__", None) == module.__name__)
    }
    assert sorted(ipfs_accel_openai.__all__) == ipfs_accel_openai.__all__
    assert set(ipfs_accel_openai.__all__) == public


def test_backend_declaration() -> None:
    """The plugin validates and declares its defaults, env vars and operations."""
    info = Registry(plugins=[ipfs_accel_openai], entry_points=False).hooks("openai").info
    assert info.default_base_url == "https://api.openai.com/v1"
    assert info.api_key_env == ("OPENAI_API_KEY",) and info.api_key_required
    assert info.base_url_env == ("OPENAI_BASE_URL",)
    assert info.default_model == "gpt-4o-mini"
    assert dict(info.default_models) == {"embed": "text-embedding-3-small",
                                         "generate": "gpt-3.5-turbo-instruct",
                                         "stream_generate": "gpt-3.5-turbo-instruct"}
    assert info.operations == {"chat", "generate", "embed", "stream_chat", "stream_generate"}
    assert info.server_request_id_headers == ("x-request-id",)
    chat = {"tools", "json_schema", "json_object", "images"}
    assert dict(info.features or {}) == {"chat": chat, "stream_chat": chat,
                                         "generate": set(), "stream_generate": set()}
    assert info.batch == BatchLimits(max_requests=50_000, max_bytes=200_000_000,
                                     operations=frozenset({"chat", "embed"}),
                                     max_inputs=50_000)

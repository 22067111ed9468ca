"""Plugin discovery and validation, endpoint settings, and the public surface."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import types
import venv
from pathlib import Path

import _echo_plugin
import httpx2
import ipfs_accel
import pytest
from ipfs_accel import (
    BackendInfo,
    ConfigurationError,
    PluginLoadError,
    Registry,
    hookimpl,
)

CORE = Path(__file__).resolve().parents[1]


def test_public_surface_is_exactly_what_is_meant():
    """__all__ is sorted and every name in it exists; nothing private leaks."""
    names = ipfs_accel.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(ipfs_accel, name), name
    public = {n for n in dir(ipfs_accel) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(ipfs_accel, n), types.ModuleType)}
    assert public - modules - {"annotations", "TYPE_CHECKING", "Any"} == set(names)


def test_listing_backends_does_not_import_the_http_machinery():
    """import ipfs_accel + Registry().names() leaves httpx2, asyncio and stamina unimported."""
    code = ("import sys, ipfs_accel; ipfs_accel.Registry().names(); "
            "print(sorted(m for m in ('httpx2', 'asyncio', 'stamina') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_direct_plugins_are_listed_and_loaded():
    """Plugins passed in are listed by name and give a Backend."""
    registry = Registry(plugins=[_echo_plugin], entry_points=False)
    assert registry.names() == ["echo"]
    backend = registry.get("echo")
    assert backend.name == "echo" and "chat" in backend.info.operations


def test_unknown_backend_names_the_known_ones():
    """get() of an unknown name says which backends exist."""
    registry = Registry(plugins=[_echo_plugin], entry_points=False)
    with pytest.raises(ConfigurationError, match=r"unknown backend 'nope' \(known: echo\)"):
        registry.get("nope")


def test_plugin_missing_send_is_rejected():
    """A plugin without the required send hook fails validation with a clear reason."""
    plugin = types.SimpleNamespace()

    @hookimpl
    def backend_info() -> BackendInfo:
        return BackendInfo(name="half")

    plugin.backend_info = backend_info
    with pytest.raises(PluginLoadError, match="required hook 'send'"):
        Registry(plugins=[plugin], entry_points=False)


def test_plugin_with_unknown_hook_is_rejected():
    """A hook implementation that matches no spec is reported (pluggy's check_pending)."""
    plugin = types.SimpleNamespace(
        backend_info=_echo_plugin.backend_info, send=_echo_plugin.send
    )

    @hookimpl
    def sendd(call: object) -> None:
        return None

    plugin.sendd = sendd
    with pytest.raises(PluginLoadError, match="does not validate"):
        Registry(plugins=[plugin], entry_points=False)


def test_plugin_with_wrong_hook_arguments_is_rejected():
    """A hook taking arguments the spec does not have is rejected at registration."""
    plugin = types.SimpleNamespace(backend_info=_echo_plugin.backend_info)

    @hookimpl
    def send(call: object, endpoint: object, extra: object) -> None:
        return None

    plugin.send = send
    with pytest.raises(PluginLoadError, match="does not validate"):
        Registry(plugins=[plugin], entry_points=False)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"initial_retry_delay": -0.5}, "initial_retry_delay"),
        ({"max_retry_delay": 0}, "max_retry_delay"),
        ({"max_concurrent_requests": 0}, "max_concurrent_requests"),
        ({"queue_size": -1}, "queue_size"),
        ({"timeout": float("inf")}, "timeout"),
        ({"backoff_factor": 0.5}, "backoff_factor"),
        ({"deadline": 0}, "deadline"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"max_retries": "five"}, "max_retries"),
        ({"colour": "red"}, "colour"),
        ({"flavour": 3}, "flavour"),
    ],
)
def test_bad_settings_fail_at_create_naming_the_setting(settings, named):
    """create_endpoint rejects bad settings with an error naming the setting."""
    backend = Registry(plugins=[_echo_plugin], entry_points=False).get("echo")
    with pytest.raises(ConfigurationError, match=named):
        backend.create_endpoint(**settings)
    assert backend.endpoints() == []


def test_bad_backend_defaults_fail_at_get():
    """Backend-wide defaults are validated when the backend is made."""
    with pytest.raises(ConfigurationError, match="queue_size"):
        Registry(plugins=[_echo_plugin], entry_points=False).get("echo", queue_size=-3)


def test_endpoint_lifecycle():
    """Endpoints are created, read, updated and removed; the default follows."""
    backend = Registry(plugins=[_echo_plugin], entry_points=False).get("echo", max_retries=2)
    a = backend.create_endpoint(base_url="http://a.test/", max_concurrent_requests=3)
    b = backend.create_endpoint("replica-b", base_url="http://b.test")
    assert backend.endpoints() == [a, "replica-b"]
    cfg = backend.get_endpoint(a)
    assert cfg.base_url == "http://a.test" and cfg.settings.max_retries == 2
    backend.update_endpoint(a, max_concurrent_requests=7)
    assert backend.get_endpoint(a).settings.max_concurrent_requests == 7
    assert backend.get_endpoint(a).base_url == "http://a.test"
    assert backend.get_endpoint().endpoint_id == a
    backend.remove_endpoint(a)
    assert backend.get_endpoint().endpoint_id == b
    with pytest.raises(ConfigurationError, match="already exists"):
        backend.create_endpoint("replica-b")
    with pytest.raises(ConfigurationError, match="no endpoint 'gone'"):
        backend.get_stats("gone")


def test_key_resolution_order():
    """Endpoint key, then backend default, then the documented env var."""
    env = {"ECHO_API_KEY": "from-env"}
    registry = Registry(plugins=[_echo_plugin], entry_points=False, environ=env)
    plain = registry.get("echo")
    e1 = plain.create_endpoint()
    e2 = plain.create_endpoint(api_key="own")
    assert plain.get_endpoint(e1).api_key.reveal() == "from-env"  # type: ignore[union-attr]
    assert plain.get_endpoint(e2).api_key.reveal() == "own"  # type: ignore[union-attr]
    # one Backend per name per Registry: other backend defaults need another Registry
    with pytest.raises(ConfigurationError, match="already made by this Registry"):
        registry.get("echo", api_key="backend-wide")
    assert registry.get("echo") is plain
    other = Registry(plugins=[_echo_plugin], entry_points=False, environ=env)
    with_default = other.get("echo", api_key="backend-wide")
    assert other.get("echo", api_key="backend-wide") is with_default  # the same defaults
    apart = registry.fresh("echo", api_key="backend-wide")  # or a separate Backend
    assert apart is not plain and apart.endpoints() == []
    e3 = with_default.create_endpoint()
    assert with_default.get_endpoint(e3).api_key.reveal() == "backend-wide"  # type: ignore[union-attr]


EXAMPLE_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "ipfs-accel-plugin-tiny"
version = "0.0.1"
dependencies = []

[tool.setuptools]
py-modules = ["ipfs_accel_tiny", "ipfs_accel_tiny_broken"]

[project.entry-points."ipfs_accel.backends"]
tiny = "ipfs_accel_tiny"
broken = "ipfs_accel_tiny_broken"
"""

TINY = '''
import ipfs_accel

@ipfs_accel.hookimpl
def backend_info():
    return ipfs_accel.BackendInfo(name="tiny", default_base_url="http://tiny.test",
                                  operations=frozenset({"chat"}))

@ipfs_accel.hookimpl
def send(call, endpoint):
    return ipfs_accel.Exchange(path="/chat", json={"m": call.messages})
'''

CHECK = '''
import sys
import ipfs_accel
r = ipfs_accel.Registry()
names = r.names()
assert "tiny" in names and "broken" in names, names
assert "ipfs_accel_tiny" not in sys.modules, "listing imported plugin code"
print("tiny ops", sorted(r.get("tiny").info.operations))
try:
    r.get("broken")
except ipfs_accel.PluginLoadError as exc:
    print("broken:", exc)
status = {s.name: s for s in r.status()}
assert status["broken"].error and "boom" in status["broken"].error
assert status["tiny"].loaded and status["tiny"].distribution == "ipfs-accel-plugin-tiny"
print("ok")
'''


@pytest.mark.slow
def test_entry_point_discovery_in_a_fresh_venv(tmp_path):
    """A plugin distribution pip-installed into a fresh venv is found through its entry point;
    a plugin whose import raises is reported, not fatal."""
    src = tmp_path / "tiny"
    src.mkdir()
    (src / "pyproject.toml").write_text(EXAMPLE_PYPROJECT)
    (src / "ipfs_accel_tiny.py").write_text(TINY)
    (src / "ipfs_accel_tiny_broken.py").write_text("raise RuntimeError('boom at import')\n")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(CORE), str(src)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    out = subprocess.run(
        [str(py), "-c", textwrap.dedent(CHECK)], check=False, capture_output=True, text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "tiny ops ['chat']" in out.stdout
    assert "boom at import" in out.stdout
    assert out.stdout.strip().endswith("ok")


def test_python_is_the_test_python():
    """The suite runs on a supported Python."""
    assert sys.version_info >= (3, 11)


def test_first_use_from_many_threads_makes_one_default_endpoint():
    """Calls without an endpoint_id from several threads at once share one default endpoint."""
    backend = Registry(plugins=[_echo_plugin], entry_points=False, transport=httpx2.MockTransport(
        lambda r: httpx2.Response(200, json={"choices": [{"message": {"content": "x"}}]})
    )).get("echo")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            backend.chat([{"role": "user", "content": "hi"}])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert backend.endpoints() == ["default"]
    assert backend.get_stats().successful_requests == 16

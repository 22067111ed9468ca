"""`ipfs-accel demo` end to end, and the library import staying free of the CLI's deps."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from _cli_fixtures import cli, cli_env
from ipfs_accel import BackendInfo, Call, EndpointConfig, Exchange, Registry, hookimpl
from ipfs_accel.cli._common import CliError
from ipfs_accel.cli._demo import run_demo
from ipfs_accel.cli._demo_pools import header_style
from ipfs_accel.testing import require_or_skip
from rich.console import Console

_INSTALLED = set(Registry().names())
_ROOT = Path(__file__).resolve().parents[1]
_EXAMPLE = _ROOT / "examples" / "ipfs-accel-plugin-example" / "src" / "ipfs_accel_example"


def _env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "empty"
    site.mkdir()
    return cli_env(site)


def test_import_ipfs_accel_does_not_import_typer_or_rich() -> None:
    """`import ipfs_accel` stays light: no typer, rich or the cli package."""
    code = ("import sys, ipfs_accel; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('typer', 'rich', 'click') or m == 'ipfs_accel.cli'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert r.stdout.strip() == "[]"


def test_demo_finishes_every_call_exactly_once(tmp_path: Path) -> None:
    """The demo runs offline through every installed backend's pool, proves nothing was
    lost, and says what pacing held back beside the 429s the servers sent."""
    if not _INSTALLED:
        require_or_skip("no backend plugin installed")
    stats = tmp_path / "demo-stats.json"
    r = cli(["demo", "--calls", "90", "--seed", "3", "--stats-file", str(stats)],
            env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Nothing lost: every call finished exactly once (90 calls, checked)." in r.stdout
    assert "FAIL" not in r.stdout and "Traceback" not in r.stderr
    assert "demo-key" not in r.stdout + r.stderr  # fake keys are keys too: never printed
    assert "the spare server went down after 45 calls" in r.stderr
    conserved = re.search(r"pools conserve calls: 90 == ok (\d+) \+ failed (\d+)", r.stdout)
    assert conserved, r.stdout
    ok = int(conserved[1])
    pacing = re.search(r"Pacing held calls back (\d+) times \((\d+) at a member, (\d+) in a "
                       r"pool waiting for one\); the servers refused (\d+) with 429 \(the "
                       r"members saw (\d+) refusals for a limit, overloads included\)\.",
                       r.stdout)
    assert pacing, r.stdout
    held, at_member, in_pool, refused, seen = (int(n) for n in pacing.groups())
    assert held == at_member + in_pool
    document = json.loads(stats.read_text())
    agg = document["aggregate"]
    assert agg["total_requests"] == agg["successful_requests"] + agg["failed_requests"]
    assert agg["successful_requests"] == ok  # one answer per call, on the member it ran on
    assert agg["total_requests"] > 90  # faults and the spare going down cost attempts
    assert agg["paced"] == at_member and agg["rate_limited"] == seen
    assert seen >= refused  # every 429 the servers sent is a refusal the members saw
    assert f"Servers[/]: {refused} x 429".replace("[/]", "") in r.stdout


def test_each_plugin_gets_the_rate_limit_headers_it_reads() -> None:
    """The demo's servers speak to a plugin in the header style its parse_rate_limits
    reads; one that reads none gets 429s only (and is paced by rpm)."""
    registry = Registry()
    expected = {"openai": "openai", "groq": "openai", "claude": "anthropic", "ollama": None}
    present = {name: style for name, style in expected.items() if name in _INSTALLED}
    if not present:
        require_or_skip("none of openai, groq, claude, ollama installed")
    assert {name: header_style(registry.hooks(name)) for name in present} == present


def test_demo_backend_option_narrows(tmp_path: Path) -> None:
    """`demo --backend ollama` uses only ollama endpoints."""
    if "ollama" not in _INSTALLED:
        require_or_skip("ollama plugin not installed")
    r = cli(["demo", "--backend", "ollama", "--calls", "20"], env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ollama-1" in r.stdout
    assert "openai" not in r.stdout and "claude" not in r.stdout


def test_demo_unknown_backend_is_one_line(tmp_path: Path) -> None:
    """A backend the demo cannot serve: exit 2 with the choices."""
    r = cli(["demo", "--backend", "nosuch"], env=_env(tmp_path))
    assert r.returncode == 2
    assert "nosuch" in r.stderr and "ollama" in r.stderr
    assert "Traceback" not in r.stderr


def _example_plugin() -> ModuleType:
    """The example third-party plugin, imported from its source (it is not installed here)."""
    spec = importlib.util.spec_from_file_location("ipfs_accel_example", _EXAMPLE / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _NoCase:
    """A plugin with no conformance_case hook: the demo has nothing to replay for it."""

    @hookimpl
    def backend_info(self) -> BackendInfo:
        return BackendInfo(name="nocase", description="no case", default_base_url="http://x",
                           operations=frozenset({"chat"}))

    @hookimpl
    def send(self, call: Call, endpoint: EndpointConfig) -> Exchange:
        return Exchange(path="/never", json={}, parse=lambda resp: None)


def test_demo_replays_a_third_party_plugins_case() -> None:
    """A plugin the core has never heard of takes part through its case; one without is skipped."""
    registry = Registry(plugins=[_example_plugin(), _NoCase()], entry_points=False)
    err, out = io.StringIO(), io.StringIO()
    code = run_demo(backends=[], calls=40, seed=11, endpoints=2, stats_file=None,
                    registry=registry, console=Console(file=err, width=200),
                    out=Console(file=out, width=200))
    assert code == 0, err.getvalue() + out.getvalue()
    assert "skipping nocase: the plugin offers no conformance case" in err.getvalue()
    assert "example-1" in out.getvalue() and "example-2" in out.getvalue()
    assert "nocase-" not in out.getvalue()
    assert "every call finished exactly once" in out.getvalue()
    assert "injected nothing" not in out.getvalue()  # the faults reached a stranger too
    # its key travels in a header the servers do not read: a server per key, limits kept
    assert "example: the key travels where the servers do not look" in err.getvalue()
    assert "Pacing held calls back" in out.getvalue()
    assert "demo-key" not in err.getvalue() + out.getvalue()


def test_demo_skips_every_plugin_without_a_case_with_one_line() -> None:
    """With no plugin that has a case the demo stops with one error, not an empty run."""
    err = io.StringIO()
    try:
        run_demo(backends=[], calls=5, seed=1, endpoints=1, stats_file=None,
                 registry=Registry(plugins=[_NoCase()], entry_points=False),
                 console=Console(file=err), out=Console(file=io.StringIO()))
    except CliError as exc:
        assert "conformance case" in exc.message
    else:
        raise AssertionError("the demo ran with no backend to call")
    assert "skipping nocase" in err.getvalue()


def test_core_holds_no_vendor_wire_format() -> None:
    """The demo's answers come from the plugins: no vendor's response fields in the core."""
    fields = ("candidates", "content_block", "prompt_eval_count", "usageMetadata",
              "generated_text", "batchEmbedContents", "x-compute-tokens", "/api/chat",
              "stop_reason")
    found = [f"{path.relative_to(_ROOT)}: {field}"
             for path in sorted((_ROOT / "core" / "src").rglob("*.py"))
             for field in fields if field in path.read_text(encoding="utf-8")]
    assert not found, found

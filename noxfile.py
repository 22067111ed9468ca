"""Sessions: `nox -l` lists them. CI runs `nox` (the default set below)."""

from __future__ import annotations

import pathlib

import nox

ROOT = pathlib.Path(__file__).parent
PLUGINS = sorted(p.parent.name for p in ROOT.glob("plugins/*/pyproject.toml"))
TEST_DEPS = ["pytest>=8", "pytest-asyncio>=0.23", "hypothesis>=6.100"]
# The two long suites (core, integration; each run once per async transport) spread over
# the machine's cores: on CI's two they take half the time. Pass `-- -n 0` to run in one.
XDIST = "pytest-xdist>=3.5"
PARALLEL = ["-n", "auto", "--maxprocesses", "4"]
OTEL_SDK = "opentelemetry-sdk>=1.27"  # the tests read spans and metrics back in memory
OTLP = "opentelemetry-exporter-otlp-proto-http>=1.27"  # run --otel exports with it
# The async HTTP path's library (IPFS_ACCEL_HTTP): core, integration and conformance run
# under each; every session installs aiohttp, whose own tests fail under CI without it.
HTTP = ["httpx2", "aiohttp"]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["core", "plugins", "integration", "conformance", "lint"]


def _plugin_paths(names: list[str] | None = None) -> list[str]:
    return [f"./plugins/{n}" for n in (PLUGINS if names is None else names)]


@nox.session
@nox.parametrize("http", HTTP)
def core(session: nox.Session, http: str) -> None:
    """The core alone: unit and property tests of queue, retry, stats, registry, keys."""
    # [cli]: the report command's test runs the app, and the key tests render with rich
    session.install("./core[cli,redis,otel,aiohttp]", OTEL_SDK, *TEST_DEPS, XDIST)
    session.run("pytest", "core/tests", *PARALLEL, *session.posargs,
                env={"IPFS_ACCEL_HTTP": http})


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin with only the core beside it, in its own venv."""
    # no [cli]: a plugin must work in a program that only uses the library; the SDK: the
    # kit's telemetry check reads the plugin's spans back with it
    session.install("./core[otel]", OTEL_SDK, f"./plugins/{plugin}", *TEST_DEPS)
    session.run("pytest", f"plugins/{plugin}/tests", *session.posargs)


@nox.session
def plugins(session: nox.Session) -> None:
    """Each plugin in turn, alone with the core (one venv per plugin, via `plugin`)."""
    for name in PLUGINS:
        session.notify(f"plugin(plugin='{name}')")


@nox.session
@nox.parametrize("http", HTTP)
def integration(session: nox.Session, http: str) -> None:
    """All plugins installed together: discovery, cross-plugin and property tests."""
    # pip: the example-plugin round trip builds a wheel and makes a fresh venv with it
    session.install("./core[cli,redis,otel,aiohttp]", OTEL_SDK, OTLP, *_plugin_paths(),
                    *TEST_DEPS, XDIST, "build", "pip")
    session.run("pytest", "tests", "--ignore=tests/conformance", *PARALLEL, *session.posargs,
                env={"IPFS_ACCEL_HTTP": http})


@nox.session
@nox.parametrize("http", HTTP)
def conformance(session: nox.Session, http: str) -> None:
    """Every plugin against an OpenAPI mock that validates requests (../shared/specs)."""
    session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
    session.install("./core[aiohttp]", *_plugin_paths(), *TEST_DEPS)
    session.run("pytest", "tests/conformance", *session.posargs, env={"IPFS_ACCEL_HTTP": http})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict over the core, every plugin and the example plugins."""
    # the SDK and the OTLP exporter: the kit's telemetry check and run --otel import them
    session.install("ruff", "mypy", "-e", "./core[cli,redis,otel,aiohttp]", OTEL_SDK, OTLP,
                    *[f"-e{p}" for p in _plugin_paths()], *TEST_DEPS)
    session.run("ruff", "check", "core", "plugins", "tests", "bench", "examples")
    session.run("mypy", "--strict", "core/src", *[f"plugins/{n}/src" for n in PLUGINS])
    for example in sorted(ROOT.glob("examples/*/src")):  # each alone: they share module names
        session.run("mypy", "--strict", str(example.relative_to(ROOT)))


@nox.session
def bench(session: nox.Session) -> None:
    """ipfs-accel against raw httpx2, the openai/anthropic SDKs and litellm (bench/compare.py),
    then pools against their targets (bench/pool.py), then the async transports, httpx2 and
    aiohttp, raw and under ipfs-accel (bench/transport.py), then the core's own CPU per call
    with no I/O (bench/core_path.py).

    The peer SDKs are installed in this session only, never as project dependencies. Not in
    the default set: it takes minutes and its figures depend on the machine. Pass
    ``-- --quick`` for a shorter run (of each).
    """
    session.install("./core", *_plugin_paths(), "openai", "anthropic", "litellm", "aiohttp")
    session.run("python", "bench/compare.py", *session.posargs,
                env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    session.run("python", "bench/pool.py", *[a for a in session.posargs if a == "--quick"])
    session.run("python", "bench/transport.py", *[a for a in session.posargs if a == "--quick"])
    session.run("python", "bench/core_path.py")


@nox.session
def report(session: nox.Session) -> None:
    """Regenerate docs/implementation-report.md: the kit's live checks for the nine plugins."""
    session.install("./core[cli]", *_plugin_paths())
    session.run("python", "-c", (
        "import pathlib, sys, stamina.instrumentation as si; si.set_on_retry_hooks([])\n"
        "from ipfs_accel import Registry\n"
        "from ipfs_accel.testing import build_report, render_markdown\n"
        "report = build_report(Registry())\n"
        "pathlib.Path('docs/implementation-report.md').write_text(render_markdown(report))\n"
        "print('wrote docs/implementation-report.md; all passed:', report.passed)\n"
        "sys.exit(0 if report.passed else 1)\n"
    ))

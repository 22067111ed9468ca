"""OpenAPI mock-server harness for the conformance test session.

Starts the Steady mock server (npm package ``@stdy/cli``, pinned in the repo's
``package.json``; install it with ``npm ci``) on a free loopback port for one
OpenAPI spec. Steady validates every request against the spec. In the mode
this harness always uses (``--reject-on-sdk-error``, the 0.22 default made
explicit) a request with a structural error (Steady's E2xxx/E3xxx "error"
diagnostics: unknown path/method, missing required field/header/query
parameter/body, wrong JSON type, value not in enum, wrong Content-Type,
unparsable JSON, ...) is answered with::

    HTTP 400 (404 unknown path, 405 method not allowed)
    X-Steady-Request-Valid: false
    X-Steady-Error-Count: N
    X-Steady-Error-<i>-Code / -Path / -Message   (i = 1..N)
    {"error": "Validation failed", "steady": {"valid": false, "errors": [...]}}
    (404/405 bodies are {"error": "...", "suggestion": "..."})

CAVEAT: some violations are NOT rejected. Steady answers them normally (2xx,
``X-Steady-Request-Valid: true``) but lists them in the ``X-Steady-Error-*``
headers: E3012 no ``oneOf``/``anyOf`` variant matched (e.g. an OpenAI chat
message with an unknown role), E4xxx content notes (pattern, min/max length,
numeric range e.g. ``temperature: 7``, array size, format). Hence
:func:`assert_not_rejected` by default also fails when any diagnostic is
reported. See ``README.md`` next to this file for per-spec findings.

Typical use::

    from mockserver import require_spec, start_mock, assert_not_rejected

    def test_chat() -> None:
        spec = require_spec("openai/openapi.transformed.yml")
        with start_mock(spec) as mock:
            r = httpx.post(mock.url("/chat/completions"), json={...})
            assert_not_rejected(r)

or, to start each spec only once per test session, the ``mock_pool``
fixture (import it into the test module or a conftest.py)::

    from mockserver import MockPool, mock_pool  # noqa: F401

    def test_chat(mock_pool: MockPool) -> None:
        mock = mock_pool.get("openai/openapi.transformed.yml", prefix="/v3")

Stdlib only (plus pytest for the fixture, and the kit's ``require_or_skip``: a missing
specs folder or mock server skips on a user's machine and fails under ``CI=true``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

import pytest
from ipfs_accel.testing import require_or_skip

__all__ = [
    "AUTO_FIXUP",
    "HEALTH_PATH",
    "KNOWN_FIXUPS",
    "REJECTED_STATUSES",
    "REPO_ROOT",
    "SPECS_ENV_VAR",
    "STEADY_BIN",
    "MockPool",
    "MockServer",
    "MockStartError",
    "ResponseLike",
    "SpecTransform",
    "assert_not_rejected",
    "assert_rejected",
    "diagnostics",
    "fix_kserve_v2_paths",
    "fixup_for",
    "is_rejected",
    "mock_pool",
    "require_mock_binary",
    "require_spec",
    "require_specs_dir",
    "specs_dir",
    "start_mock",
]

#: Repository root: this file is <root>/tests/conformance/mockserver.py.
REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]

#: The mock-server launcher installed by ``npm ci`` (a node wrapper that
#: spawns the native binary shipped in ``@stdy/cli-<os>-<arch>``).
STEADY_BIN: Final[Path] = REPO_ROOT / "node_modules" / ".bin" / "steady"

#: Environment variable that overrides the specs folder location.
SPECS_ENV_VAR: Final = "IPFS_ACCEL_SPECS"

#: Steady's health endpoint (always at the root, whatever the prefix).
HEALTH_PATH: Final = "/_x-steady/health"

#: Statuses of a Steady rejection: 400 request fails validation, 404 path not
#: in the spec, 405 path exists but not with this method. Every rejection
#: also carries ``X-Steady-Request-Valid: false``, which is what
#: :func:`is_rejected` checks first.
REJECTED_STATUSES: Final[frozenset[int]] = frozenset({400, 404, 405})

_DEFAULT_STARTUP_TIMEOUT: Final = 60.0

#: A function that returns a patched copy of a parsed OpenAPI document.
SpecTransform = Callable[[dict[str, Any]], dict[str, Any]]


class _AutoFixup:
    def __repr__(self) -> str:
        return "AUTO_FIXUP"


#: Default ``transform`` of :func:`start_mock`: apply the fix-up registered
#: in :data:`KNOWN_FIXUPS` for that spec, if any.
AUTO_FIXUP: Final = _AutoFixup()


class MockStartError(RuntimeError):
    """The mock server exited or did not answer in time."""


# --------------------------------------------------------------------------
# Locating the specs and the binary
# --------------------------------------------------------------------------


def specs_dir() -> Path:
    """The specs folder: ``$IPFS_ACCEL_SPECS`` if set, else
    ``<repo root>/../shared/specs``. It may not exist."""
    env = os.environ.get(SPECS_ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "specs").resolve()


def require_specs_dir() -> Path:
    """Return :func:`specs_dir`, or :func:`require_or_skip` if it does not exist."""
    d = specs_dir()
    if not d.is_dir():
        require_or_skip(
            f"OpenAPI specs folder not found: {d} "
            f"(set {SPECS_ENV_VAR} or provide ../shared/specs beside the repo)"
        )
    return d


def require_spec(relpath: str | os.PathLike[str]) -> Path:
    """Absolute path of ``relpath`` inside the specs folder (e.g.
    ``"openai/openapi.transformed.yml"``), or :func:`require_or_skip` naming the
    missing folder or file."""
    p = require_specs_dir() / relpath
    if not p.is_file():
        require_or_skip(f"OpenAPI spec not found: {p}")
    return p


def require_mock_binary() -> Path:
    """The Steady launcher path, or :func:`require_or_skip` if it is not installed."""
    if not STEADY_BIN.exists():
        require_or_skip(
            f"mock server binary not found: {STEADY_BIN} "
            f"(run `npm ci` in {REPO_ROOT} to install @stdy/cli)"
        )
    return STEADY_BIN


# --------------------------------------------------------------------------
# Reading the mock's verdict
# --------------------------------------------------------------------------


class ResponseLike(Protocol):
    """What the helpers need from an httpx / httpx2 / requests response."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...


def _header(response: ResponseLike, name: str) -> str | None:
    headers = response.headers
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive
        lname = name.lower()
        for k, v in headers.items():
            if k.lower() == lname:
                return v
    return value


def is_rejected(response: ResponseLike) -> bool:
    """True if Steady refused the request as not matching the spec
    (``X-Steady-Request-Valid: false``; without that header, a status in
    :data:`REJECTED_STATUSES`)."""
    valid = _header(response, "x-steady-request-valid")
    if valid is not None:
        return valid.strip().lower() == "false"
    return response.status_code in REJECTED_STATUSES


def diagnostics(response: ResponseLike) -> list[str]:
    """Every validation issue Steady reported for the request, as
    ``"<code> at <location>: <message>"``, read from the
    ``X-Steady-Error-<i>-*`` headers. Present on rejections and also on
    accepted requests with non-blocking issues (E3012, E4xxx, ...)."""
    try:
        count = int(_header(response, "x-steady-error-count") or "0")
    except ValueError:
        count = 0
    out: list[str] = []
    for i in range(1, count + 1):
        code = _header(response, f"x-steady-error-{i}-code") or "?"
        where = _header(response, f"x-steady-error-{i}-path") or "?"
        msg = _header(response, f"x-steady-error-{i}-message") or ""
        out.append(f"{code} at {where}: {msg}")
    return out


def assert_not_rejected(response: ResponseLike, *, allow_diagnostics: bool = False) -> None:
    """Fail unless the mock accepted the request: 2xx, not rejected and,
    unless ``allow_diagnostics``, no validation diagnostic at all (Steady
    lets some spec violations through with a 2xx, see module docstring)."""
    problems = diagnostics(response)
    ok = 200 <= response.status_code < 300 and not is_rejected(response)
    if ok and (allow_diagnostics or not problems):
        return
    verdict = "rejected the request" if not ok else "accepted the request but reported"
    details = problems or [_safe_text(response)[:2000]]
    raise AssertionError(
        f"mock {verdict} (HTTP {response.status_code}):\n  " + "\n  ".join(details)
    )


def assert_rejected(response: ResponseLike) -> None:
    """Fail unless the mock rejected the request as invalid."""
    if not is_rejected(response):
        raise AssertionError(
            f"mock accepted a request expected to be invalid (HTTP "
            f"{response.status_code}, diagnostics: {diagnostics(response)}): "
            f"{_safe_text(response)[:500]}"
        )


def _safe_text(response: ResponseLike) -> str:
    try:
        return response.text
    except Exception:  # e.g. an unread streaming response
        return "<body not read>"


# --------------------------------------------------------------------------
# Spec fix-ups (applied to a temporary copy, never to the spec file)
# --------------------------------------------------------------------------

_DOLLAR_PARAM = re.compile(r"\$\{([^}/]+)\}")


def fix_kserve_v2_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """Fix-up for the KServe v2 spec (``ovms/rest_predict_v2.yaml``).

    1. Its path templates are written ``${MODEL_NAME}``; OpenAPI templates are
       ``{MODEL_NAME}``, so Steady reads a literal ``$`` and only matches
       ``/v2/models/$m/...``. They are rewritten to ``{MODEL_NAME}``.
    2. The protocol makes ``/versions/${MODEL_VERSION}`` optional
       (``v2/models/${MODEL_NAME}[/versions/${MODEL_VERSION}]/infer`` in
       required_api.md) but OpenAPI cannot say so and the spec only has the
       versioned paths. An unversioned copy of each such path item is added,
       without the ``MODEL_VERSION`` parameter.
    3. Server metadata is ``GET /v2`` in the protocol; the spec says ``/v2/``
       and Steady matches trailing slashes exactly, so ``/v2`` is added as an
       alias.
    """
    new = copy.deepcopy(doc)
    paths: dict[str, Any] = {}
    for key, item in (new.get("paths") or {}).items():
        fixed = _DOLLAR_PARAM.sub(r"{\1}", key)
        paths[fixed] = item
        if "/versions/{MODEL_VERSION}" in fixed:
            short = fixed.replace("/versions/{MODEL_VERSION}", "")
            paths.setdefault(short, _drop_path_param(item, "MODEL_VERSION"))
    if "/v2/" in paths and "/v2" not in paths:
        paths["/v2"] = copy.deepcopy(paths["/v2/"])
    new["paths"] = paths
    return new


def _drop_path_param(item: dict[str, Any], name: str) -> dict[str, Any]:
    item = copy.deepcopy(item)

    def keep(p: Any) -> bool:
        return not (isinstance(p, dict) and p.get("in") == "path" and p.get("name") == name)

    if isinstance(item.get("parameters"), list):
        item["parameters"] = [p for p in item["parameters"] if keep(p)]
    for op in item.values():
        if isinstance(op, dict) and isinstance(op.get("parameters"), list):
            op["parameters"] = [p for p in op["parameters"] if keep(p)]
            if "operationId" in op:
                op["operationId"] = str(op["operationId"]) + "-unversioned"
    return item


#: Fix-ups applied by default (``transform=AUTO_FIXUP``), keyed by the spec's
#: path relative to the specs folder (matched as a path suffix).
KNOWN_FIXUPS: Final[dict[str, SpecTransform]] = {
    "ovms/rest_predict_v2.yaml": fix_kserve_v2_paths,
}


def fixup_for(spec_path: str | os.PathLike[str]) -> SpecTransform | None:
    """The :data:`KNOWN_FIXUPS` entry for ``spec_path``, if any."""
    posix = Path(spec_path).as_posix()
    for suffix, fn in KNOWN_FIXUPS.items():
        if posix == suffix or posix.endswith("/" + suffix):
            return fn
    return None


def _resolve_transform(
    spec: Path, transform: SpecTransform | _AutoFixup | None
) -> SpecTransform | None:
    if isinstance(transform, _AutoFixup):
        return fixup_for(spec)
    return transform


# --------------------------------------------------------------------------
# Running the mock
# --------------------------------------------------------------------------


@dataclass
class MockServer:
    """A running Steady instance; a context manager, or call :meth:`stop`.

    ``base_url`` is where the spec's ``paths`` are served: root URL + prefix.
    Steady ignores the path part of the spec's ``servers`` URLs (e.g. the
    ``/v1`` of ``https://api.openai.com/v1``), so without a prefix the paths
    are served exactly as written under ``paths``, at the root."""

    spec_path: Path
    served_spec: Path
    prefix: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def root_url(self) -> str:
        """``http://host:port`` (Steady's own ``/_x-steady/...`` endpoints)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Root URL plus prefix, no trailing slash: prepend to spec paths."""
        return self.root_url + self.prefix

    def url(self, path: str) -> str:
        """Absolute URL of a spec path, e.g. ``mock.url("/chat/completions")``."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """The mock's output so far (startup diagnostics, request log)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the mock and its child (the whole process group)."""
        _kill_group(self.process, timeout)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> MockServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_mock(
    spec_path: str | os.PathLike[str],
    *,
    prefix: str = "",
    transform: SpecTransform | _AutoFixup | None = AUTO_FIXUP,
    host: str = "127.0.0.1",
    startup_timeout: float = _DEFAULT_STARTUP_TIMEOUT,
    extra_args: tuple[str, ...] = (),
) -> MockServer:
    """Start Steady for ``spec_path`` on a free port of ``host`` and return
    once it answers its health endpoint.

    ``prefix`` (e.g. ``"/v3"``) serves every spec path under that prefix.
    Steady has no option for this and ignores ``servers`` paths, so the spec
    is rewritten (``paths`` keys prefixed) into a temporary JSON file.
    ``transform`` patches the parsed spec the same way; by default
    (:data:`AUTO_FIXUP`) the :data:`KNOWN_FIXUPS` entry for this spec is
    used, ``None`` serves the file as-is. The spec file itself is never
    modified. YAML specs are parsed by a short-lived Steady run
    (``GET /_x-steady/spec`` returns the loaded spec as JSON), which keeps
    this module stdlib-only.

    Skips the test if the binary is not installed; raises
    :class:`MockStartError` if the server exits or does not answer in time.
    """
    binary = require_mock_binary()
    spec = Path(spec_path).resolve()
    if not spec.is_file():
        raise FileNotFoundError(spec)
    prefix = _normalise_prefix(prefix)
    fix = _resolve_transform(spec, transform)

    tmp = tempfile.TemporaryDirectory(prefix="ipfs-accel-mock-")
    workdir = Path(tmp.name)
    try:
        served = spec
        if prefix or fix is not None:
            doc = _load_spec_as_json(binary, spec, workdir, startup_timeout)
            if fix is not None:
                doc = fix(doc)
            if prefix:
                doc = _prefix_paths(doc, prefix)
            served = workdir / f"{spec.stem}.patched.json"
            served.write_text(json.dumps(doc), encoding="utf-8")
        mock = _launch(binary, served, workdir / "steady.log", host, startup_timeout, extra_args)
    except BaseException:
        tmp.cleanup()
        raise
    mock.spec_path = spec
    mock.prefix = prefix
    mock._tmpdir = tmp
    return mock


def _launch(
    binary: Path,
    spec: Path,
    log_path: Path,
    host: str,
    startup_timeout: float,
    extra_args: tuple[str, ...],
    attempts: int = 3,
) -> MockServer:
    last_error = ""
    for _ in range(attempts):
        port = _free_port(host)
        args = [
            str(binary),
            "--host",
            host,
            "--port",
            str(port),
            "--reject-on-sdk-error",
            "--no-color",
            *extra_args,
            str(spec),
        ]
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(REPO_ROOT),
                env=dict(os.environ, NO_COLOR="1"),
                start_new_session=True,  # own process group: node wrapper + binary
            )
        mock = MockServer(
            spec_path=spec,
            served_spec=spec,
            prefix="",
            host=host,
            port=port,
            process=proc,
            log_path=log_path,
            startup_seconds=0.0,
        )
        try:
            _wait_healthy(mock, startup_timeout)
        except BaseException as e:
            _kill_group(proc, 5.0)
            last_error = str(e)
            if isinstance(e, MockStartError) and "address already in use" in last_error.lower():
                continue  # lost the race for the port: try another one
            raise
        mock.startup_seconds = time.monotonic() - t0
        return mock
    raise MockStartError(last_error)


def _wait_healthy(mock: MockServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = mock.root_url + HEALTH_PATH
    while True:
        if mock.process.poll() is not None:
            raise MockStartError(
                f"mock server exited with code {mock.process.returncode} "
                f"for {mock.served_spec}:\n{mock.log()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2.0) as r:
                if r.status == 200:
                    return
        except OSError:  # URLError, ConnectionError, TimeoutError, ...
            pass
        if time.monotonic() > deadline:
            raise MockStartError(
                f"mock server for {mock.served_spec} not answering on {url} "
                f"after {timeout:.0f}s:\n{mock.log()[-4000:]}"
            )
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group of ``proc``, wait, then SIGKILL whatever is
    left of the group (the node launcher forwards signals to the binary,
    but the binary must not outlive a launcher killed hard)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=timeout)
    # An orphaned binary is reaped by init asynchronously: wait until the
    # group is gone so that callers can rely on the port being free.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix


def _load_spec_as_json(binary: Path, spec: Path, workdir: Path, timeout: float) -> dict[str, Any]:
    """Parse ``spec``: with :mod:`json` if it is JSON (some ``.yaml`` files
    are), otherwise via a throw-away Steady instance's ``/_x-steady/spec``."""
    try:
        doc = json.loads(spec.read_text(encoding="utf-8"))
        if isinstance(doc, dict):
            return doc
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    mock = _launch(binary, spec, workdir / "steady-convert.log", "127.0.0.1", timeout, ("--quiet",))
    try:
        with urllib.request.urlopen(mock.root_url + "/_x-steady/spec", timeout=60.0) as r:
            loaded = json.loads(r.read())
    finally:
        _kill_group(mock.process, 5.0)
    if not isinstance(loaded, dict):
        raise MockStartError(f"could not convert {spec} to JSON")
    return loaded


def _prefix_paths(doc: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Copy of ``doc`` with every ``paths`` key (and any ``#/paths/...``
    reference) under ``prefix``; ``servers`` is dropped (Steady ignores it)."""
    escaped = prefix.replace("~", "~0").replace("/", "~1")

    def fix_refs(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/paths/~1"):
                    out[k] = "#/paths/" + escaped + v[len("#/paths/") :]
                else:
                    out[k] = fix_refs(v)
            return out
        if isinstance(node, list):
            return [fix_refs(x) for x in node]
        return node

    new: dict[str, Any] = fix_refs(doc)
    new["paths"] = {prefix + p: item for p, item in (new.get("paths") or {}).items()}
    new.pop("servers", None)
    return new


# --------------------------------------------------------------------------
# Session-wide pool
# --------------------------------------------------------------------------


class MockPool:
    """Starts at most one mock per (spec, prefix, transform) and stops them
    all on :meth:`close`. A relative spec path is looked up in the specs
    folder with :func:`require_spec` (so a missing one skips the test)."""

    def __init__(self) -> None:
        self._servers: dict[tuple[Path, str, SpecTransform | None], MockServer] = {}

    def get(
        self,
        spec: str | os.PathLike[str],
        *,
        prefix: str = "",
        transform: SpecTransform | _AutoFixup | None = AUTO_FIXUP,
    ) -> MockServer:
        path = Path(spec)
        path = path.resolve() if path.is_absolute() else require_spec(path).resolve()
        fix = _resolve_transform(path, transform)
        key = (path, _normalise_prefix(prefix), fix)
        mock = self._servers.get(key)
        if mock is None or not mock.running:
            mock = start_mock(path, prefix=prefix, transform=fix)
            self._servers[key] = mock
        return mock

    def close(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        for mock in servers:
            mock.stop()

    def __enter__(self) -> MockPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@pytest.fixture(scope="session")
def mock_pool() -> Iterator[MockPool]:
    """Session-scoped :class:`MockPool`; every mock stops at session end."""
    with MockPool() as pool:
        yield pool

"""Skip a test for a missing component on a user's machine; fail it under CI.

A clone without the API specifications, the npm mock server or an optional plugin should
still run its tests: those that need the missing piece skip, saying what is missing. In CI
the same skip would hide that the run tested less than it claims, so with ``CI`` set to
``true`` (as GitHub Actions, GitLab and most CI services set it) the test fails instead.
Needs pytest, like the rest of the kit's test helpers; it is imported only when called.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

__all__ = ["import_or_skip", "require_or_skip", "under_ci"]


def under_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``, ``1`` or ``yes``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_or_skip(reason: str) -> NoReturn:
    """Skip the calling test (or module) because ``reason``; under CI, fail it instead.

    Call it where a test finds a component missing. At module level the whole module
    skips (or, under CI, fails to collect, which fails the session).
    """
    import pytest  # noqa: PLC0415 - the kit does not depend on pytest; its tests do

    if under_ci():
        pytest.fail(f"{reason} (CI=true: a missing component fails the run, it is not "
                    "skipped)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_or_skip(name: str) -> ModuleType:
    """``import name``, or :func:`require_or_skip` naming the module that is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require_or_skip(f"{name} is not installed ({exc})")

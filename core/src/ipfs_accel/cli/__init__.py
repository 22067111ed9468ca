"""The ``ipfs-accel`` command: list backends, chat, embed, run JSONL batches, the demo.

This package is never imported by ``import ipfs_accel``. The command's stack (typer, rich)
is the ``cli`` extra, ``pip install 'ipfs-accel-core[cli]'``: a program that only uses the
library does not install it. :func:`main` checks for it before importing the app, so
without it the command says in one line what to install instead of printing a traceback.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

__all__ = ["main"]

INSTALL_HINT = "pip install 'ipfs-accel-core[cli]'"
_EXTRA = ("typer", "rich")


def _missing_extra() -> list[str]:
    # find_spec looks the packages up without importing them (None: absent, or blocked by
    # a None in sys.modules)
    missing = []
    for name in _EXTRA:
        try:
            found = find_spec(name) is not None
        except ValueError:  # in sys.modules without a __spec__: importable all the same
            found = True
        if not found:
            missing.append(name)
    return missing


def main(argv: list[str] | None = None) -> int:
    """Run the command line (the ``ipfs-accel`` console script); return the exit code.

    Without the ``cli`` extra: one line on stderr naming what to install, exit code 2.
    """
    missing = _missing_extra()
    if missing:
        sys.stderr.write(f"ipfs-accel: the command needs {' and '.join(missing)}, which come "
                         f"with the cli extra: {INSTALL_HINT}\n")
        return 2
    from ._app import run_app  # noqa: PLC0415 - typer and rich load only when the command runs

    return run_app(argv)

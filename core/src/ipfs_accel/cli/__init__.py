"""The ``ipfs-accel`` command: list backends, chat, embed, run JSONL batches, the demo.

This package is never imported by ``import ipfs_accel``; typer and rich are imported only
when the command runs, so the library import stays light.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line (the ``ipfs-accel`` console script); return the exit code."""
    from ._app import run_app  # noqa: PLC0415 - typer and rich load only when the command runs

    return run_app(argv)

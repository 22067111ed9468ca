"""What the typer commands share: the options several take, the two consoles, stdin."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from ._common import CliError

__all__ = [
    "BackendOpt",
    "JsonOpt",
    "KeyEnvOpt",
    "ModelOpt",
    "RequestIdOpt",
    "RetriesOpt",
    "TimeoutOpt",
    "UrlOpt",
    "err",
    "out",
    "read_stdin",
    "settings",
]


def _width(stream: Any) -> int | None:
    # rich assumes 80 columns when not on a terminal: too narrow for the tables in logs
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return None if interactive or "COLUMNS" in os.environ else 160


out = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="Backend name (see "
                                         "`ipfs-accel backends`).", show_default=False)]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model (default: the "
                                               "backend's).")]
UrlOpt = Annotated[str | None, typer.Option("--endpoint-url", "-u", help="Base URL of the "
                                             "server (default: the backend's).")]
KeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", help="Read the API key from this environment variable instead of the "
    "backend's usual one. The key itself is never printed.")]
RequestIdOpt = Annotated[str | None, typer.Option("--request-id", help="Request ID to send "
                                                   "(default: a fresh one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Seconds per attempt.")]
RetriesOpt = Annotated[int | None, typer.Option("--max-retries", help="Retries per call.")]


def settings(timeout: float | None, max_retries: int | None) -> dict[str, Any]:
    """The endpoint settings the common options give (``None``: the backend's default)."""
    return {"timeout": timeout, "max_retries": max_retries}


def read_stdin(what: str) -> str:
    """All of stdin, or a one-line error when nothing is piped in."""
    if sys.stdin is None or sys.stdin.isatty():
        raise CliError(f"no {what} given", hint="pass it as an argument or pipe it on stdin")
    return sys.stdin.read()

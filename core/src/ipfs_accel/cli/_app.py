"""The typer app and its entry: what each command is, and how every error becomes one line.

The commands that show what is there live here (``backends``, ``stats``, ``report``,
``demo``); the ones that make calls have their own modules (``chat``/``embed`` in
:mod:`._calls`, ``run`` in :mod:`._run_command`). All are registered at the end, in the
order ``--help`` lists them.
"""

# Imports inside commands are deliberate: each command loads only what it needs, so
# `ipfs-accel --help` stays fast.
# ruff: noqa: PLC0415

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .._errors import ConfigurationError, IpfsAccelError
from .._registry import Registry
from ._batch_cmd import batch_app
from ._calls import chat, embed
from ._common import CliError, describe_error, exit_code_for
from ._options import JsonOpt, err, out
from ._run_command import run

__all__ = ["app", "run_app"]

app = typer.Typer(
    name="ipfs-accel",
    help="Call LLM and inference HTTP APIs through ipfs-accel backends: list the installed "
    "backends, chat, embed, run JSONL batches with retries and stats, or watch the demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _State:
    debug = False


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors "
                                        "(also accepted after the command name).")] = False,
) -> None:
    """Call LLM and inference HTTP APIs through ipfs-accel backends."""
    _State.debug = _State.debug or debug


def _registry() -> Registry:
    # the registry `backends` and `report` read; a test replaces it with plugins of its own
    return Registry()


# -- backends ----------------------------------------------------------------------------


def backends(json_out: JsonOpt = False) -> None:
    """List installed backend plugins: distribution, version, operations, env vars, key set
    (``--json`` adds what each operation takes: tools, response formats, images).

    Whether a key is set is shown as yes/no; the key itself is never printed. A plugin
    that fails to import is listed with its error.
    """
    registry = _registry()
    rows = []
    for status in registry.load_all():
        row: dict[str, Any] = {"name": status.name, "distribution": status.distribution,
                               "version": status.version, "error": status.error}
        if status.error is None:
            info = registry.hooks(status.name).info
            row["operations"] = sorted(info.operations)
            # what each operation takes beyond text (None: the plugin does not say)
            row["features"] = (None if info.features is None else
                               {op: sorted(f) for op, f in sorted(info.features.items())})
            row["api_key_env"] = list(info.api_key_env)
            row["base_url_env"] = list(info.base_url_env)
            row["key_required"] = info.api_key_required
            row["key_set"] = any(os.environ.get(v) for v in info.api_key_env)
            row["default_base_url"] = info.default_base_url
        rows.append(row)
    if json_out:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        err.print("no backends installed: pip install ipfs-accel-plugin-<name> "
                  "(openai, groq, claude, gemini, hf_tgi, hf_tei, ollama, ovms, llvm)")
        raise typer.Exit(1)
    table = Table(header_style="bold")
    for col in ("backend", "distribution", "version", "operations", "env vars", "key"):
        table.add_column(col)
    for row in rows:
        if row["error"]:
            table.add_row(row["name"], row["distribution"] or "-", row["version"] or "-",
                          f"[red]broken: {escape(row['error'])}[/]", "", "")
            continue
        env = ", ".join(row["api_key_env"] + row["base_url_env"]) or "-"
        if row["key_set"]:
            key = "[green]set[/]"
        elif row["key_required"]:
            key = "[red]missing[/]"
        else:
            key = "not needed" if not row["api_key_env"] else "not set"
        table.add_row(row["name"], row["distribution"] or "-", row["version"] or "-",
                      ", ".join(row["operations"]), env, key)
    out.print(table)


# -- stats / report ----------------------------------------------------------------------


def stats(
    file: Annotated[Path, typer.Argument(help="A stats file written by `run --stats-file` or "
                                         "`demo --stats-file`.", show_default=False)],
    json_out: JsonOpt = False,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w", help="Follow FILE while its run goes: read it again every "
        "--interval seconds and show each endpoint's state (paused until when), calls in "
        "flight and queued, limits, calls, retries and errors, until the run ended or "
        "Ctrl-C. A FILE not there yet is waited for.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.01, help="Seconds between two reads of FILE with --watch.")] = 1.0,
) -> None:
    """Show the per-endpoint stats a run saved with --stats-file, or follow them live.

    Stats live inside one process, so `run` and `demo` print their table at the end and,
    with --stats-file FILE, save it (`run` rewrites it every second while it goes); this
    command shows a saved file again, or with --watch follows it until the run ended: on a
    terminal one table redrawn in place, otherwise a new table each time the run rewrote it.
    """
    from ._view import load_stats_file, stats_json, stats_table

    if watch:
        if json_out:
            raise CliError("--watch shows tables, --json the file once: pass one of them")
        from ._watch import watch as follow

        follow(file, interval=interval, out=out, err=err)
        return
    if not file.is_file():
        raise CliError(f"stats file {file} not found",
                       hint="write one with `ipfs-accel run ... --stats-file FILE`")
    try:
        document = load_stats_file(file)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if json_out:
        out.print_json(json.dumps(stats_json(document)))
    else:
        when = (f"running, updated {document.updated_at}" if document.running
                else document.written_at)
        out.print(stats_table(document, title=f"Per-endpoint stats ({when})"))


def report(
    json_out: JsonOpt = False,
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Only these backends (repeatable).")] = None,
) -> None:
    """The kit's Implementation Report: the conformance checks run against every installed
    backend that provides a conformance case (Markdown, or --json). Exits 1 when a check fails."""
    try:
        from ..testing import build_report, render_markdown
    except ImportError as exc:
        raise CliError(f"report is not available in this installation ({exc})") from None
    import msgspec

    result = build_report(_registry(), backends=backend or None)
    if json_out:
        text = msgspec.json.format(msgspec.json.encode(result).decode(), indent=2)
    else:
        text = render_markdown(result)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if not result.passed:
        raise typer.Exit(1)


# -- demo --------------------------------------------------------------------------------


def demo(
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Only these backends (repeatable).")] = None,
    calls: Annotated[int, typer.Option("--calls", "-n", min=1, help="Calls in all.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault injection.")] = 7,
    endpoints: Annotated[int, typer.Option(
        "--endpoints", min=1, help="Keys per backend, each rate-limited by its server (the "
        "pool also has one endpoint on a spare server that goes down halfway).")] = 3,
    stats_file: Annotated[Path | None, typer.Option(
        "--stats-file", help="Also save the final stats as JSON.")] = None,
) -> None:
    """Offline demo: calls through a pool per backend, over loopback servers speaking every
    backend's protocol. Each key is rate-limited by its server (429s, and the vendor's
    rate-limit headers where the plugin reads them), a spare server goes down halfway, and
    overloads, server errors and dropped connections are injected; watch the pools pace,
    retry and move calls, then see per-member stats, a check that every call finished
    exactly once, and how many calls pacing held back against the 429s the servers sent.
    No keys, no network.
    """
    from ._demo import run_demo

    code = run_demo(backends=backend or [], calls=calls, seed=seed, endpoints=endpoints,
                    stats_file=stats_file, console=err, out=out)
    if code:
        raise typer.Exit(code)


# -- the commands, in the order --help lists them -----------------------------------------

for _command in (backends, chat, embed, run, stats, report, demo):
    app.command()(_command)
app.add_typer(batch_app, name="batch")


# -- entry -------------------------------------------------------------------------------


def run_app(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one return per outcome
    """Run the app; turn every error into one line on stderr and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:  # accepted anywhere, not only before the command
        args.remove("--debug")
        _State.debug = True
    _State.debug = _State.debug or os.environ.get("IPFS_ACCEL_DEBUG", "") not in ("", "0")
    if not _State.debug:
        # stamina logs each scheduled retry as a bare warning line; the progress bar and
        # the stats already count retries, and an error must stay one line
        logging.getLogger("stamina").setLevel(logging.ERROR)
    try:
        rv = app(args=args, prog_name="ipfs-accel", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except (CliError, IpfsAccelError) as exc:
        if _State.debug:
            err.print_exception()
        err.print(f"[red]error:[/] {escape(describe_error(exc))}")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        if _State.debug:
            err.print_exception()
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]  # a click UsageError: typed as Exception here
            return int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "Abort":
            err.print("interrupted")
            return 130
        err.print(f"[red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))}; "
                  "rerun with --debug for the traceback and please report it")
        return 1
    return rv if isinstance(rv, int) else 0


def _is_usage_error(exc: BaseException) -> bool:
    # typer vendors click; its exceptions all carry show() and exit_code
    return hasattr(exc, "show") and hasattr(exc, "exit_code") and not isinstance(
        exc, ConfigurationError)

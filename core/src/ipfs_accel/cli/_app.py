"""The typer app: ``backends``, ``chat``, ``embed``, ``run``, ``stats``, ``report``, ``demo``."""

# Imports inside commands are deliberate: each command loads only what it needs, so
# `ipfs-accel --help` stays fast; typer commands take their options as parameters.
# ruff: noqa: PLC0415, PLR0917

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._errors import ConfigurationError, IpfsAccelError
from .._registry import Registry
from ._common import CliError, describe_error, exit_code_for, open_backend

if TYPE_CHECKING:
    from ._results import Answers

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


def _width(stream: Any) -> int | None:
    # rich assumes 80 columns when not on a terminal: too narrow for the tables in logs
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return None if interactive or "COLUMNS" in os.environ else 160


out = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))

# -- shared options ----------------------------------------------------------------------

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
    return Registry()


def _settings(timeout: float | None, max_retries: int | None) -> dict[str, Any]:
    return {"timeout": timeout, "max_retries": max_retries}


def _read_stdin(what: str) -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise CliError(f"no {what} given", hint="pass it as an argument or pipe it on stdin")
    return sys.stdin.read()


# -- backends ----------------------------------------------------------------------------


@app.command()
def backends(json_out: JsonOpt = False) -> None:
    """List installed backend plugins: distribution, version, operations, env vars, key set.

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


# -- chat / embed ------------------------------------------------------------------------


@app.command()
def chat(
    backend: BackendOpt,
    prompt: Annotated[str | None, typer.Argument(help="The message; read from stdin when "
                                                  "omitted.", show_default=False)] = None,
    model: ModelOpt = None,
    endpoint_url: UrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    request_id: RequestIdOpt = None,
    json_out: JsonOpt = False,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System message.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    timeout: TimeoutOpt = None,
    max_retries: RetriesOpt = None,
) -> None:
    """Send one message and stream the reply to the terminal (--json: print the full result).

    Example: ipfs-accel chat -b openai -m gpt-4o-mini "Hello"
    """
    text = prompt if prompt is not None else _read_stdin("prompt")
    be, ids, urls, env = open_backend(
        _registry(), backend, endpoint_urls=[endpoint_url] if endpoint_url else [],
        api_key_env=api_key_env, model=model, settings=_settings(timeout, max_retries))
    params: dict[str, Any] = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}]
    ops = be.info.operations
    try:
        with be:
            if "chat" not in ops and "stream_chat" not in ops and "generate" not in ops:
                raise CliError(f"backend {backend} does not offer chat",
                               hint="see `ipfs-accel backends`")
            if json_out or "stream_chat" not in ops:
                if "chat" in ops:
                    result = be.chat(messages, request_id=request_id, **params)
                else:
                    result = be.generate(text, request_id=request_id, **params)
                if json_out:
                    out.print_json(json.dumps({
                        "text": result.text, "finish_reason": result.finish_reason,
                        "model": result.model, "usage": _usage(result.usage),
                        "request_id": result.request_id,
                        "server_request_id": result.server_request_id, "endpoint": ids[0],
                    }))
                else:
                    sys.stdout.write(result.text + "\n")
                return
            for chunk in be.stream_chat(messages, request_id=request_id, **params):
                if chunk.delta:
                    sys.stdout.write(chunk.delta)
                    sys.stdout.flush()
            sys.stdout.write("\n")
    except IpfsAccelError as exc:
        raise CliError(describe_error(exc, action="chat", base_urls=urls, env=env),
                       code=exit_code_for(exc)) from exc


def _usage(usage: Any) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}


@app.command()
def embed(
    backend: BackendOpt,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed; read from stdin "
                                                       "(one per line) when omitted.",
                                                       show_default=False)] = None,
    model: ModelOpt = None,
    endpoint_url: UrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    request_id: RequestIdOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    max_retries: RetriesOpt = None,
) -> None:
    """Embed texts: one vector per text (--json: the vectors in full).

    Example: ipfs-accel embed -b hf_tei "first text" "second text"
    """
    inputs = list(texts or []) or [t for t in _read_stdin("text").splitlines() if t.strip()]
    if not inputs:
        raise CliError("nothing to embed", hint="pass texts as arguments or on stdin")
    be, ids, urls, env = open_backend(
        _registry(), backend, endpoint_urls=[endpoint_url] if endpoint_url else [],
        api_key_env=api_key_env, model=model, settings=_settings(timeout, max_retries))
    try:
        with be:
            result = be.embed(inputs, request_id=request_id)
    except IpfsAccelError as exc:
        raise CliError(describe_error(exc, action="embed", base_urls=urls, env=env),
                       code=exit_code_for(exc)) from exc
    if json_out:
        out.print_json(json.dumps({
            "vectors": result.vectors, "model": result.model, "usage": _usage(result.usage),
            "request_id": result.request_id, "server_request_id": result.server_request_id,
            "endpoint": ids[0]}))
        return
    for text, vector in zip(inputs, result.vectors, strict=False):
        head = ", ".join(f"{v:.4f}" for v in vector[:4])
        label = text if len(text) <= 40 else text[:37] + "..."
        out.print(f"{escape(label)!s:42} dim={len(vector)} [{head}, ...]")
    err.print(f"[dim]request {result.request_id}, {result.usage.input_tokens} input tokens[/]")


# -- run ---------------------------------------------------------------------------------


def _resume_note(answers: Answers, output: Path, to_go: int, *, retry_failed: bool) -> str:
    failed = len(answers.failed)
    again = (f", {failed} failed ones again" if retry_failed
             else f" ({failed} failed: --retry-failed runs them again)" if failed else "")
    return (f"resuming: {len(answers.ok | answers.failed)} lines already answered in "
            f"{output}, {to_go} to go{again}")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="JSONL input, one call per line.",
                                         show_default=False)],
    backend: BackendOpt,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Results JSONL (default: FILE with .results.jsonl).")] = None,
    endpoint_url: Annotated[list[str] | None, typer.Option(
        "--endpoint-url", "-u", help="Server base URL; repeat for several endpoints (calls go "
        "to the least loaded).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1,
                                             help="Calls in flight at once.")] = 8,
    resume: Annotated[bool, typer.Option("--resume", help="Skip the lines OUTPUT already "
                                         "answers, wherever they are in it, and append the "
                                         "rest.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="With --resume (implied): run again the lines whose latest "
        "result in OUTPUT is an error; the new result replaces the old one.")] = False,
    ordered: Annotated[bool, typer.Option(
        "--ordered", help="When the batch completes, rewrite OUTPUT in input order, one "
        "result per line (streaming, memory bounded).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT if it "
                                            "exists.")] = False,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    stats_file: Annotated[Path | None, typer.Option(
        "--stats-file", help="Write the final per-endpoint stats as JSON here; show them "
        "again later with `ipfs-accel stats FILE`.")] = None,
    timeout: TimeoutOpt = None,
    max_retries: RetriesOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or stats "
                                        "table.")] = False,
) -> None:
    """Run a batch of calls from a JSONL file, results as JSONL as each call ends.

    Each line is {"id": ..., "messages": [...]} (chat), {"prompt": "..."} or
    {"input": "..." | [...]} (embed), with optional "model", "params", "request_id".
    Each result line is {"line": n, "id": ..., "ok": true, "text"/"vectors", "usage",
    "request_id"} or {"line": n, "ok": false, "error": {"type", "message", "status",
    "request_id"}}. Bad lines are answered with an error and do not stop the batch.
    Results are written and fsynced as each call ends, so they come in completion order
    (--ordered sorts them by line at the end): after a crash or Ctrl-C, rerun with --resume.
    At the end the per-endpoint stats table is printed (and written with --stats-file).
    Exit code 1 when any line failed.
    """
    from . import _results, _run
    from ._view import stats_document, stats_table, write_stats_file

    if not file.is_file():
        raise CliError(f"input file {file} not found")
    resume = resume or retry_failed
    output = output or file.with_name(file.name.removesuffix(".jsonl") + ".results.jsonl")
    if output.exists() and not (resume or overwrite) and output.stat().st_size > 0:
        raise CliError(f"output {output} already exists",
                       hint="pass --resume to continue it or --overwrite to start again")
    be, ids, urls, _env = open_backend(
        _registry(), backend, endpoint_urls=endpoint_url or [], api_key_env=api_key_env,
        model=model, settings={**_settings(timeout, max_retries),
                               "max_concurrent_requests": concurrency,
                               "queue_size": max(100, concurrency)})
    answers = _results.read_answers(output) if resume else _results.Answers()
    skip = answers.ok if retry_failed else answers.ok | answers.failed
    counters = _run.BatchCounters(_run.count_lines(file, skip=skip))
    if answers.ok or answers.failed:
        err.print(_resume_note(answers, output, counters.total, retry_failed=retry_failed))

    def bad_line(item: Any) -> None:
        err.print(f"[yellow]{escape(str(file))}:{item.line}: skipped, {escape(item.error)}[/]")

    interrupted = False
    items = _run.parse_lines(file, be.info.operations, skip=skip)
    with output.open("a" if resume else "w", encoding="utf-8") as f:
        coro = _run.run_batch(be, ids, items, f, concurrency=concurrency, counters=counters,
                         on_bad_line=bad_line)
        try:
            if quiet:
                asyncio.run(coro)
            else:
                from ._progress import run_with_progress

                run_with_progress(coro, counters, [be], err)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            items.close()
    if not interrupted:
        _results.finish_results(output, answers, ordered=ordered, retried=retry_failed)
    if not quiet:
        document = stats_document([be], urls=urls)
        err.print(stats_table(document))
    if stats_file is not None:
        write_stats_file(stats_file, stats_document([be], urls=urls))
    if interrupted:
        err.print(f"interrupted: {counters.written} more lines answered in {output}; rerun "
                  "with --resume to finish")
        raise typer.Exit(130)
    err.print(f"{counters.ok} ok, {counters.failed} failed, {counters.bad} bad lines; "
              f"results in {output}")
    if counters.failed or counters.bad:
        raise typer.Exit(1)


# -- stats / report ----------------------------------------------------------------------


@app.command()
def stats(
    file: Annotated[Path, typer.Argument(help="A stats file written by `run --stats-file` or "
                                         "`demo --stats-file`.", show_default=False)],
    json_out: JsonOpt = False,
) -> None:
    """Show the per-endpoint stats a run saved with --stats-file.

    Stats live inside one process, so `run` and `demo` print their table at the end and,
    with --stats-file FILE, save it; this command shows a saved file again.
    """
    from ._view import load_stats_file, stats_table

    if not file.is_file():
        raise CliError(f"stats file {file} not found",
                       hint="write one with `ipfs-accel run ... --stats-file FILE`")
    try:
        document = load_stats_file(file)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if json_out:
        out.print_json(json.dumps(document))
    else:
        out.print(stats_table(document, title=f"Per-endpoint stats ({document['written_at']})"))


@app.command()
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


@app.command()
def demo(
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Only these backends (repeatable).")] = None,
    calls: Annotated[int, typer.Option("--calls", "-n", min=1, help="Calls in all.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault injection.")] = 7,
    endpoints: Annotated[int, typer.Option("--endpoints", min=1,
                                           help="Endpoints per backend.")] = 3,
    stats_file: Annotated[Path | None, typer.Option(
        "--stats-file", help="Also save the final stats as JSON.")] = None,
) -> None:
    """Offline demo: a loopback server speaking every backend's protocol injects rate
    limits, overloads, server errors and dropped connections; watch the core retry, then
    see per-endpoint stats and a check that every call finished exactly once.
    No keys, no network.
    """
    from ._demo import run_demo

    code = run_demo(backends=backend or [], calls=calls, seed=seed, endpoints=endpoints,
                    stats_file=stats_file, console=err, out=out)
    if code:
        raise typer.Exit(code)


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
            exc.show()  # type: ignore[attr-defined]
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

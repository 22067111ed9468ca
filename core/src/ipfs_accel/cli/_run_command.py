"""The ``run`` command's wiring: its options, its pool, resuming, the progress bar, the stats.

The batch itself (typed input lines, the workers, writing each result) is :mod:`._run`;
the pool's members (keys x URLs) are :mod:`._members`; reading and rewriting the results
file is :mod:`._results`.
"""

# Imports inside the command are deliberate: `ipfs-accel --help` does not load the batch
# runner; typer commands take their options as parameters.
# ruff: noqa: PLC0415, PLR0917

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .._registry import Registry
from ._common import CliError, open_backend
from ._options import BackendOpt, KeyEnvOpt, ModelOpt, RetriesOpt, TimeoutOpt, err
from ._run_shard import Shard, check_resume, default_output, parse_shard, record_shard

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._backend import Backend
    from ._members import RunPool
    from ._results import Answers
    from ._run import BatchCounters, Item
    from ._view import StatsFile

__all__ = ["run"]


def _resume_note(answers: Answers, output: Path, to_go: int, *, retry_failed: bool) -> str:
    failed = len(answers.failed)
    again = (f", {failed} failed ones again" if retry_failed
             else f" ({failed} failed: --retry-failed runs them again)" if failed else "")
    return (f"resuming: {len(answers.ok | answers.failed)} lines already answered in "
            f"{output}, {to_go} to go{again}")


def _prefix(shard: Shard | None) -> str:
    # what the progress and summary lines start with: which shard ran
    return "" if shard is None else f"shard {shard}: "


def _output(file: Path, output: Path | None, shard: Shard | None, *,
            resume: bool, overwrite: bool) -> tuple[Path, Answers, bool]:
    """The results file, what it already answers, and whether it is continued (not fresh).

    An output with results needs --resume or --overwrite; resuming it with another shard
    than it was written for is refused before anything is sent.
    """
    from . import _results

    output = output or default_output(file, shard)
    started = output.exists() and output.stat().st_size > 0
    if started and not (resume or overwrite):
        raise CliError(f"output {output} already exists",
                       hint="pass --resume to continue it or --overwrite to start again")
    if not resume:
        return output, _results.Answers(), False
    answers = _results.read_answers(output)
    if started:
        check_resume(output, shard, answers.ok | answers.failed)
    return output, answers, started


def _live_stats(stats_file: Path | None, be: Backend, urls: dict[str, str], pool: RunPool,
                counters: BatchCounters) -> contextlib.AbstractContextManager[object]:
    """With --stats-file: the file kept up to date while the run goes, final at the end."""
    if stats_file is None:
        return contextlib.nullcontext()
    from ._view import BatchProgress, LiveStatsFile, stats_document

    def snapshot(running: bool) -> StatsFile:
        lines = BatchProgress(total=counters.total, ok=counters.ok, failed=counters.failed,
                              bad=counters.bad, in_flight=counters.in_flight)
        return stats_document([be], urls=urls, running=running, pool=pool.get_stats(),
                              lines=lines)

    return LiveStatsFile(stats_file, snapshot)


def run(  # noqa: PLR0912, PLR0915 - the command's flow, online or batched
    file: Annotated[Path, typer.Argument(help="JSONL input, one call per line.",
                                         show_default=False)],
    backend: BackendOpt,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Results JSONL (default: FILE with .results.jsonl; with "
        "--shard 3/8, FILE with .shard-3-of-8.results.jsonl).")] = None,
    endpoint_url: Annotated[list[str] | None, typer.Option(
        "--endpoint-url", "-u", help="Server base URL; repeat for several servers. Every key "
        "is used on every URL: each key x URL is one member of the pool the calls go "
        "through.")] = None,
    key: Annotated[list[str] | None, typer.Option(
        "--key", "-k", help="An API key; repeat for several (each its own member, on each "
        "URL). Instead of the backend's key variable. Keys are never printed; prefer "
        "--keys-file, as a command line is visible to other users of the machine.",
        show_default=False)] = None,
    keys_file: Annotated[Path | None, typer.Option(
        "--keys-file", help="A file of API keys, one a line (blank lines and lines starting "
        "with # skipped), used as -k keys are.", show_default=False)] = None,
    strategy: Annotated[str, typer.Option(
        "--strategy", help="How the pool picks a member for each attempt: least-busy, "
        "round-robin, weighted, latency or ordered (the first ready member, the next when "
        "it is paused, unhealthy or full). A call that fails for its member's sake (429, "
        "overload, 5xx, connection) moves to another member.")] = "least-busy",
    rpm: Annotated[float | None, typer.Option(
        "--rpm", help="Requests per minute per member (key x URL): "
        "calls are paced to stay under it instead of running into 429s. Keys of one account "
        "may share the account's limit: divide it among them.", show_default=False)] = None,
    tpm: Annotated[int | None, typer.Option(
        "--tpm", min=1, help="Tokens per minute per member, paced the same way (input size "
        "plus max_tokens booked before a call, settled with its usage).",
        show_default=False)] = None,
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
    shard: Annotated[Shard | None, typer.Option(
        "--shard", metavar="K/N", parser=parse_shard, help="Take only shard K of N (1-based): "
        "input lines K, K+N, K+2N... Run N workers, one per shard, anywhere: together they "
        "answer every line once. Each writes its own OUTPUT (pass each its own -o, or leave "
        "the default, which names the shard); --resume continues only that shard and refuses "
        "an OUTPUT written for another.", show_default=False)] = None,
    shared: Annotated[str | None, typer.Option(
        "--shared", metavar="URL", help="Share the endpoints' limits (--rpm, --tpm, "
        "--concurrency, pauses from 429s) with every worker using this Redis "
        "(redis://host:6379/0), so N workers together stay within them; needs "
        "ipfs-accel-core[redis]. IPFS_ACCEL_SHARED does the same.",
        show_default=False)] = None,
    otel: Annotated[bool, typer.Option(
        "--otel", help="Export the run's traces and metrics (OpenTelemetry GenAI spans per "
        "call, attempts, waits) over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default "
        "http://localhost:4318); setting that variable turns it on too. Needs "
        "ipfs-accel-core[otel], opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http.",
    )] = False,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    stats_file: Annotated[Path | None, typer.Option(
        "--stats-file", help="Keep the per-endpoint stats in this JSON file: rewritten "
        "every second while the run goes (\"running\": true), the final stats at the end. "
        "Follow it live with `ipfs-accel stats FILE --watch`, show it later with "
        "`ipfs-accel stats FILE`.")] = None,
    timeout: TimeoutOpt = None,
    max_retries: RetriesOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or stats "
                                        "table.")] = False,
    batch: Annotated[bool, typer.Option(
        "--batch", help="Send the calls as the provider's batches (openai, groq, claude, "
        "gemini: about half the price, answered within the provider's window) instead of "
        "one by one; the results file is the same. The batch IDs are recorded beside OUTPUT "
        "(OUTPUT.batches.jsonl) as they are created: --resume follows them and never sends "
        "a line twice. One key and one URL.")] = False,
    detach: Annotated[bool, typer.Option(
        "--detach", help="With --batch: submit, then exit; `ipfs-accel batch status|results|"
        "cancel OUTPUT` follow the batches.")] = False,
    poll_every: Annotated[float, typer.Option(
        "--poll-every", min=0, help="With --batch: seconds between the first polls of the "
        "batches' state (growing by half each poll that brings no news, up to a minute).",
    )] = 2.0,
    resubmit: Annotated[bool, typer.Option(
        "--resubmit", help="With --batch --resume: send again the lines of a batch the run "
        "stopped while submitting (check first that the provider has no batch of that "
        "label).")] = False,
) -> None:
    """Run a batch of calls from a JSONL file, results as JSONL as each call ends.

    The calls go through a pool of the backend's endpoints: one per key on each URL
    (-k A -k B -u X -u Y: four members), each paced by --rpm/--tpm and paused when its
    server answers 429 with Retry-After; the progress line shows members paused or
    unhealthy. Example: ipfs-accel run calls.jsonl -b openai --keys-file keys.txt --rpm 500

    Each line is {"id": ..., "messages": [...]} (chat), {"prompt": "..."} or
    {"input": "..." | [...]} (embed), with optional "model", "params", "request_id".
    Each result line is {"line": n, "id": ..., "ok": true, "text"/"vectors", "usage",
    "request_id"} or {"line": n, "ok": false, "error": {"type", "message", "status",
    "request_id"}}. Bad lines are answered with an error and do not stop the batch.
    Results are written and fsynced as each call ends, so they come in completion order
    (--ordered sorts them by line at the end): after a crash or Ctrl-C, rerun with --resume.
    At the end the per-member stats table (each row counts attempts) and the pool's
    calls, retries and failovers are printed (the table also written with --stats-file,
    which is kept up to date during the run too: watch it with `ipfs-accel stats FILE
    --watch`). Exit code 1 when any line failed.

    Split a batch over N workers with --shard K/N (1-based): worker K takes lines K, K+N,
    K+2N... and writes FILE.shard-K-of-N.results.jsonl (or its own -o), so the N results
    files together answer every line once. Example, the third of eight:
    ipfs-accel run calls.jsonl -b openai --shard 3/8 (add --resume to continue it).
    With --shared redis://host:6379/0 the workers also share the endpoints' limits.
    """
    from . import _results, _run
    from ._members import RunPool, read_keys
    from ._view import pool_line, stats_document, stats_table

    if not file.is_file():
        raise CliError(f"input file {file} not found")
    resume = resume or retry_failed
    output, answers, continued = _output(file, output, shard, resume=resume,
                                         overwrite=overwrite)
    keys = read_keys(key or [], keys_file)
    if batch or detach or resubmit:
        return _batched(file, backend, output, answers, batch=batch, keys=keys,
                        urls=endpoint_url or [], model=model, api_key_env=api_key_env,
                        timeout=timeout, max_retries=max_retries, shard=shard, resume=resume,
                        retry_failed=retry_failed, overwrite=overwrite, resubmit=resubmit,
                        detach=detach, quiet=quiet, ordered=ordered, poll_every=poll_every)
    stop_otel = _otel(otel)
    be, ids, urls, _env = open_backend(
        Registry(shared=shared), backend, endpoint_urls=endpoint_url or [],
        api_key_env=api_key_env,
        model=model, keys=keys, settings={"timeout": timeout, "rpm": rpm, "tpm": tpm,
                                          "max_concurrent_requests": concurrency,
                                          "queue_size": max(100, concurrency)})
    # the pool retries a call (on any member); each attempt is one call of its endpoint
    pool = RunPool(be, ids, strategy=strategy,
                   **({} if max_retries is None else {"max_retries": max_retries}))
    skip = answers.ok if retry_failed else answers.ok | answers.failed
    counters = _run.BatchCounters(_run.count_lines(file, skip=skip, shard=shard))
    if answers.ok or answers.failed:
        err.print(_prefix(shard) + _resume_note(answers, output, counters.total,
                                                retry_failed=retry_failed))

    def bad_line(item: Item) -> None:
        err.print(f"[yellow]{escape(str(file))}:{item.line}: skipped, "
                  f"{escape(item.error or '')}[/]")

    if not continued:  # a fresh output: record its shard (an old record goes)
        record_shard(output, shard)
    interrupted = False
    items = _run.parse_lines(file, be.info.operations, skip=skip, shard=shard)
    # the stats file says the run ended only once the results file is final too
    with _live_stats(stats_file, be, urls, pool, counters):
        with output.open("a" if resume else "w", encoding="utf-8") as f:
            coro = _run.run_batch(pool, items, f, concurrency=concurrency, counters=counters,
                                  on_bad_line=bad_line)
            try:
                if quiet:
                    asyncio.run(coro)
                else:
                    from ._progress import run_with_progress

                    run_with_progress(coro, counters, pool, err, description=(
                        "calls" if shard is None else f"shard {shard}"))
            except KeyboardInterrupt:
                interrupted = True
            finally:
                items.close()
        if not interrupted:
            _results.finish_results(output, answers, ordered=ordered, retried=retry_failed)
    if stop_otel is not None:
        stop_otel()  # what is still buffered goes out now
    if not quiet:
        err.print(stats_table(stats_document([be], urls=urls), title="Per-member stats"))
        err.print(pool_line(pool.get_stats()))
    if interrupted:
        again = "--resume" if shard is None else f"--resume --shard {shard}"
        err.print(f"{_prefix(shard)}interrupted: {counters.written} more lines answered in "
                  f"{output}; rerun with {again} to finish")
        raise typer.Exit(130)
    err.print(f"{_prefix(shard)}{counters.ok} ok, {counters.failed} failed, {counters.bad} "
              f"bad lines; results in {output}")
    if counters.failed or counters.bad:
        raise typer.Exit(1)


def _batched(file: Path, backend: str, output: Path, answers: Answers, *, batch: bool,
             keys: list[str], urls: list[str], model: str | None, api_key_env: str | None,
             timeout: float | None, max_retries: int | None, **options: Any) -> None:
    """``run --batch``: through one endpoint (the provider's batches belong to the account
    whose key created them)."""
    from ._batch_cmd import run_batched

    if not batch:
        raise CliError("--detach and --resubmit go with --batch")
    if len(keys) > 1 or len(urls) > 1:
        raise CliError("--batch sends through one key and one URL",
                       hint="a provider's batches belong to the key that created them")
    settings: dict[str, Any] = {"timeout": timeout}
    if max_retries is not None:
        settings["max_retries"] = max_retries
    be, ids, _, _ = open_backend(Registry(), backend, endpoint_urls=urls,
                                 api_key_env=api_key_env, model=model, keys=keys,
                                 settings=settings)
    run_batched(file, be, ids[0], output, answers, model=model, **options)


def _otel(flag: bool) -> Callable[[], None] | None:
    """Start exporting telemetry when asked (``--otel`` or an OTLP endpoint in the
    environment); the function that flushes it at the end, or ``None``."""
    from ._otel_setup import start_otel, wanted

    if not wanted(flag):
        return None
    try:
        return start_otel()
    except ImportError as exc:
        raise CliError(str(exc)) from None

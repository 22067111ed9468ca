"""``run --batch`` from the ``run`` command, and ``ipfs-accel batch status|results|cancel
OUTPUT`` on the batches a run recorded beside its results file."""

# Imports inside the commands are deliberate (see ``_app``); typer commands take their
# options as parameters.
# ruff: noqa: PLC0415, PLR0917

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from .._registry import Registry
from ._common import CliError, open_backend
from ._options import KeyEnvOpt, err

if TYPE_CHECKING:
    from .._backend import Backend
    from ._batch_ledger import Ledger
    from ._batch_run import BatchRun
    from ._results import Answers
    from ._run_shard import Shard

__all__ = ["batch_app", "run_batched"]

batch_app = typer.Typer(help="Follow the provider batches a `run --batch` submitted: their "
                        "state, their results into its results file, or cancel them.",
                        no_args_is_help=True)


def run_batched(file: Path, be: Backend, endpoint_id: str, output: Path, answers: Answers, *,
                shard: Shard | None, model: str | None, resume: bool, retry_failed: bool,
                overwrite: bool, resubmit: bool, detach: bool, quiet: bool,
                ordered: bool, poll_every: float = 2.0) -> None:
    """``run --batch``: submit what no batch holds yet, then (unless ``detach``) wait and
    write the results. Exits 1 when a line failed, 130 when interrupted."""
    from ._batch_run import BatchRun, open_ledger

    if be.info.batch is None:
        raise CliError(f"backend {be.name!r} has no batch API",
                       hint="run without --batch, or use openai, groq, claude or gemini")
    ledger = open_ledger(output, be.name, resume=resume, overwrite=overwrite)
    doubt = ledger.in_doubt()
    if doubt and not resubmit:
        lines = sum(len(ledger.intents[label]) for label in doubt)
        raise CliError(
            f"batch {', '.join(doubt)} is in doubt: the run stopped while submitting its "
            f"{lines} lines, so the provider may have it", hint="check the provider's batch "
            "list for that label (cancel it there if it exists), then rerun with --resume "
            "--resubmit to send those lines again")
    for label in doubt:
        ledger.append({"abandoned": label})  # its lines leave the ledger's intents
    run = BatchRun(be, endpoint_id, output, ledger, answers)
    skip = answers.ok if retry_failed else answers.ok | answers.failed
    with output.open("a" if resume else "w", encoding="utf-8") as out:
        sent = run.submit(file, skip=skip, shard=shard, model=model, out=out)
        pending = ledger.pending()
        err.print(f"{sent} lines submitted; {len(pending)} batches to follow: "
                  f"{', '.join(pending) or 'none'} (recorded in {ledger.path})")
        if detach:
            err.print(f"detached: `ipfs-accel batch status {output}` shows them, "
                      f"`ipfs-accel batch results {output}` writes their results")
            ledger.close()
            return
        _follow(run, out, quiet=quiet, every=poll_every)
    _finish(run, output, answers, ordered=ordered, retried=retry_failed)


def _follow(run: BatchRun, out: IO[str], *, quiet: bool, every: float) -> None:
    try:
        run.follow(out, quiet=quiet, every=every)
    except KeyboardInterrupt:
        err.print(f"interrupted: the batches go on at the provider; rerun with --resume (or "
                  f"`ipfs-accel batch results {run.output}`) to write their results")
        raise typer.Exit(130) from None
    finally:
        run.ledger.close()


def _finish(run: BatchRun, output: Path, answers: Answers, *, ordered: bool,
            retried: bool) -> None:
    from . import _results

    _results.finish_results(output, answers, ordered=ordered, retried=retried)
    err.print(f"{run.ok} ok, {run.failed} failed, {run.bad} bad lines; results in {output}")
    if run.failed or run.bad:
        raise typer.Exit(1)


OutputArg = Annotated[Path, typer.Argument(help="The results file of a `run --batch` (its "
                                           "batches are recorded beside it).",
                                           show_default=False)]
BackendOpt = Annotated[str | None, typer.Option(
    "--backend", "-b", help="The backend (default: the one the run used).",
    show_default=False)]
UrlOpt = Annotated[str | None, typer.Option(
    "--endpoint-url", "-u", help="The server (default: the one the run used).",
    show_default=False)]
KeyOpt = Annotated[str | None, typer.Option(
    "--key", "-k", help="The API key the batches were submitted with (default: the "
    "backend's key variable).", show_default=False)]


def _open(output: Path, backend: str | None, url: str | None, key: str | None,
          api_key_env: str | None) -> tuple[Backend, str, Ledger]:
    from ._batch_ledger import Ledger, ledger_path

    path = ledger_path(output)
    if not path.exists():
        raise CliError(f"no batches recorded for {output} ({path} not found)",
                       hint="give the results file of a `run --batch`")
    ledger = Ledger(path)
    run = ledger.run
    name = backend or run.get("backend")
    if not name:
        raise CliError(f"{path} does not say which backend ran", hint="pass -b")
    where: str | None = url or run.get("endpoint_url")
    be, ids, _, _ = open_backend(Registry(), name, endpoint_urls=[where] if where else [],
                                 api_key_env=api_key_env, keys=[key] if key else [])
    return be, ids[0], ledger


@batch_app.command()
def status(output: OutputArg, backend: BackendOpt = None, endpoint_url: UrlOpt = None,
           key: KeyOpt = None, api_key_env: KeyEnvOpt = None) -> None:
    """Poll the recorded batches once: each one's state and counts."""
    from .._batch import BatchJob

    be, eid, ledger = _open(output, backend, endpoint_url, key, api_key_env)
    for batch_id, (label, operation) in ledger.batches.items():
        job = BatchJob(be, eid, [(batch_id, operation)])
        state = job.status()
        c = job.counts
        written = "results written" if batch_id in ledger.written else "results not written"
        err.print(f"{batch_id} ({label}, {len(ledger.items_of(batch_id))} lines): {state}, "
                  f"{c.completed} done, {c.failed} failed, {c.expired} expired, "
                  f"{c.cancelled} cancelled; {written}")
    for label in ledger.in_doubt():
        err.print(f"{label}: in doubt (the run stopped while submitting it)")


@batch_app.command()
def results(output: OutputArg, backend: BackendOpt = None, endpoint_url: UrlOpt = None,
            key: KeyOpt = None, api_key_env: KeyEnvOpt = None,
            quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
            poll_every: Annotated[float, typer.Option(
                "--poll-every", min=0, help="Seconds between the first polls.")] = 2.0,
            ) -> None:
    """Wait for the recorded batches and write their results into OUTPUT (those not
    written yet). Exit code 1 when a line failed."""
    from . import _results
    from ._batch_run import BatchRun

    be, eid, ledger = _open(output, backend, endpoint_url, key, api_key_env)
    answers = _results.read_answers(output) if output.exists() else _results.Answers()
    run = BatchRun(be, eid, output, ledger, answers)
    with output.open("a", encoding="utf-8") as out:
        _follow(run, out, quiet=quiet, every=poll_every)
    _finish(run, output, answers, ordered=False, retried=False)


@batch_app.command()
def cancel(output: OutputArg, backend: BackendOpt = None, endpoint_url: UrlOpt = None,
           key: KeyOpt = None, api_key_env: KeyEnvOpt = None) -> None:
    """Cancel the recorded batches whose results are not written yet (the items that
    already ran keep their results: `batch results` writes them; --retry-failed sends the
    others again)."""
    from .._batch import BatchJob

    be, eid, ledger = _open(output, backend, endpoint_url, key, api_key_env)
    for batch_id in ledger.pending():
        job = BatchJob(be, eid, [(batch_id, ledger.batches[batch_id][1])])
        err.print(f"{batch_id}: {job.cancel()}")

"""``ingest_history.py``: the Stage 1 command's options, their validation,
the run, its rendering and its exit code.

Everything a flag can get wrong is refused here (exit 64/65/66) before the
store is opened; what only the run can find out (mixed data origins, a range
with no sessions, a missing data directory) comes back as a typed input
error (``IngestionError``, ``DataDirectoryNotFound``) before the run changes
any state, and is refused the same way (``cli.exit_codes``).

SIGINT and SIGTERM stop the run within about a second (``stop_on_signals``):
the run closes its row ``ABORTED`` and the command prints one line and
exits 130 / 143 without waiting for vendor calls still in flight.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from typing import Iterator

import click
from rich.console import Console

from cli import exit_codes
from cli.command import OperatorCommand, exit_now
from cli.console import progress_bar
from cli.vendor_status import provider_lines
from cli.options import (ISO_DATE, SYMBOLS, as_of_option, check_source_options, db_option, json_option,
                         tickers_option, universe_option)
from core import calendar as cal
from core.errors import UsageError
from core.process import RunInterrupted, StopRequest
from core.inputs import load_inputs
from core.runtime import RuntimePaths
from core.settings import HistorySettings, Settings
from core.universe import Universe
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import IngestOptions, RunReport, fetch_failure_problem, new_run_id, run_ingestion
from data.collectors.ingestion.cross_check import summary_line as cross_check_line
from database import open_store

# The runbook's modes; a custom range is asked for with --start/--end (the
# run is then labelled ``range``).  Repairs are repair_db.py's alone.
OPERATOR_MODES = ("deep_backfill", "incremental", "verify")


def validated(options: IngestOptions, universe: Universe, settings: Settings) -> IngestOptions:
    """The options as the run takes them (the range form labelled), or a
    UsageError/MissingInputError naming the flag.  ``tickers`` and
    ``revive`` come normalised from their option (``cli.options``)."""
    universe.select(list(options.tickers) or None)
    check_source_options(options.provider, options.data_dir, settings)
    if (options.start or options.end) and options.mode != "deep_backfill":
        raise UsageError(f"--start/--end go with --mode=deep_backfill (the default), not --mode={options.mode}")
    if options.start and options.end and options.start > options.end:
        raise UsageError(f"--start {options.start} is after --end {options.end}")
    unknown = [t for t in options.revive if universe.get(t) is None]
    if unknown:
        raise UsageError(f"--revive: not in the universe: {', '.join(unknown)}")
    mode = "range" if (options.start or options.end) else options.mode
    return dataclasses.replace(options, mode=mode)


def exit_code(report: RunReport, *, fail_on_quality: bool = False) -> int:
    """docs/error_codes.md for a run, one verdict one code: 1 when a symbol
    failed to fetch or write; else 2 when the run's verification failed
    (a symbol not ACTIVE, short or stale, price health RED) or, under
    ``--fail-on-quality``, an error-severity finding; else 0.  A scheduler
    gating the next job on the exit code never runs it on a failed ingest."""
    if report.mode != "verify" and report.failed:
        return exit_codes.FAILURE
    if not report.verification.passed:
        return exit_codes.GATE_FAILED
    if fail_on_quality and report.verification.governance.has_error_findings:
        return exit_codes.GATE_FAILED
    return exit_codes.OK


def run_command(options: IngestOptions, *, db_path: str | None, universe_path: str | None,
                fail_on_quality: bool = False, as_json: bool = False) -> int:
    """Validate, open the store, run, render; the exit code."""
    universe, settings = load_inputs(universe_path)
    options = validated(options, universe, settings)
    paths = RuntimePaths.resolve(db_path)
    # Built before the store is opened: a missing data directory (exit 66)
    # leaves nothing written, not even an empty store.
    router = DataRouter(settings, only=options.provider, data_dir=options.data_dir) \
        if options.mode != "verify" else None
    run_id = new_run_id(options.now)
    try:
        with stop_on_signals() as stop, open_store(paths.db, check=True) as db:
            with progress_bar(f"{options.mode}", enabled=not as_json) as progress:
                report = run_ingestion(db, universe, settings, paths, options, router=router, progress=progress,
                                       run_id=run_id, stop=stop)
    except cal.CalendarError as exc:
        raise cal.CalendarError(f"--as-of/--start/--end: {exc}") from exc
    except RunInterrupted as exc:
        leave_interrupted(exc, run_id, str(paths.db), as_json=as_json)   # does not return
    finally:
        if router is not None:
            router.close()
    code = exit_code(report, fail_on_quality=fail_on_quality)
    if as_json:
        click.echo(json.dumps(json_document(report, code, str(paths.db)), default=str, indent=2))
    else:
        render(report, db_path=str(paths.db))
    return code


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM ask the run to stop (it checks at its safe points,
    at least every ``pool.STOP_POLL_SECONDS`` while fetching); a second
    signal, should closing take too long, leaves at once (the next run closes
    the row ``ABORTED``).  Handlers only exist in the main thread: elsewhere
    (a test runner's thread) the request is never set."""
    stop = StopRequest()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def handler(signum: int, _frame) -> None:
            if stop.requested:
                os._exit(exit_codes.signal_exit_code(signum))
            stop.request(signum)
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def leave_interrupted(exc: RunInterrupted, run_id: str, db_path: str, *, as_json: bool) -> None:
    """The interrupted run's one line (and JSON document), then leave.

    The store is closed and the run's row is ``ABORTED`` by now; fetch
    threads may still be blocked in a vendor call or its back-off, which no
    thread API can cancel, and the interpreter would wait for them at exit,
    so the process leaves without joining them (``cli.command.exit_now``,
    which reports the exit first)."""
    code = exit_codes.signal_exit_code(exc.signum)
    if as_json:
        click.echo(json.dumps({"run_id": run_id, "status": "ABORTED", "error": str(exc), "exit_code": code,
                               "db": db_path}, indent=2))
    click.echo(f"error: ingest {exc}: run {run_id} marked ABORTED (batches already committed are kept, "
               f"nothing half-written); run the same command again to resume (exit {code})", err=True)
    exit_now(code, exc)


def json_document(report: RunReport, code: int, db_path: str) -> dict:
    """The --json document: the report with its exit code (after status) and the store."""
    document = {}
    for key, value in report.to_dict().items():
        document[key] = value
        if key == "status":
            document["exit_code"] = code
    return {**document, "db": db_path}


def render(report: RunReport, *, db_path: str) -> None:
    """The human summary: one line per provider when providers failed (cause
    and hint), the verdict, then one line per failed symbol, greppable (the
    failure list once: not again among the verification's problems)."""
    console = Console(highlight=False, soft_wrap=True)
    failed = report.failed
    console.print(f"run {report.run_id}  mode={report.mode}  as_of={report.as_of}  status={report.status}  "
                  f"symbols={len(report.symbols)}  failed={len(failed)}  rows_written={report.rows_written}  "
                  f"elapsed={report.elapsed_s:.1f}s")
    console.print(f"providers used: {', '.join(f'{k}={v}' for k, v in sorted(report.providers_used.items())) or 'none'}"
                  f"  db: {db_path}  raw: {report.raw_dir or '-'}")
    for line in provider_lines(report.providers):
        console.print(line, markup=False)
    checked = cross_check_line(report.cross_check, report.cross_check_skipped)
    if checked:
        console.print(checked, markup=False)
    if report.verification is not None:
        v = report.verification
        states = ", ".join(f"{k} {n}" for k, n in v.governance.counts.items())
        console.print(f"governance: {states}; price health {v.freshness['price_health']}; "
                      f"verification {v.verification}")
        listed_below = fetch_failure_problem([r.symbol for r in failed]) if failed else None
        for problem in v.problems:
            if problem != listed_below:
                console.print(f"  {problem}", markup=False)
    if failed:
        # One line per symbol (not a table): the message names the file and
        # line or the vendor's answer, and an operator greps these lines.
        console.print(f"{len(failed)} symbol(s) failed:")
        for res in failed[:50]:
            console.print(f"  {res.symbol}  {res.outcome}  {res.error_code or '-'}  {res.error_message or ''}",
                          markup=False)
        if len(failed) > 50:
            console.print(f"... and {len(failed) - 50} more (see --json or ingestion_audit)")


@click.command(cls=OperatorCommand, job="ingest_history")
@click.option("--mode", type=click.Choice(OPERATOR_MODES), default="deep_backfill", show_default=True,
              help=f"deep_backfill: the trailing required sessions per symbol (history.required_sessions, "
                   f"{HistorySettings().required_sessions} by default; or --start/--end); incremental: from "
                   "the last stored session + 1; verify: fetch nothing, re-check what is stored.")
@click.option("--start", type=ISO_DATE, help="Custom range start (YYYY-MM-DD).")
@click.option("--end", type=ISO_DATE, help="Custom range end (YYYY-MM-DD).")
@as_of_option("As-of date: the window ends at the last complete session on or before it (default: today).")
@tickers_option("Comma-separated symbols; each must be an enabled symbol of the universe (default: all).")
@click.option("--provider", help="Use only this provider (yahoo, polygon, alpaca, file, synthetic).")
@click.option("--data-dir", type=click.Path(), envvar="FILE_PROVIDER_DIR",
              help="Directory of per-symbol CSV/Parquet files for the 'file' provider [env FILE_PROVIDER_DIR].")
@universe_option
@click.option("--fail-on-quality", is_flag=True, help="Exit 2 when an error-severity quality finding exists.")
@click.option("--cross-check", "cross_check", is_flag=True,
              help="Compare recent closes with a second entitled provider; drift degrades (settings [cross_check]).")
@click.option("--revive", type=SYMBOLS, default=(),
              help="Comma-separated dead-lettered symbols to try again (see verify_db_status.py).")
@db_option
@json_option
def main(mode, start, end, as_of, tickers, provider, data_dir, universe_path, fail_on_quality, cross_check, revive,
         db_path, as_json):
    """Fetch daily bars for the universe, write them idempotently, audit every
    symbol, then score and govern what was fetched.

    Exit codes: 0 every symbol succeeded and verification PASSED, 1 a symbol
    failed to fetch or write, or the run failed (disk full, raw archive not
    writable, store error: the run is recorded FAILED with the error), 2
    verification FAILED (a symbol not ACTIVE, short or stale; or an error
    finding under --fail-on-quality), 64 bad flag, 65 malformed universe or
    data file, 66 missing file or directory, 130 interrupted by SIGINT
    (Ctrl-C), 143 stopped by SIGTERM (the run is recorded ABORTED).
    """
    options = IngestOptions(mode=mode, as_of=as_of, start=start, end=end, tickers=tickers,
                            provider=provider.strip().lower() if provider else None,
                            data_dir=data_dir, revive=revive, cross_check=cross_check)
    return run_command(options, db_path=db_path, universe_path=universe_path, fail_on_quality=fail_on_quality,
                       as_json=as_json)

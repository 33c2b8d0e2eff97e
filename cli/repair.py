"""``repair_db.py``: the repair command's options, their validation, the
repair (or its undo), the diff as a table or JSON, and the exit code."""
from __future__ import annotations

import datetime as dt
import json

import click
from rich.console import Console
from rich.table import Table

from cli import exit_codes
from cli.command import OperatorCommand
from cli.vendor_status import provider_lines
from cli.options import ISO_DATE, as_of_option, check_source_options, db_option, json_option, universe_option
from core.errors import MissingInputError, UsageError
from core.inputs import load_inputs
from core.runtime import RuntimePaths
from core.symbols import InvalidSymbolError, normalise_symbol
from data.collectors.repair import RepairReport, repair_symbol, undo_repair
from data.governance.rules import ACTIVE
from database import open_store, store_exists


def exit_code(report: RepairReport) -> int:
    """One verdict, one code: 1 the fetch failed (nothing repaired); 2 the
    repair was written but the symbol is not ACTIVE after it (the gate code:
    it still may not trade); 0 otherwise: a dry run, or an undo (it puts
    back what was there on purpose; its state is printed)."""
    if report.failed:
        return exit_codes.FAILURE
    if not (report.dry_run or report.undo) and report.state_after != ACTIVE:
        return exit_codes.GATE_FAILED
    return exit_codes.OK


def run_command(*, symbol: str | None, start: dt.date | None, end: dt.date | None, provider: str | None,
                data_dir: str | None, dry_run: bool, undo: str | None, as_of: dt.date | None = None,
                db_path: str | None, universe_path: str | None, as_json: bool) -> int:
    """Check input, run the repair (or undo), render the diff and the
    symbol's state; the exit code."""
    universe, settings = load_inputs(universe_path)
    if undo is None:
        if not (symbol and start and end):
            raise UsageError("--symbol, --from and --to are required (or --undo RUN_ID)")
        try:
            symbol = normalise_symbol(symbol)
        except InvalidSymbolError as exc:
            raise InvalidSymbolError(f"--symbol: {exc}") from exc
        if start > end:
            raise UsageError(f"--from {start} is after --to {end}")
    check_source_options(provider, data_dir, settings)
    paths = RuntimePaths.resolve(db_path)
    if not store_exists(paths.db):
        raise MissingInputError(f"{paths.db}: database not found (run ingest_history.py first)")
    with open_store(paths.db, check=True) as db:
        if undo:
            report = undo_repair(db, universe, settings, paths, repair_run_id=undo, as_of=as_of)
        else:
            report = repair_symbol(db, universe, settings, paths, symbol=symbol, start=start, end=end,
                                   provider=provider, data_dir=data_dir, dry_run=dry_run, as_of=as_of)
    code = exit_code(report)
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "exit_code": code}, default=str, indent=2))
    else:
        render(report)
    return code


def render(report: RepairReport, limit: int = 40) -> None:
    """The diff as a table, the symbol's state change and how to undo."""
    console = Console(highlight=False, soft_wrap=True)
    what = "dry run (nothing written)" if report.dry_run else f"run {report.run_id}"
    console.print(f"repair {report.symbol} {report.start}..{report.end}: {what}; provider {report.provider or '-'}")
    if report.error:
        console.print(f"[red]fetch failed:[/red] {report.error}")
        for line in provider_lines(report.providers):
            console.print(line, markup=False)
        return
    table = Table(title=f"{len(report.changes)} changed row(s), {report.unchanged} unchanged")
    for col in ("date", "change", "column", "before", "after"):
        table.add_column(col)
    for change in report.changes[:limit]:
        for col, pair in (change.get("columns") or {"-": ["", ""]}).items():
            table.add_row(change["date"], change["change"], col, str(pair[0]), str(pair[1]))
    console.print(table)
    if len(report.changes) > limit:
        console.print(f"... and {len(report.changes) - limit} more (see --json)")
    if report.only_in_store:
        console.print(f"{len(report.only_in_store)} stored date(s) not in the payload were kept")
    if not report.dry_run:
        console.print(f"state: {report.state_before or 'none'} -> {report.state_after} ({report.reason_after}); "
                      f"undo with: python repair_db.py --undo {report.run_id}")
        if report.state_after != ACTIVE and not report.undo:
            console.print(f"[red]{report.symbol} is {report.state_after} ({report.reason_after}), not ACTIVE:[/red] "
                          f"it may not trade; see python verify_db_status.py --governance (exit 2)")


@click.command(cls=OperatorCommand, job="repair_db")
@click.option("--symbol", help="Symbol to repair; must be an enabled universe symbol.")
@click.option("--from", "start", type=ISO_DATE, help="First date of the range (YYYY-MM-DD).")
@click.option("--to", "end", type=ISO_DATE, help="Last date of the range (YYYY-MM-DD).")
@click.option("--provider", help="Re-fetch from this provider only (default: the router's priority).")
@click.option("--data-dir", type=click.Path(), envvar="FILE_PROVIDER_DIR",
              help="Directory of CSV/Parquet files for the 'file' provider [env FILE_PROVIDER_DIR].")
@as_of_option("As-of date for re-governing (default: today).")
@click.option("--dry-run", is_flag=True, help="Fetch and show the changes; write nothing.")
@click.option("--undo", metavar="RUN_ID", help="Undo the repair with this run id (restores the replaced rows).")
@universe_option
@db_option
@json_option
def main(symbol, start, end, provider, data_dir, as_of, dry_run, undo, universe_path, db_path, as_json):
    """Re-fetch SYMBOL between --from and --to, show the rows that change, keep
    the replaced rows (so `--undo RUN_ID` can restore them), then re-score and
    re-govern the symbol.

    Exit codes: 0 repaired and the symbol is ACTIVE, a dry run, or an undo;
    1 the fetch failed; 2 repaired but the symbol is not ACTIVE after it
    (DEGRADED / QUARANTINED: it still may not trade); 64 bad flag or a
    symbol outside the universe, 65 malformed universe, 66 missing database.
    """
    return run_command(symbol=symbol, start=start, end=end, provider=provider.strip().lower() if provider else None,
                       data_dir=data_dir, as_of=as_of, dry_run=dry_run, undo=undo, db_path=db_path,
                       universe_path=universe_path, as_json=as_json)

"""Repair a symbol's stored history over a date range (or undo a repair)."""
from __future__ import annotations

import click

from data.collectors.repair import repair_command
from cli.command import OperatorCommand, db_option, json_option

DATE = click.DateTime(["%Y-%m-%d"])


@click.command(cls=OperatorCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--symbol", help="Symbol to repair; must be an enabled universe symbol.")
@click.option("--from", "start", type=DATE, help="First date of the range (YYYY-MM-DD).")
@click.option("--to", "end", type=DATE, help="Last date of the range (YYYY-MM-DD).")
@click.option("--provider", help="Re-fetch from this provider only (default: the router's priority).")
@click.option("--data-dir", type=click.Path(), envvar="FILE_PROVIDER_DIR",
              help="Directory of CSV/Parquet files for the 'file' provider [env FILE_PROVIDER_DIR].")
@click.option("--as-of", "as_of", type=DATE, help="As-of date for re-governing (default: today).")
@click.option("--dry-run", is_flag=True, help="Fetch and show the changes; write nothing.")
@click.option("--undo", metavar="RUN_ID", help="Undo the repair with this run id (restores the replaced rows).")
@click.option("--universe", "universe_path", type=click.Path(dir_okay=False), default=None,
              help="Universe file (default: configs/universe.json).")
@db_option
@json_option
def main(symbol, start, end, provider, data_dir, as_of, dry_run, undo, universe_path, db_path, as_json):
    """Re-fetch SYMBOL between --from and --to, show the rows that change, keep
    the replaced rows (so `--undo RUN_ID` can restore them), then re-score and
    re-govern the symbol.

    Exit codes: 0 repaired (or dry run), 1 the fetch failed, 64 bad flag or a
    symbol outside the universe, 65 malformed universe, 66 missing database.
    """
    return repair_command(symbol=symbol, start=start.date() if start else None, end=end.date() if end else None,
                          provider=provider.strip().lower() if provider else None, data_dir=data_dir,
                          as_of=as_of.date() if as_of else None, dry_run=dry_run, undo=undo, db_path=db_path, universe_path=universe_path,
                          as_json=as_json)


if __name__ == "__main__":
    main()

"""Stage 1: batch ingestion of daily OHLCV history into the governed store."""
from __future__ import annotations


import click

from data.collectors.ingestion import MODES, IngestOptions, ingest_command
from cli.command import OperatorCommand, db_option, json_option


@click.command(cls=OperatorCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mode", type=click.Choice(MODES), default="deep_backfill", show_default=True,
              help="deep_backfill: the trailing 1260 sessions per symbol; incremental: from the last stored "
                   "session + 1; verify: fetch nothing, re-check what is stored; range: --start/--end.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="Custom range start (YYYY-MM-DD).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Custom range end (YYYY-MM-DD).")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="As-of date (default: today).")
@click.option("--tickers", help="Comma-separated symbols; each must be in the universe.")
@click.option("--provider", help="Use only this provider (yahoo, polygon, alpaca, file, synthetic).")
@click.option("--data-dir", type=click.Path(), envvar="FILE_PROVIDER_DIR",
              help="Directory of per-symbol CSV/Parquet files for the 'file' provider [env FILE_PROVIDER_DIR].")
@click.option("--universe", "universe_path", type=click.Path(dir_okay=False), default=None,
              help="Universe file (default: configs/universe.json).")
@click.option("--fail-on-quality", is_flag=True, help="Exit 2 when an error-severity quality finding exists.")
@click.option("--cross-check", "cross_check", is_flag=True,
              help="Compare recent closes with a second entitled provider; drift degrades (settings [cross_check]).")
@click.option("--revive", help="Comma-separated dead-lettered symbols to try again (see verify_db_status.py).")
@db_option
@json_option
def main(mode, start, end, as_of, tickers, provider, data_dir, universe_path, fail_on_quality, cross_check, revive,
         db_path, as_json):
    """Fetch daily bars for the universe, write them idempotently, audit every
    symbol, then score and govern what was fetched.

    Exit codes: 0 every symbol succeeded, 1 a symbol failed, 2 quality gate
    failed (--fail-on-quality), 64 bad flag, 65 malformed universe or data
    file, 66 missing file or directory.
    """
    options = IngestOptions(mode=mode, as_of=as_of.date() if as_of else None,
                            start=start.date() if start else None, end=end.date() if end else None,
                            tickers=tuple(t for t in (tickers or "").split(",") if t.strip()),
                            provider=provider.strip().lower() if provider else None, data_dir=data_dir,
                            revive=tuple(t for t in (revive or "").split(",") if t.strip()), cross_check=cross_check)
    return ingest_command(options, db_path=db_path, universe_path=universe_path,
                          fail_on_quality=fail_on_quality, as_json=as_json)


if __name__ == "__main__":
    main()

"""Refresh the alpha model's features from the governed store.

    python feature_refresher.py [--tickers=AAPL,MSFT] [--force]

Writes $RUNTIME_DIR/features/features.parquet (+ manifest.json); a no-op when
the stored price data has not changed since the last refresh.
"""
import json

import click

from cli.command import OperatorCommand
from cli.options import db_option, json_option, tickers_option, universe_option
from cli.trading_support import open_store_and_universe


@click.command(cls=OperatorCommand, job="feature_refresher")
@tickers_option()
@click.option("--force", is_flag=True, help="Rebuild even when the price data is unchanged.")
@universe_option
@db_option
@json_option
def main(tickers, force, universe_path, db_path, as_json):
    """Rebuild the alpha-model features from the stored bars (a no-op when the
    price data is unchanged, unless --force); written under the runtime dir.

    Exit codes: 0 ok, 1 failure, 64 bad flag or a symbol outside the universe,
    65 malformed universe/settings, 66 missing database or universe.
    """
    from trading.model_pipeline import refresh_feature_store

    db, entries, paths = open_store_and_universe(db_path, universe_path, tickers)
    with db:
        result = refresh_feature_store(db, [e.symbol for e in entries], paths, force=force)
    if as_json:
        print(json.dumps({"path": str(result.path), "rows": result.rows, "symbols": result.symbols,
                          "as_of": result.as_of, "data_hash": result.data_hash, "rebuilt": result.rebuilt}))
    else:
        verb = "rebuilt" if result.rebuilt else "unchanged (price data identical)"
        print(f"features {verb}: {result.rows} rows, {result.symbols} symbols, as of {result.as_of} -> {result.path}")
    return 0


if __name__ == "__main__":
    main()

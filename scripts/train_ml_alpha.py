"""Train the alpha model (ridge on the feature store's ACTIVE rows).

    python scripts/train_ml_alpha.py [--lambda 1.0] [--tickers=...]

Refreshes the features first when the price data changed; saves
$RUNTIME_DIR/models/alpha_ridge.json (plain JSON, no pickle).
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from any directory

import click  # noqa: E402

from cli.command import OperatorCommand  # noqa: E402
from cli.options import db_option, json_option, tickers_option, universe_option  # noqa: E402
from cli.trading_support import open_store_and_universe  # noqa: E402


@click.command(cls=OperatorCommand, job="train_ml_alpha")
@click.option("--lambda", "ridge_lambda", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Ridge penalty.")
@tickers_option()
@universe_option
@db_option
@json_option
def main(ridge_lambda, tickers, universe_path, db_path, as_json):
    """Train the ridge alpha model on the refreshed features and save it under
    $RUNTIME_DIR/models/; the next Stage 2 cycle (or the daemon's next data
    refresh) uses it.

    Exit codes: 0 ok, 1 failure (too few rows to train), 64 bad flag or a
    symbol outside the universe, 65 malformed universe/settings, 66 missing
    database or universe.
    """
    from trading.alpha_model import AlphaModelError
    from trading.model_pipeline import train_alpha_model

    db, entries, paths = open_store_and_universe(db_path, universe_path, tickers)
    with db:
        try:
            model, path, _ = train_alpha_model(db, [e.symbol for e in entries], paths, ridge_lambda=ridge_lambda)
        except AlphaModelError as exc:
            click.echo(f"error: cannot train: {exc}", err=True)
            return 1
    summary = {"model": model.model_id, "path": str(path), "trained_rows": model.trained_rows,
               "coef": dict(zip(model.features, model.coef))}
    print(json.dumps(summary) if as_json else
          f"trained {model.model_id} on {model.trained_rows} rows -> {path}")
    return 0


if __name__ == "__main__":
    main()

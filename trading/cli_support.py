"""What the research CLIs share: open the store and select the universe,
turning missing or malformed inputs into the operator's exit codes."""
from __future__ import annotations

import os
from pathlib import Path

from data.universe import UniverseError, load_universe
from database.manager import Database
from ops.cli import DataInputError, MissingInputError
from ops.runtime import RuntimePaths
from trading.stage2 import DEFAULT_UNIVERSE, parse_tickers, select_entries


def open_store_and_universe(db_path: str | None, universe_path: str | None, tickers: str | None):
    """(Database, selected universe entries, RuntimePaths)."""
    paths = RuntimePaths.resolve(db_path)
    if not paths.db.exists():
        raise MissingInputError(f"{paths.db}: database not found (run ingest_history.py first)")
    path = Path(universe_path or os.environ.get("UNIVERSE_FILE") or DEFAULT_UNIVERSE)
    if not path.exists():
        raise MissingInputError(f"{path}: universe file not found")
    try:
        universe = load_universe(path)
    except UniverseError as exc:
        raise DataInputError(str(exc)) from exc
    return Database(paths.db), select_entries(universe, parse_tickers(tickers)), paths

"""What the research CLIs share: open the store and select the universe,
turning missing or malformed inputs into typed input errors."""
from __future__ import annotations

from core.errors import MissingInputError
from core.inputs import load_inputs
from core.runtime import RuntimePaths
from database import open_store, store_exists
from trading.stage2 import select_entries


def open_store_and_universe(db_path: str | None, universe_path: str | None, tickers: tuple[str, ...]):
    """(the store, selected universe entries, RuntimePaths)."""
    paths = RuntimePaths.resolve(db_path)
    if not store_exists(paths.db):
        raise MissingInputError(f"{paths.db}: database not found (run ingest_history.py first)")
    universe, _ = load_inputs(universe_path)
    return open_store(paths.db), select_entries(universe, tickers), paths

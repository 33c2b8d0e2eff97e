"""The research side of Stage 2: refresh the feature store, train the alpha
model.  Both read the governed store only (never a provider).

``refresh_feature_store`` is what ``feature_refresher.py`` runs; it is a
no-op when the stored features were built from the same price data (the
manifest's hash), so it can follow every data refresh cheaply.
``train_alpha_model`` (``scripts/train_ml_alpha.py``) trains on the ACTIVE
symbols' rows only: DEGRADED and QUARANTINED data do not teach the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from data.governance.rules import ACTIVE
from database import Store
from core.runtime import RuntimePaths
from trading.alpha_model import AlphaModel, save_model, train_ridge
from trading.features import FeatureStore, build_feature_table, price_data_hash


@dataclass(frozen=True)
class FeatureRefresh:
    path: Path
    rows: int
    symbols: int
    data_hash: str
    as_of: str | None
    rebuilt: bool


def feature_store(paths: RuntimePaths) -> FeatureStore:
    return FeatureStore(paths.root / "features")


def refresh_feature_store(db: Store, symbols: Sequence[str], paths: RuntimePaths, *,
                          force: bool = False) -> FeatureRefresh:
    """Rebuild the features when the stored price data changed."""
    bars = {s: db.bars.read(s) for s in symbols}
    bars = {s: f for s, f in bars.items() if len(f)}
    data_hash = price_data_hash(bars)
    as_of = max((f["date"].iloc[-1].strftime("%Y-%m-%d") for f in bars.values()), default=None)
    store = feature_store(paths)
    manifest = store.manifest()
    if not force and manifest and manifest.get("data_hash") == data_hash and store.table_path.exists():
        return FeatureRefresh(store.table_path, manifest["rows"], manifest["symbols"], data_hash, as_of, False)
    table = build_feature_table(bars)
    states = db.governance.states(list(bars))
    table["governance_state"] = table["symbol"].map(lambda s: (states.get(s) or {}).get("state") or "MISSING")
    store.write(table, data_hash=data_hash, as_of=as_of)
    return FeatureRefresh(store.table_path, len(table), int(table["symbol"].nunique()) if len(table) else 0,
                          data_hash, as_of, True)


def train_alpha_model(db: Store, symbols: Sequence[str], paths: RuntimePaths, *,
                      ridge_lambda: float = 1.0) -> tuple[AlphaModel, Path, FeatureRefresh]:
    """Refresh the features if needed, train ridge on ACTIVE rows, save."""
    refresh = refresh_feature_store(db, symbols, paths)
    table: pd.DataFrame = feature_store(paths).read()
    active = table[table["governance_state"] == ACTIVE]
    model = train_ridge(active, ridge_lambda=ridge_lambda, trained_on=refresh.data_hash)
    return model, save_model(model, paths.models_dir), refresh

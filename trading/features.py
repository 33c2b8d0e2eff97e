"""Features for the alpha model, built from stored bars (pure functions),
and their store under the runtime directory.

One row per symbol and session.  Every feature uses only data up to and
including its session; ``target`` is the next session's log return (NaN on
the last row, which is the row a live prediction uses).

The store is ``$RUNTIME_DIR/features/features.parquet`` plus a manifest
naming the price data it was built from (a hash), so a reader can tell
whether the features are current with the database.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from core.errors import MissingInputError, ModelError

FEATURE_COLUMNS = ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "zscore_20d", "volume_z_20d")
FEATURE_LOOKBACK = 21   # rows of history the widest feature needs


class FeatureValidationError(ModelError):
    """A feature frame is missing columns or holds non-finite values."""


def build_features(symbol: str, bars: pd.DataFrame) -> pd.DataFrame:
    """Feature rows for one symbol's bars (oldest first).  Rows without a
    full lookback are dropped; the last row has ``target`` NaN."""
    prices = bars["adj_close"].astype("float64").where(lambda s: s > 0)
    logp = np.log(prices)
    ret_1d = logp.diff()
    volume = bars["volume"].astype("float64")
    vol_mean = volume.rolling(20).mean()
    vol_std = volume.rolling(20).std()
    ma20 = prices.rolling(20).mean()
    sd20 = prices.rolling(20).std()
    frame = pd.DataFrame({
        "symbol": symbol,
        "date": pd.to_datetime(bars["date"]).dt.strftime("%Y-%m-%d"),
        "ret_1d": ret_1d,
        "ret_5d": logp.diff(5),
        "ret_20d": logp.diff(20),
        "vol_20d": ret_1d.rolling(20).std(),
        "zscore_20d": (prices - ma20) / sd20,
        # A constant or missing volume carries no information: 0, not NaN.
        "volume_z_20d": ((volume - vol_mean) / vol_std).where(vol_std > 0, 0.0).fillna(0.0),
        "target": ret_1d.shift(-1),
    })
    frame = frame.iloc[FEATURE_LOOKBACK - 1:]
    finite = np.isfinite(frame[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")).all(axis=1)
    return frame[finite].reset_index(drop=True)


def validate_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Raise FeatureValidationError unless every feature column is present
    and finite; returns the frame."""
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
        raise FeatureValidationError(f"missing feature column(s): {', '.join(missing)}")
    values = frame[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        where = ", ".join(f"{FEATURE_COLUMNS[c]}@row{r}" for r, c in list(zip(rows, cols))[:5])
        raise FeatureValidationError(f"{int(bad.sum())} non-finite feature value(s): {where}")
    return frame


def build_feature_table(bars_by_symbol: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Features of every symbol, in symbol then date order."""
    parts = [build_features(s, bars_by_symbol[s]) for s in sorted(bars_by_symbol)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "target"])
    return pd.concat(parts, ignore_index=True)


def price_data_hash(bars_by_symbol: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 of the market columns of the bars, symbol by symbol in name
    order; floats by repr so the same stored values give the same hash."""
    h = hashlib.sha256()
    for symbol in sorted(bars_by_symbol):
        bars = bars_by_symbol[symbol]
        h.update(symbol.encode() + b"\n")
        dates = pd.to_datetime(bars["date"]).dt.strftime("%Y-%m-%d").tolist()
        cols = [bars[c].astype("float64").tolist() for c in ("open", "high", "low", "close", "adj_close")]
        volumes = [None if pd.isna(v) else int(v) for v in bars["volume"].tolist()]
        for i, d in enumerate(dates):
            h.update(repr((d, *(c[i] for c in cols), volumes[i])).encode() + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class FeatureStore:
    """Features on disk under the runtime directory."""

    directory: Path

    @property
    def table_path(self) -> Path:
        return self.directory / "features.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    def write(self, table: pd.DataFrame, *, data_hash: str, as_of: str | None) -> None:
        """Write the table then the manifest (a reader trusts the table only
        when the manifest names it, so a crash between the two is harmless)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.table_path.with_suffix(".parquet.tmp")
        table.to_parquet(tmp, index=False)
        tmp.replace(self.table_path)
        manifest = {"data_hash": data_hash, "as_of": as_of, "rows": int(len(table)),
                    "symbols": int(table["symbol"].nunique()) if len(table) else 0,
                    "columns": list(FEATURE_COLUMNS)}
        tmp_m = self.manifest_path.with_suffix(".json.tmp")
        tmp_m.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
        tmp_m.replace(self.manifest_path)

    def manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def read(self) -> pd.DataFrame:
        if not self.table_path.exists():
            raise MissingInputError(f"{self.table_path}: no features (run feature_refresher.py)")
        return pd.read_parquet(self.table_path)


def latest_feature_rows(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The last row of each symbol's features (the row a prediction uses)."""
    rows = [t.iloc[[-1]] for t in tables if len(t)]
    if not rows:
        return pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "target"])
    return pd.concat(rows, ignore_index=True)

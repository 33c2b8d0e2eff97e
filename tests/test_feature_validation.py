"""Runbook hardening suite: features are finite, complete and use no future data."""
from __future__ import annotations

import numpy as np
import pytest

from tests.trading.market_frames import random_walk_bars
from trading.features import (FEATURE_COLUMNS, FEATURE_LOOKBACK, FeatureValidationError, build_feature_table,
                              build_features, price_data_hash, validate_features)


def test_features_are_complete_and_finite():
    frame = build_features("AAA", random_walk_bars(120, seed=1))
    assert list(frame.columns[:2]) == ["symbol", "date"]
    assert set(FEATURE_COLUMNS) <= set(frame.columns)
    assert len(frame) == 120 - (FEATURE_LOOKBACK - 1)
    validate_features(frame)
    assert np.isnan(frame["target"].iloc[-1])           # the live row has no target yet
    assert np.isfinite(frame["target"].iloc[:-1]).all()


def test_features_do_not_see_the_future():
    bars = random_walk_bars(120, seed=2)
    before = build_features("AAA", bars)
    shocked = bars.copy()
    shocked.loc[100:, ["open", "high", "low", "close", "adj_close"]] *= 3.0
    after = build_features("AAA", shocked)
    cutoff = before.index[before["date"] == shocked["date"].iloc[99].strftime("%Y-%m-%d")][0]
    cols = list(FEATURE_COLUMNS)
    # Rows up to session 99 are unchanged; only the target of row 99 (next day's return) may move.
    assert np.allclose(before.loc[:cutoff, cols], after.loc[:cutoff, cols])
    assert not np.allclose(before.loc[cutoff + 1:, cols], after.loc[cutoff + 1:, cols])


def test_validation_rejects_non_finite_values():
    frame = build_features("AAA", random_walk_bars(60, seed=3))
    frame.loc[5, "vol_20d"] = np.nan
    frame.loc[7, "ret_1d"] = np.inf
    with pytest.raises(FeatureValidationError, match="2 non-finite"):
        validate_features(frame)


def test_validation_rejects_missing_columns():
    frame = build_features("AAA", random_walk_bars(60, seed=3)).drop(columns=["zscore_20d"])
    with pytest.raises(FeatureValidationError, match="zscore_20d"):
        validate_features(frame)


def test_bad_prices_are_dropped_not_propagated():
    bars = random_walk_bars(80, seed=4)
    bars.loc[40, "adj_close"] = 0.0        # a zero price would give -inf log returns
    frame = build_features("AAA", bars)
    validate_features(frame)
    assert len(frame) < 80 - (FEATURE_LOOKBACK - 1)


def test_constant_volume_gives_zero_volume_feature():
    bars = random_walk_bars(60, seed=5)
    bars["volume"] = 1000
    assert (build_features("AAA", bars)["volume_z_20d"] == 0).all()


def test_table_and_hash_are_deterministic():
    bars = {"BBB": random_walk_bars(60, seed=6), "AAA": random_walk_bars(60, seed=7)}
    t1, t2 = build_feature_table(bars), build_feature_table(dict(reversed(list(bars.items()))))
    assert t1.equals(t2)
    assert list(t1["symbol"].unique()) == ["AAA", "BBB"]
    assert price_data_hash(bars) == price_data_hash(dict(reversed(list(bars.items()))))
    changed = {**bars, "AAA": bars["AAA"].assign(close=bars["AAA"]["close"] * 1.0000001)}
    assert price_data_hash(changed) != price_data_hash(bars)

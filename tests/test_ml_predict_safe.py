"""Runbook hardening suite: alpha-model prediction failures are caught,
counted as model_errors and bypassed."""
from __future__ import annotations

import numpy as np
import pytest

from tests.trading.market_frames import random_walk_bars
from trading.alpha_model import (AlphaModel, AlphaModelError, SafePredictor, load_model, model_path, save_model,
                                 train_ridge)
from trading.features import build_feature_table, latest_feature_rows, build_features
from trading.signals import RunCounters


@pytest.fixture
def table():
    return build_feature_table({f"S{i}": random_walk_bars(200, seed=i) for i in range(4)})


def test_train_save_load_roundtrip(tmp_path, table):
    model = train_ridge(table, ridge_lambda=2.0, trained_on="abc")
    path = save_model(model, tmp_path)
    assert path == model_path(tmp_path)
    loaded = load_model(tmp_path)
    assert loaded == model
    assert loaded.model_id == model.model_id and loaded.model_id.startswith("ridge:")
    rows = table[table["target"].notna()].head(5)
    assert np.allclose(loaded.predict(rows), model.predict(rows))


def test_ridge_recovers_a_planted_relation(table):
    rng = np.random.default_rng(0)
    planted = table.copy()
    planted["target"] = 0.002 * planted["ret_5d"] / planted["ret_5d"].std() + rng.normal(0, 1e-5, len(planted))
    model = train_ridge(planted, ridge_lambda=1e-6)
    coef = dict(zip(model.features, model.coef))
    assert coef["ret_5d"] == pytest.approx(0.002, rel=0.05)
    assert max(abs(v) for k, v in coef.items() if k != "ret_5d") < 2e-4


def test_too_few_rows_cannot_train(table):
    with pytest.raises(AlphaModelError, match="training rows"):
        train_ridge(table.head(3))


def test_no_model_means_no_alpha_and_no_error(tmp_path, table):
    counters = RunCounters()
    predictor = SafePredictor(tmp_path, counters)
    assert predictor.predict(table.tail(2)) is None
    assert counters.model_errors == 0


def test_corrupt_model_file_is_a_counted_error(tmp_path, table):
    model_path(tmp_path).write_text("{not json")
    counters = RunCounters()
    predictor = SafePredictor(tmp_path, counters)
    assert predictor.model is None and "malformed" in predictor.load_error
    assert predictor.predict(table.tail(2)) is None
    assert counters.model_errors == 1


def test_invalid_features_are_bypassed_and_counted(tmp_path, table):
    save_model(train_ridge(table), tmp_path)
    counters = RunCounters()
    predictor = SafePredictor(tmp_path, counters)
    rows = latest_feature_rows([build_features("S1", random_walk_bars(80, seed=1))])
    assert set(predictor.predict(rows)) == {"S1"}
    bad = rows.copy()
    bad.loc[0, "vol_20d"] = np.nan
    assert predictor.predict(bad) is None
    assert counters.model_errors == 1
    assert predictor.predict(rows.drop(columns=["ret_1d"])) is None
    assert counters.model_errors == 2


def test_model_that_cannot_apply_is_bypassed(tmp_path, table):
    model = train_ridge(table)
    broken = AlphaModel(features=model.features + ("not_a_feature",), means=model.means + (0.0,),
                        scales=model.scales + (1.0,), coef=model.coef + (1.0,), intercept=model.intercept,
                        ridge_lambda=1.0, trained_rows=1, trained_on="")
    save_model(broken, tmp_path)
    counters = RunCounters()
    assert SafePredictor(tmp_path, counters).predict(table.tail(1)) is None
    assert counters.model_errors == 1


def test_wrong_kind_of_model_file_is_rejected(tmp_path):
    model_path(tmp_path).write_text('{"kind": "pickle"}')
    with pytest.raises(AlphaModelError, match="not a ridge model"):
        load_model(tmp_path)

"""Runbook hardening suite: ARIMA non-convergence/errors fall back to EWMA
and are counted (arima_fb)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.trading.market_frames import random_walk_bars
from trading.signals import ArimaForecaster, ForecastError, RunCounters, ewma_mean, log_returns


def _bars(prices):
    return pd.DataFrame({"adj_close": np.asarray(prices, dtype="float64")})


def test_arima_forecasts_a_random_walk():
    counters = RunCounters()
    fc = ArimaForecaster(window=120, counters=counters).forecast("AAA", random_walk_bars(200, seed=3))
    assert fc.model == "arima(1,0,1)"
    assert fc.fallback_reason is None
    assert math.isfinite(fc.expected_return) and abs(fc.expected_return) < 0.05
    assert fc.volatility > 0
    assert counters.arima_fb == 0


def test_constant_prices_fall_back_to_ewma_and_count():
    counters = RunCounters()
    fc = ArimaForecaster(counters=counters).forecast("FLAT", _bars([100.0] * 80))
    assert fc.model.startswith("ewma")
    assert fc.expected_return == 0.0
    assert "constant" in fc.fallback_reason
    assert counters.arima_fb == 1


def test_too_short_history_falls_back_to_ewma():
    counters = RunCounters()
    prices = 100 * np.exp(np.cumsum([0.01, -0.02, 0.015, 0.005, 0.01]))
    fc = ArimaForecaster(counters=counters, min_returns=30).forecast("NEW", _bars(prices))
    assert fc.model.startswith("ewma")
    assert counters.arima_fb == 1
    expected = pd.Series(log_returns(_bars(prices))).ewm(halflife=20.0).mean().iloc[-1]
    assert fc.expected_return == pytest.approx(expected)


def test_arima_error_falls_back():
    """An order statsmodels rejects (negative) is an ARIMA error, not a crash."""
    counters = RunCounters()
    fc = ArimaForecaster(order=(-1, 0, 0), counters=counters).forecast("BAD", random_walk_bars(100, seed=5))
    assert fc.model.startswith("ewma")
    assert counters.arima_fb == 1
    assert fc.fallback_reason


def test_fallback_count_accumulates_across_symbols():
    counters = RunCounters()
    f = ArimaForecaster(counters=counters)
    for i in range(3):
        f.forecast(f"F{i}", _bars([50.0] * 40))
    f.forecast("OK", random_walk_bars(200, seed=9))
    assert counters.arima_fb == 3


def test_no_usable_returns_is_a_forecast_error():
    with pytest.raises(ForecastError):
        ArimaForecaster().forecast("ONE", _bars([100.0]))


def test_ewma_weights_the_newest_return_most():
    assert ewma_mean(np.array([0.0, 0.0, 1.0]), 1.0) > ewma_mean(np.array([1.0, 0.0, 0.0]), 1.0)

"""Forecasters for tests that need to steer the signal (they implement the
``trading.signals.Forecaster`` protocol; the real ARIMA is tested on its own)."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from trading.signals import Forecast, log_returns


class ScriptedForecaster:
    """Expected returns set by the test; volatility from the bars."""

    def __init__(self, expected: Mapping[str, float], default: float = 0.001):
        self.expected = dict(expected)
        self.default = default
        self.calls = 0

    def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        self.calls += 1
        vol = float(np.std(log_returns(bars), ddof=1))
        return Forecast(symbol, self.expected.get(symbol, self.default), vol, "scripted")


class FlippingForecaster:
    """Alternates every symbol between a positive and a negative view on
    each snapshot refresh, so a long-only book trades on every refresh."""

    def __init__(self, magnitude: float = 0.002):
        self.magnitude = magnitude
        self.calls: dict[str, int] = {}

    def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        n = self.calls.get(symbol, 0)
        self.calls[symbol] = n + 1
        sign = 1.0 if n % 2 == 0 else -1.0
        vol = float(np.std(log_returns(bars), ddof=1))
        return Forecast(symbol, sign * self.magnitude, vol, "flipping")

"""Next-day return forecasts: statsmodels ARIMA with an EWMA fallback.

The forecast is of the next session's adj_close log return, from the last
``window`` returns.  ARIMA is the model of record; when it does not converge,
warns, raises or answers a non-finite value, the exponentially weighted mean
of the same returns stands in and the fallback is counted (``arima_fb``, the
heartbeat's counter).  Either way the caller gets a finite number and the
name of the model that made it.
"""
from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from core.errors import ModelError


@dataclass
class RunCounters:
    """The heartbeat's counters (shared by the agent and the daemon)."""

    cycles: int = 0
    model_errors: int = 0
    arima_fb: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True)
class Forecast:
    """One symbol's next-day log-return forecast, its volatility and provenance."""

    symbol: str
    expected_return: float
    volatility: float
    model: str                 # e.g. "arima(1,0,1)" or "ewma(hl=20)"
    fallback_reason: str | None = None


class Forecaster(Protocol):
    def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        ...


class ForecastError(ModelError):
    """Too little usable data to forecast at all (not even the fallback):
    the symbol gets no forecast this cycle (recorded in the snapshot)."""


def log_returns(bars: pd.DataFrame) -> np.ndarray:
    """adj_close log returns (non-finite and non-positive prices dropped)."""
    prices = bars["adj_close"].to_numpy(dtype="float64")
    prices = prices[np.isfinite(prices) & (prices > 0)]
    if len(prices) < 2:
        return np.empty(0)
    return np.diff(np.log(prices))


def ewma_mean(returns: np.ndarray, halflife: float) -> float:
    """Exponentially weighted mean with the newest return weighted most."""
    n = len(returns)
    alpha = 1.0 - math.exp(math.log(0.5) / halflife)
    weights = (1.0 - alpha) ** np.arange(n - 1, -1, -1)
    return float(np.dot(weights, returns) / weights.sum())


class ArimaForecaster:
    """ARIMA(p,d,q) on log returns, EWMA mean when ARIMA fails."""

    def __init__(self, *, window: int = 250, order: tuple[int, int, int] = (1, 0, 1),
                 ewma_halflife: float = 20.0, counters: RunCounters | None = None, min_returns: int = 30):
        self.window = int(window)
        self.order = tuple(int(x) for x in order)
        self.ewma_halflife = float(ewma_halflife)
        self.counters = counters if counters is not None else RunCounters()
        self.min_returns = int(min_returns)

    @property
    def arima_name(self) -> str:
        return "arima({},{},{})".format(*self.order)

    @property
    def ewma_name(self) -> str:
        return f"ewma(hl={self.ewma_halflife:g})"

    def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        """Forecast ``symbol``'s next log return from its stored bars."""
        returns = log_returns(bars)[-self.window:]
        if len(returns) < 2:
            raise ForecastError(f"{symbol}: {len(returns)} usable returns; cannot forecast")
        vol = float(np.std(returns, ddof=1))
        try:
            value = self._arima(returns)
        except Exception as exc:  # any ARIMA failure is the fallback's cue, by design
            self.counters.add("arima_fb")
            reason = f"{type(exc).__name__}: {exc}"
            return Forecast(symbol, ewma_mean(returns, self.ewma_halflife), vol, self.ewma_name, reason)
        return Forecast(symbol, value, vol, self.arima_name)

    def _arima(self, returns: np.ndarray) -> float:
        if len(returns) < self.min_returns:
            raise ArimaFailed(f"{len(returns)} returns, need {self.min_returns}")
        if float(np.std(returns)) == 0.0:
            raise ArimaFailed("constant returns")
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.arima.model import ARIMA

        # Returns are scaled to percent: the optimiser converges far more
        # reliably on O(1) numbers than on O(0.01) ones.
        scaled = returns * 100.0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = ARIMA(scaled, order=self.order).fit()
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            raise ArimaFailed("did not converge (ConvergenceWarning)")
        converged = (result.mle_retvals or {}).get("converged", True)
        if not converged:
            raise ArimaFailed("did not converge")
        value = float(np.asarray(result.forecast(1))[0]) / 100.0
        if not math.isfinite(value):
            raise ArimaFailed(f"non-finite forecast {value}")
        return value


class ArimaFailed(ModelError):
    """ARIMA did not give a usable forecast: the EWMA mean stands in, and
    ``arima_fb`` counts it."""

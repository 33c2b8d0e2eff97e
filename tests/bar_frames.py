"""Hand-built bars frames (the provider contract) with one defect each.

``clean_bars`` is a seeded random walk with 1% daily moves on the given
sessions, consistent OHLC, adj_close == close, positive volume.  Each
``with_*`` function returns a copy with one defect or corporate action
applied at a given position, so a test names exactly what it builds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.calendar import backfill_window, expected_sessions

AS_OF = pd.Timestamp("2024-06-28").date()   # a Friday; XNYS session


def window_sessions(calendar: str = "XNYS", as_of=AS_OF, sessions: int = 1260) -> pd.DatetimeIndex:
    """The trailing ``sessions`` sessions of ``calendar`` ending at ``as_of``."""
    win = backfill_window(calendar, as_of, sessions)
    return expected_sessions(calendar, win.start, win.end)


def clean_bars(sessions: pd.DatetimeIndex, *, start_price: float = 100.0, daily_vol: float = 0.01,
               seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(sessions)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, daily_vol, n)))
    open_ = close * np.exp(rng.normal(0.0, daily_vol / 2, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.001, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.001, 0.01, n))
    return pd.DataFrame({
        "date": pd.DatetimeIndex(sessions).astype("datetime64[ns]"),
        "open": open_, "high": high, "low": low, "close": close, "adj_close": close.copy(),
        "volume": pd.array(rng.integers(100_000, 5_000_000, n), dtype="Int64"),
    })


def without_sessions(frame: pd.DataFrame, positions) -> pd.DataFrame:
    """Drop the rows at ``positions`` (missing sessions)."""
    return frame.drop(frame.index[list(positions)]).reset_index(drop=True)


def last_sessions(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Only the last ``count`` rows: a symbol with a short history."""
    return frame.iloc[-count:].reset_index(drop=True)


def with_price_level_shift(frame: pd.DataFrame, position: int, factor: float) -> pd.DataFrame:
    """Multiply every price from ``position`` on by ``factor`` (a real jump
    that nothing explains when adj_close moves too)."""
    out = frame.copy()
    for col in ("open", "high", "low", "close", "adj_close"):
        out.loc[position:, col] = out.loc[position:, col] * factor
    return out


def with_spike(frame: pd.DataFrame, position: int, factor: float) -> pd.DataFrame:
    """One bar whose prices are ``factor`` times their neighbours' level (a
    false tick / unexplained spike that reverts the next day)."""
    out = frame.copy()
    for col in ("open", "high", "low", "close", "adj_close"):
        out.loc[position, col] = out.loc[position, col] * factor
    return out


def with_split(frame: pd.DataFrame, position: int, ratio: float = 2.0, *,
               adjusted: bool = True, column: bool = False) -> pd.DataFrame:
    """A ``ratio``-for-1 split effective at bar ``position``: unadjusted
    prices from there on are divided by ``ratio``.  With ``adjusted`` the
    adj_close series stays continuous (vendor back-adjusted history); with
    ``column`` the frame carries the event in ``split_ratio``."""
    out = frame.copy()
    for col in ("open", "high", "low", "close"):
        out.loc[position:, col] = out.loc[position:, col] / ratio
    if adjusted:
        out["adj_close"] = frame["close"] / ratio    # history restated in post-split terms
    else:
        out["adj_close"] = out["close"]
    if column:
        out["split_ratio"] = 1.0
        out.loc[position, "split_ratio"] = ratio
    return out


def with_special_dividend(frame: pd.DataFrame, position: int, fraction: float = 0.45) -> pd.DataFrame:
    """A special cash dividend of ``fraction`` of the price, going ex at bar
    ``position``: close drops by the dividend, adj_close (back-adjusted by the
    vendor) stays continuous."""
    out = frame.copy()
    cash = float(frame.loc[position - 1, "close"]) * fraction
    for col in ("open", "high", "low", "close"):
        out.loc[position:, col] = out.loc[position:, col] - cash
    factor = 1 - cash / float(frame.loc[position - 1, "close"])
    adj = frame["close"].copy()
    adj.loc[:position - 1] = adj.loc[:position - 1] * factor
    out["adj_close"] = adj.to_numpy()
    out.loc[position:, "adj_close"] = out.loc[position:, "close"]
    out.attrs["dividend"] = cash
    return out


def with_negative_price(frame: pd.DataFrame, position: int) -> pd.DataFrame:
    """A bar whose prices are all negated (consistent OHLC, but < 0)."""
    out = frame.copy()
    o, h, lo, c = (float(out.loc[position, k]) for k in ("open", "high", "low", "close"))
    out.loc[position, ["open", "high", "low", "close", "adj_close"]] = [-o, -lo, -h, -c, -c]
    return out


def with_ohlc_inversion(frame: pd.DataFrame, position: int) -> pd.DataFrame:
    """A bar with high and low swapped (high < low)."""
    out = frame.copy()
    out.loc[position, ["high", "low"]] = [float(frame.loc[position, "low"]), float(frame.loc[position, "high"])]
    return out


def with_null_prices(frame: pd.DataFrame, positions=None) -> pd.DataFrame:
    """Null every price at ``positions`` (all rows when None)."""
    out = frame.copy()
    rows = out.index if positions is None else out.index[list(positions)]
    out.loc[rows, ["open", "high", "low", "close", "adj_close"]] = np.nan
    return out


def with_duplicates(frame: pd.DataFrame, positions) -> pd.DataFrame:
    """Append a copy of each row at ``positions`` (a vendor payload with repeats)."""
    extra = frame.iloc[list(positions)]
    return pd.concat([frame, extra]).sort_values("date", kind="stable").reset_index(drop=True)

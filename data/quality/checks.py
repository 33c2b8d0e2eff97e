"""QA checks that do not enter the score but feed governance states and the
report: OHLC consistency, false ticks, nulls, zero volume, staleness.

Pure functions on a bars-contract frame (see ``data.providers.base``); each
returns the findings it made (an empty list when the check passes).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from data.quality import findings as F
from data.quality.components import as_dates, as_floats
from data.quality.findings import Finding, sample_dates

# Scale that makes the MAD a consistent estimator of a normal sigma.
_MAD_TO_SIGMA = 1.4826


_floats = as_floats


def ohlc_findings(frame: pd.DataFrame, tolerance: float = 1e-6) -> list[Finding]:
    """``high < low`` or ``close`` outside ``[low, high]`` is OHLC_INCONSISTENT
    (critical); ``open`` outside the range is OPEN_OUTSIDE_RANGE (warning:
    some vendors take the open from another feed).  ``tolerance`` is relative,
    so float noise in a vendor's adjusted prices is not a defect."""
    if frame.empty:
        return []
    o, h, lo, c = (_floats(frame, k) for k in ("open", "high", "low", "close"))
    slack_h = tolerance * np.abs(h)
    slack_l = tolerance * np.abs(lo)
    inverted = h < lo - slack_l
    close_out = (c > h + slack_h) | (c < lo - slack_l)
    bad = inverted | close_out
    out = []
    if bad.any():
        out.append(Finding(F.OHLC_INCONSISTENT, F.CRITICAL,
                           f"{int(bad.sum())} bar(s) with high < low or close outside [low, high] "
                           f"({int(inverted.sum())} inverted, {int(close_out.sum())} close out of range)",
                           int(bad.sum()), sample_dates(frame["date"].to_numpy()[bad])))
    open_out = ((o > h + slack_h) | (o < lo - slack_l)) & ~inverted
    if open_out.any():
        out.append(Finding(F.OPEN_OUTSIDE_RANGE, F.WARNING,
                           f"{int(open_out.sum())} bar(s) with open outside [low, high]",
                           int(open_out.sum()), sample_dates(frame["date"].to_numpy()[open_out])))
    return out


def false_tick_mask(prices: np.ndarray, window: int = 11, mad_z: float = 8.0,
                    min_move: float = 0.05, scale_window: int = 63) -> np.ndarray:
    """Rolling median + MAD test on log prices.  A bar is a false tick when

    * it sits more than ``min_move`` (a fraction) and more than ``mad_z``
      robust sigmas away from the median of the ``window`` bars centred on it,
      the sigma being 1.4826 x the MAD of daily log returns over the
      ``scale_window`` bars around it (the local volatility: a MAD of the
      price levels themselves follows every trend and hides ticks), and
    * it is isolated: both neighbours lie on the same side of it, each by more
      than half its deviation (a tick goes out and comes back; a real gap
      stays, and a centred median follows a level shift anyway).

    Bars near either end use shorter windows.  Null or non-positive prices are
    skipped (other checks report them).
    """
    n = len(prices)
    out = np.zeros(n, dtype=bool)
    window = max(3, int(window) | 1)  # odd, so the window is centred
    usable = np.isfinite(prices) & (prices > 0)
    idx = np.flatnonzero(usable)
    if len(idx) < window:
        return out
    x = pd.Series(np.log(prices[idx]))
    median = x.rolling(window, center=True, min_periods=window // 2 + 1).median().to_numpy()
    returns = x.diff()
    spread = (returns - returns.rolling(scale_window, center=True, min_periods=window).median()).abs()
    sigma = _MAD_TO_SIGMA * spread.rolling(scale_window, center=True, min_periods=window).median().to_numpy()
    values = x.to_numpy()
    dev = np.abs(values - median)
    to_prev = values - np.r_[np.nan, values[:-1]]
    to_next = values - np.r_[values[1:], np.nan]
    to_prev = np.where(np.isnan(to_prev), to_next, to_prev)   # first bar: only a next neighbour
    to_next = np.where(np.isnan(to_next), to_prev, to_next)   # last bar: only a previous one
    isolated = (np.sign(to_prev) == np.sign(to_next)) & (np.minimum(np.abs(to_prev), np.abs(to_next)) > dev / 2)
    with np.errstate(invalid="ignore"):
        flagged = (dev > np.log1p(min_move)) & (dev > mad_z * sigma) & isolated
    out[idx[np.nan_to_num(flagged, nan=False).astype(bool)]] = True
    return out


def false_tick_findings(frame: pd.DataFrame, window: int = 11, mad_z: float = 8.0,
                        min_move: float = 0.05, scale_window: int = 63) -> list[Finding]:
    """FALSE_TICK (warning) for isolated excursions of adj_close (close when
    adj_close is absent): adj_close is continuous across corporate actions."""
    if len(frame) < window:
        return []
    prices = _floats(frame, "adj_close")
    if not np.isfinite(prices).any():
        prices = _floats(frame, "close")
    mask = false_tick_mask(prices, window, mad_z, min_move, scale_window)
    if not mask.any():
        return []
    return [Finding(F.FALSE_TICK, F.WARNING,
                    f"{int(mask.sum())} isolated bar(s) more than {min_move:.0%} and {mad_z:g} robust sigmas "
                    f"away from their {window}-bar rolling median", int(mask.sum()),
                    sample_dates(frame["date"].to_numpy()[mask]))]


def null_findings(frame: pd.DataFrame) -> list[Finding]:
    """ALL_NULL (critical) when no bar has a close or an adj_close;
    NULL_FIELDS (warning) for bars with some null price or volume."""
    if frame.empty:
        return []
    close, adj = _floats(frame, "close"), _floats(frame, "adj_close")
    if np.isnan(close).all() and np.isnan(adj).all():
        return [Finding(F.ALL_NULL, F.CRITICAL, f"all {len(frame)} bar(s) have null prices", len(frame))]
    nulls = np.zeros(len(frame), dtype=bool)
    for col in ("open", "high", "low", "close", "adj_close", "volume"):
        nulls |= np.isnan(_floats(frame, col))
    if not nulls.any():
        return []
    return [Finding(F.NULL_FIELDS, F.WARNING, f"{int(nulls.sum())} bar(s) with null price or volume fields",
                    int(nulls.sum()), sample_dates(frame["date"].to_numpy()[nulls]))]


def zero_volume_findings(frame: pd.DataFrame, asset_class: str, warn_fraction: float = 0.05) -> list[Finding]:
    """ZERO_VOLUME: a warning for stocks and crypto when more than
    ``warn_fraction`` of the bars traded nothing; info otherwise (FX and many
    futures feeds carry no volume at all)."""
    if frame.empty:
        return []
    zero = _floats(frame, "volume") == 0
    if not zero.any():
        return []
    share = zero.sum() / len(frame)
    severity = F.WARNING if asset_class in ("stocks", "crypto") and share > warn_fraction else F.INFO
    return [Finding(F.ZERO_VOLUME, severity, f"{int(zero.sum())} zero-volume bar(s) ({share:.1%})",
                    int(zero.sum()), sample_dates(frame["date"].to_numpy()[zero]))]


def stale_sessions(last_bar: dt.date | pd.Timestamp | None, expected_sessions: pd.DatetimeIndex) -> int:
    """Expected sessions after the last bar (0 when the last bar is current)."""
    if last_bar is None or len(expected_sessions) == 0:
        return 0
    expected = pd.DatetimeIndex(expected_sessions)
    return int(len(expected) - expected.searchsorted(pd.Timestamp(last_bar), side="right"))


def staleness_findings(frame: pd.DataFrame, expected_sessions: pd.DatetimeIndex, as_of: dt.date,
                       warn_sessions: int = 1, error_sessions: int = 5) -> list[Finding]:
    """STALE when the last bar is ``warn_sessions`` or more expected sessions
    behind the window's last session (error from ``error_sessions``);
    FUTURE_DATED (error) for bars dated after the as-of date."""
    if frame.empty:
        return []
    dates = as_dates(frame["date"])
    out = []
    future = dates > pd.Timestamp(as_of)
    if future.any():
        out.append(Finding(F.FUTURE_DATED, F.ERROR, f"{int(future.sum())} bar(s) dated after as-of {as_of}",
                           int(future.sum()), sample_dates(dates[future])))
    last = dates[~future].max() if (~future).any() else None
    behind = stale_sessions(last, expected_sessions)
    if behind >= warn_sessions and behind > 0:
        severity = F.ERROR if behind >= error_sessions else F.WARNING
        last_text = "none" if last is None else str(last.date())
        out.append(Finding(F.STALE, severity,
                           f"last bar {last_text} is {behind} session(s) behind "
                           f"{pd.Timestamp(expected_sessions[-1]).date()} (as-of {as_of})", behind))
    return out

"""QA checks that do not enter the score but feed governance states and the
report: OHLC consistency, false ticks, nulls, zero volume, staleness.

Pure functions on one symbol's bars as numpy arrays, one bar per date and
sorted: :func:`data.quality.assess_quality` extracts them from the frame once
(see :class:`data.quality.components.BarArrays`) and calls each ``*_of``
check with the ones it needs.  Each returns the findings it made (an empty
list when the check passes).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from scipy import ndimage

from data.quality import findings as F
from data.quality.findings import Finding, sample_dates

# Scale that makes the MAD a consistent estimator of a normal sigma.
_MAD_TO_SIGMA = 1.4826
# Up to these many bars that may be false ticks, or windows their test
# needs, medians are computed window by window rather than over the series.
_FEW_BARS = 128
_FEW_WINDOWS = 288


def ohlc_findings_of(dates: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                     tolerance: float = 1e-6) -> list[Finding]:
    """``high < low`` or ``close`` outside ``[low, high]`` is OHLC_INCONSISTENT
    (critical); ``open`` outside the range is OPEN_OUTSIDE_RANGE (warning:
    some vendors take the open from another feed).  ``tolerance`` is relative,
    so float noise in a vendor's adjusted prices is not a defect.  Non-empty
    bars."""
    slack_h = tolerance * np.abs(h)
    slack_l = tolerance * np.abs(lo)
    low_limit = lo - slack_l
    high_limit = h + slack_h
    inverted = h < low_limit
    close_out = (c > high_limit) | (c < low_limit)
    bad = inverted | close_out
    out = []
    if bad.any():
        out.append(Finding(F.OHLC_INCONSISTENT, F.CRITICAL,
                           f"{int(bad.sum())} bar(s) with high < low or close outside [low, high] "
                           f"({int(inverted.sum())} inverted, {int(close_out.sum())} close out of range)",
                           int(bad.sum()), sample_dates(dates[bad])))
    open_out = ((o > high_limit) | (o < low_limit)) & ~inverted
    if open_out.any():
        out.append(Finding(F.OPEN_OUTSIDE_RANGE, F.WARNING,
                           f"{int(open_out.sum())} bar(s) with open outside [low, high]",
                           int(open_out.sum()), sample_dates(dates[open_out])))
    return out


def rolling_median_centered(values: np.ndarray, size: int, min_periods: int) -> np.ndarray:
    """``pd.Series(values).rolling(size, center=True, min_periods=min_periods)
    .median()``, value for value, without pandas.

    The window of bar *i* is ``values[i - before : i + after + 1]`` with
    ``after = (size - 1) // 2`` (pandas' centring, also for an even size),
    cut at both ends; NaN is skipped; fewer than ``min_periods`` values give
    NaN; an even count gives ``(lower + upper) / 2`` of the two middle values.
    Whole windows without NaN (nearly all of them) come from scipy's rank
    filter, which picks exact elements; the rest are sorted one by one.
    """
    if min_periods > size:
        raise ValueError(f"min_periods {min_periods} must be <= window {size}")
    n = len(values)
    after = (size - 1) // 2
    before = size - 1 - after
    nan = np.isnan(values)
    any_nan = bool(nan.any())
    if n > size - 1:
        # Any finite filler for NaN: windows that hold one are recomputed below.
        filled = np.where(nan, 0.0, values) if any_nan else values
        out = ndimage.rank_filter(filled, rank=size // 2, size=size, mode="nearest")
        if size % 2 == 0:
            lower = ndimage.rank_filter(filled, rank=size // 2 - 1, size=size, mode="nearest")
            out = (lower + out) / 2
        # Windows cut by either end, and (below) windows holding a NaN.
        rest = np.concatenate((np.arange(before), np.arange(n - after, n)))
        if any_nan:
            seen = np.concatenate(([0], np.cumsum(nan)))
            inner = np.arange(before, n - after)
            holds_nan = seen[inner + after + 1] != seen[inner - before]
            rest = np.concatenate((rest, inner[holds_nan]))
    else:
        out = np.empty(n)
        rest = np.arange(n)
    if len(rest):
        out[rest] = median_at(values, size, min_periods, rest)
    return out


def median_at(values: np.ndarray, size: int, min_periods: int, positions: np.ndarray) -> np.ndarray:
    """:func:`rolling_median_centered` at ``positions`` only: each window is
    gathered (NaN beyond either end), sorted and its middle read."""
    after = (size - 1) // 2
    before = size - 1 - after
    padded = np.concatenate((np.full(before, np.nan), values, np.full(after, np.nan)))
    windows = padded[positions[:, None] + np.arange(size)]
    windows.sort(axis=1)                                        # NaN sorts last
    count = size - np.isnan(windows).sum(axis=1)
    rows = np.arange(len(positions))
    middle = count // 2
    upper = windows[rows, np.minimum(middle, size - 1)]
    lower = windows[rows, np.maximum(middle - 1, 0)]
    median = np.where(count % 2 == 1, upper, (lower + upper) / 2)
    median[count < max(min_periods, 1)] = np.nan
    return median


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
    values = np.log(prices[idx])
    m = len(values)
    # Day-to-day changes: returns[i] = values[i] - values[i-1] (pandas' diff).
    returns = np.empty(m)
    returns[0] = np.nan
    np.subtract(values[1:], values[:-1], out=returns[1:])
    # The step from each neighbour; the end bars have one neighbour and use
    # its step for both sides.  Logs of usable prices are finite, so these
    # are the only steps that do not exist.
    to_prev = returns.copy()
    to_next = np.empty(m)
    np.subtract(values[:-1], values[1:], out=to_next[:-1])
    to_prev[0] = to_next[0]
    to_next[-1] = to_prev[-1]
    same_side = np.sign(to_prev) == np.sign(to_next)
    step = np.minimum(np.abs(to_prev), np.abs(to_next))
    floor = np.log1p(min_move)
    # A flagged bar deviates by more than `floor` and both its steps exceed
    # half its deviation, so both exceed floor / 2: only those bars can be
    # flagged, and usually there are none or a few.  The medians are then
    # needed at them (and the volatility at their neighbourhoods) only; the
    # same windows, the same values.
    maybe = np.flatnonzero(same_side & (step > floor / 2))
    if len(maybe) == 0:
        return out
    if len(maybe) <= _FEW_BARS:
        median = median_at(values, window, window // 2 + 1, maybe)
    else:
        median = rolling_median_centered(values, window, window // 2 + 1)[maybe]
    dev = np.abs(values[maybe] - median)
    keep = (dev > floor) & (step[maybe] > dev / 2)          # isolated, and far enough
    suspects, dev = maybe[keep], dev[keep]
    if len(suspects) == 0:
        return out
    # The volatility at a suspect is the median of the return spreads over
    # its scale window; each spread needs the returns' median at that bar.
    after = (scale_window - 1) // 2
    around = (suspects[:, None] + np.arange(after + 1 - scale_window, after + 1)).ravel()
    in_scale_window = np.zeros(m, dtype=bool)
    in_scale_window[around[(around >= 0) & (around < m)]] = True
    need = np.flatnonzero(in_scale_window)
    if len(need) <= _FEW_WINDOWS:
        spread = np.full(m, np.nan)     # read at `need` only
        spread[need] = np.abs(returns[need] - median_at(returns, scale_window, window, need))
    else:
        spread = np.abs(returns - rolling_median_centered(returns, scale_window, window))
    if len(suspects) <= _FEW_BARS:
        sigma = _MAD_TO_SIGMA * median_at(spread, scale_window, window, suspects)
    else:
        sigma = _MAD_TO_SIGMA * rolling_median_centered(spread, scale_window, window)[suspects]
    out[idx[suspects[dev > mad_z * sigma]]] = True      # NaN sigma: never flagged
    return out


def false_tick_findings_of(dates: np.ndarray, adj_close: np.ndarray, close: np.ndarray, window: int = 11,
                           mad_z: float = 8.0, min_move: float = 0.05, scale_window: int = 63) -> list[Finding]:
    """FALSE_TICK (warning) for isolated excursions (:func:`false_tick_mask`)
    of adj_close, or of close when no adj_close is there: adj_close is
    continuous across corporate actions."""
    if len(dates) < window:
        return []
    prices = adj_close if np.isfinite(adj_close).any() else close
    mask = false_tick_mask(prices, window, mad_z, min_move, scale_window)
    if not mask.any():
        return []
    return [Finding(F.FALSE_TICK, F.WARNING,
                    f"{int(mask.sum())} isolated bar(s) more than {min_move:.0%} and {mad_z:g} robust sigmas "
                    f"away from their {window}-bar rolling median", int(mask.sum()),
                    sample_dates(dates[mask]))]


def null_findings_of(dates: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                     adj: np.ndarray, volume: np.ndarray) -> list[Finding]:
    """ALL_NULL (critical) when no bar has a close or an adj_close;
    NULL_FIELDS (warning) for bars with some null price or volume.  Non-empty
    bars."""
    if np.isnan(c).all() and np.isnan(adj).all():
        return [Finding(F.ALL_NULL, F.CRITICAL, f"all {len(dates)} bar(s) have null prices", len(dates))]
    nulls = np.isnan(o)
    for values in (h, lo, c, adj, volume):
        nulls |= np.isnan(values)
    if not nulls.any():
        return []
    return [Finding(F.NULL_FIELDS, F.WARNING, f"{int(nulls.sum())} bar(s) with null price or volume fields",
                    int(nulls.sum()), sample_dates(dates[nulls]))]


def zero_volume_findings_of(dates: np.ndarray, volume: np.ndarray, asset_class: str,
                            warn_fraction: float = 0.05) -> list[Finding]:
    """ZERO_VOLUME: a warning for stocks and crypto when more than
    ``warn_fraction`` of the bars traded nothing; info otherwise (FX and many
    indices and some futures feeds carry no volume at all).  Non-empty bars."""
    zero = volume == 0
    if not zero.any():
        return []
    share = zero.sum() / len(dates)
    severity = F.WARNING if asset_class in ("stocks", "crypto") and share > warn_fraction else F.INFO
    return [Finding(F.ZERO_VOLUME, severity, f"{int(zero.sum())} zero-volume bar(s) ({share:.1%})",
                    int(zero.sum()), sample_dates(dates[zero]))]


def staleness_findings_of(dates: np.ndarray, expected: np.ndarray, as_of: dt.date,
                          warn_sessions: int = 1, error_sessions: int = 5) -> list[Finding]:
    """STALE when the last bar is ``warn_sessions`` or more expected sessions
    behind the window's last session (error from ``error_sessions``);
    FUTURE_DATED (error) for bars dated after the as-of date.  Non-empty
    bars; ``dates`` and ``expected`` datetime64[ns]."""
    out = []
    future = dates > pd.Timestamp(as_of).to_datetime64()
    if future.any():
        out.append(Finding(F.FUTURE_DATED, F.ERROR, f"{int(future.sum())} bar(s) dated after as-of {as_of}",
                           int(future.sum()), sample_dates(dates[future])))
    last = None
    if not future.all():
        present = dates[~future]
        present = present[~np.isnat(present)]       # a null date is no bar (pandas' max skips it)
        last = pd.Timestamp(present.max()) if len(present) else pd.NaT
    behind = 0
    if last is not None and len(expected):
        behind = int(len(expected) - np.searchsorted(expected, last.to_datetime64(), side="right"))
    if behind >= warn_sessions and behind > 0:
        severity = F.ERROR if behind >= error_sessions else F.WARNING
        last_text = "none" if last is None else str(last.date())
        out.append(Finding(F.STALE, severity,
                           f"last bar {last_text} is {behind} session(s) behind "
                           f"{pd.Timestamp(expected[-1]).date()} (as-of {as_of})", behind))
    return out

"""The four components of the runbook's quality score, and the score.

    score = 1 - (missing_dates_pct * 0.3 + duplicate_pct * 0.2
                 + zero_negative_flag * 0.2 + extreme_spike_flag * 0.3)

Every component is a fraction in [0, 1] (the two flags are 0 or 1), so the
score is in [0, 1].  The weights come from settings
(``quality.weights``); the defaults are the runbook's.  Pure functions:
frames in, numbers (and the dates behind them) out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
COMPONENTS = ("missing_dates_pct", "duplicate_pct", "zero_negative_flag", "extreme_spike_flag")
RUNBOOK_WEIGHTS = {"missing_dates_pct": 0.3, "duplicate_pct": 0.2,
                   "zero_negative_flag": 0.2, "extreme_spike_flag": 0.3}


def as_dates(values) -> pd.DatetimeIndex:
    """Session dates (tz-naive midnight) of any date-like input.  The fast
    path (already datetime64) skips pandas' parsing and frequency inference:
    governance runs this for thousands of symbols."""
    arr = np.asarray(values)
    if arr.dtype.kind != "M":
        index = pd.DatetimeIndex(pd.to_datetime(values))
        if index.tz is not None:
            index = index.tz_localize(None)
        arr = index.to_numpy()
    return pd.DatetimeIndex(arr.astype("datetime64[D]").astype("datetime64[ns]"))


def as_floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64 with NaN for nulls (text that is not a number too)."""
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype="float64", na_value=np.nan)


def covered_dates(frame: pd.DataFrame) -> pd.DatetimeIndex:
    """Dates that hold a usable bar: a row whose close is null does not
    cover its session (a bar without a close is not a bar)."""
    if frame.empty:
        return pd.DatetimeIndex([])
    has_close = ~np.isnan(as_floats(frame, "close"))
    return as_dates(frame["date"].to_numpy()[has_close]).unique()


def missing_sessions(frame: pd.DataFrame, expected_sessions: pd.DatetimeIndex,
                     allowed_missing: Iterable = ()) -> pd.DatetimeIndex:
    """Expected sessions with no usable bar, minus the allow-list (exchange
    closures the calendar does not know, and trading halts)."""
    expected = _expected(expected_sessions, allowed_missing)
    return expected.difference(covered_dates(frame))


def missing_dates_pct(frame: pd.DataFrame, expected_sessions: pd.DatetimeIndex,
                      allowed_missing: Iterable = ()) -> float:
    """missing / expected over the window (0.0 when nothing is expected)."""
    expected = _expected(expected_sessions, allowed_missing)
    if len(expected) == 0:
        return 0.0
    return len(expected.difference(covered_dates(frame))) / len(expected)


def _expected(expected_sessions: pd.DatetimeIndex, allowed_missing: Iterable) -> pd.DatetimeIndex:
    expected = as_dates(expected_sessions)
    allowed = list(allowed_missing)
    if allowed:
        expected = expected.difference(as_dates(allowed))
    return expected


def frame_duplicates(frame: pd.DataFrame) -> int:
    """Rows whose date repeats an earlier row (0 for a frame from the store)."""
    if frame.empty:
        return 0
    return int(as_dates(frame["date"]).duplicated().sum())


def duplicate_pct(unique_rows: int, duplicates: int) -> float:
    """Duplicated rows as a fraction of the rows the vendor sent
    (``unique_rows + duplicates``)."""
    total = unique_rows + duplicates
    return duplicates / total if total > 0 and duplicates > 0 else 0.0


def nonpositive_price_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows with any price <= 0 (nulls are not counted here)."""
    mask = np.zeros(len(frame), dtype=bool)
    for col in PRICE_COLUMNS:
        mask |= as_floats(frame, col) <= 0  # NaN compares False
    return mask


def negative_volume_mask(frame: pd.DataFrame) -> np.ndarray:
    return as_floats(frame, "volume") < 0


def zero_negative_flag(frame: pd.DataFrame) -> float:
    """1.0 when any price is <= 0 or any volume < 0, else 0.0."""
    if frame.empty:
        return 0.0
    return 1.0 if (nonpositive_price_mask(frame).any() or negative_volume_mask(frame).any()) else 0.0


@dataclass(frozen=True)
class MoveScan:
    """Large day-to-day moves of one symbol, split by what explains them."""

    spikes: pd.DatetimeIndex            # beyond the threshold, nothing explains them
    explained: pd.DatetimeIndex         # beyond the threshold, a split/dividend/adjustment explains them
    adj_discontinuities: pd.DatetimeIndex  # adj_close jumps while close does not


def move_size(ratio: np.ndarray) -> np.ndarray:
    """Size of a move as ``max(r, 1/r) - 1`` for the price ratio ``r``: an up
    move and the down move that undoes it have the same size, so a 2:1 split
    (r = 0.5) is a move of 1.0, well beyond the stocks threshold of 0.5."""
    return np.expm1(np.abs(np.log(ratio)))


def scan_moves(frame: pd.DataFrame, threshold: float,
               corporate_actions: pd.DataFrame | None = None) -> MoveScan:
    """Find close-to-close moves larger than ``threshold`` (see :func:`move_size`)
    and sort them into unexplained spikes and explained moves.

    A move into bar *t* is explained when
      * a split (stored, or the frame's ``split_ratio``) and/or a dividend
        dated after bar *t-1* and on or before bar *t* bring the corrected move
        ``(close_t * split + dividend) / close_{t-1}`` within the threshold, or
      * ``adj_close`` moves within the threshold: the adj_close/close ratio
        jumped, i.e. the vendor adjusted for an action we were not told about
        (a split, a large special dividend).
    Rows with a null or non-positive close are skipped (other checks report them).
    """
    empty = pd.DatetimeIndex([])
    if len(frame) < 2:
        return MoveScan(empty, empty, empty)
    bars = frame.assign(date=as_dates(frame["date"])).drop_duplicates("date", keep="last").sort_values("date")
    close = as_floats(bars, "close")
    valid = np.isfinite(close) & (close > 0)
    bars, close = bars.loc[valid], close[valid]
    if len(bars) < 2:
        return MoveScan(empty, empty, empty)
    dates = pd.DatetimeIndex(bars["date"])
    adj = as_floats(bars, "adj_close")
    adj = np.where(np.isfinite(adj) & (adj > 0), adj, np.nan)

    split, dividend = _actions_per_bar(bars, dates, corporate_actions)
    limit = np.log1p(threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        close_move = np.abs(np.log(close[1:] / close[:-1]))
        corrected = np.abs(np.log((close[1:] * split[1:] + dividend[1:]) / close[:-1]))
        adj_move = np.abs(np.log(adj[1:] / adj[:-1]))
    large = close_move > limit
    by_action = corrected <= limit
    by_adjustment = adj_move <= limit           # NaN (no adj_close) explains nothing
    spikes = large & ~by_action & ~by_adjustment
    explained = large & ~spikes
    adj_jump = (adj_move > limit) & ~large
    moved_into = dates[1:]
    return MoveScan(moved_into[spikes], moved_into[explained], moved_into[adj_jump])


def _actions_per_bar(bars: pd.DataFrame, dates: pd.DatetimeIndex,
                     corporate_actions: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Split factor (product of ratios) and cash dividend that apply to the
    move into each bar: actions dated after the previous bar and on or before
    this one (an ex-date on a non-session day lands on the next bar)."""
    n = len(dates)
    split = np.ones(n)
    dividend = np.zeros(n)
    events: list[tuple[pd.Timestamp, str, float]] = []
    if corporate_actions is not None and not corporate_actions.empty:
        for d, action, value in zip(as_dates(corporate_actions["date"]), corporate_actions["action"],
                                    pd.to_numeric(corporate_actions["value"], errors="coerce")):
            events.append((d, str(action), float(value)))
    for col, action, neutral in (("split_ratio", "split", 1.0), ("dividend", "dividend", 0.0)):
        if col in bars.columns:
            values = as_floats(bars, col)
            keep = np.isfinite(values) & (values != neutral) & (values != 0.0)
            events.extend((d, action, float(v)) for d, v in zip(dates[keep], values[keep]))
    seen: set[tuple[pd.Timestamp, str]] = set()
    for d, action, value in events:
        # The frame's own column and the stored action are the same event.
        if (d, action) in seen or not np.isfinite(value):
            continue
        seen.add((d, action))
        i = int(dates.searchsorted(d, side="left"))
        if i >= n:
            continue
        if action == "split" and value > 0:
            split[i] *= value
        elif action == "dividend":
            dividend[i] += value
    return split, dividend


def extreme_spike_flag(frame: pd.DataFrame, threshold: float,
                       corporate_actions: pd.DataFrame | None = None) -> float:
    """1.0 when any move beyond ``threshold`` is left unexplained, else 0.0."""
    return 1.0 if len(scan_moves(frame, threshold, corporate_actions).spikes) else 0.0


def quality_score(components: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """``1 - sum(weight * component)``, in the runbook's order of terms."""
    weights = RUNBOOK_WEIGHTS if weights is None else weights
    penalty = 0.0
    for name in COMPONENTS:
        penalty += float(components[name]) * float(weights[name])
    return 1.0 - penalty

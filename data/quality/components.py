"""What the four components of the runbook's quality score are made of.

    score = 1 - (missing_dates_pct * 0.3 + duplicate_pct * 0.2
                 + zero_negative_flag * 0.2 + extreme_spike_flag * 0.3)

Every component is a fraction in [0, 1] (the two flags are 0 or 1), so the
score is in [0, 1].  The formula and its weights are a governance rule
(:func:`data.governance.rules.quality_score`).

:func:`bar_arrays` turns a frame into numpy arrays once (one bar per date,
sorted); :func:`data.quality.assess_quality` computes the components from
those arrays with :func:`missing_session_dates` (missing_dates_pct),
:func:`duplicate_pct`, :func:`nonpositive_mask` (zero_negative_flag, with
volume < 0) and :func:`scan_move_dates` (extreme_spike_flag).  Pure
functions: arrays in, numbers (and the dates behind them) out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

_NS = np.dtype("datetime64[ns]")
_NAT = np.iinfo(np.int64).min    # NaT as int64


_DAY_NS = 86_400_000_000_000


def date_values(values) -> np.ndarray:
    """Session dates (tz-naive midnight) of any date-like input as a
    ``datetime64[ns]`` array.
    Store and provider frames already hold midnights in ns, so those pass
    through untouched (a view, never written to)."""
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype == _NS:
        # The backing array (Series.to_numpy costs 5x more), as a read-only
        # view: the caller's frame must never change through it.
        arr = np.asarray(values.array).view()
        arr.flags.writeable = False
    else:
        arr = np.asarray(values)
    if arr.dtype == _NS:
        ns = arr.view("i8")
        # NaT is not a multiple of a day, so it takes the casting path below.
        if not (ns % _DAY_NS).any():
            return arr
    elif arr.dtype.kind != "M":
        index = pd.DatetimeIndex(pd.to_datetime(values))
        if index.tz is not None:
            index = index.tz_localize(None)
        arr = index.to_numpy()
    return arr.astype("datetime64[D]").astype("datetime64[ns]")


def as_floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64 with NaN for nulls (text that is not a number too)."""
    series = frame[column]
    if series.dtype == np.float64:
        # Already float64 with NaN for nulls: no conversion, no copy (pandas
        # hands out a read-only view).
        return series.to_numpy()
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        # What Series.to_numpy delegates to, minus its overhead (Int64 volume).
        return series.array.to_numpy(dtype="float64", na_value=np.nan)
    return series.to_numpy(dtype="float64", na_value=np.nan)


# ------------------------------------------------------------------ one pass over the frame
@dataclass(frozen=True)
class BarArrays:
    """One symbol's bars as numpy arrays: one row per date, ascending (a
    null date last), the last row of a repeated date kept.  Built once by
    :func:`bar_arrays` so the components and checks never touch pandas
    again; prices and volume are float64 with NaN for nulls."""

    dates: np.ndarray                   # datetime64[ns] session dates
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray
    volume: np.ndarray
    split_ratio: np.ndarray | None = None   # the payload's own event columns, when present
    dividend: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.dates)


def unique_last_order(dates: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Row order of ``drop_duplicates("date", keep="last")`` followed by a
    stable sort by date (NaT last), and the number of rows dropped.  The
    order is None when the rows already are in it (the store's case:
    strictly ascending, no NaT)."""
    n = len(dates)
    ns = dates.view("i8")
    if n == 0 or (ns[0] != _NAT and (ns[1:] > ns[:-1]).all()):
        return None, 0
    order = np.argsort(dates, kind="stable")        # NaT sorts last; ties keep row order
    ranked = ns[order]                               # every NaT is one value here, as in pandas
    last_of_date = np.empty(n, dtype=bool)
    last_of_date[:-1] = ranked[1:] != ranked[:-1]
    last_of_date[-1] = True
    keep = order[last_of_date]
    return keep, n - len(keep)


def bar_arrays(frame: pd.DataFrame) -> tuple[BarArrays, int]:
    """The frame's bars as :class:`BarArrays` (duplicate dates collapsed,
    the last row kept, sorted by date) and the number of duplicate rows."""
    dates = date_values(frame["date"])
    order, duplicates = unique_last_order(dates)

    def column(name: str) -> np.ndarray:
        values = as_floats(frame, name)
        return values if order is None else values[order]

    present = frame.columns
    return BarArrays(
        dates=dates if order is None else dates[order],
        open=column("open"), high=column("high"), low=column("low"), close=column("close"),
        adj_close=column("adj_close"), volume=column("volume"),
        split_ratio=column("split_ratio") if "split_ratio" in present else None,
        dividend=column("dividend") if "dividend" in present else None,
    ), duplicates


def sorted_difference(values: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """Sorted unique ``values`` not in ``remove`` (``DatetimeIndex.difference``
    on datetime64 arrays).  Sessions and stored bars are strictly ascending,
    which a binary search handles without re-sorting either side."""
    if len(values) == 0 or len(remove) == 0:
        return np.unique(values) if len(values) else values[:0]
    if strictly_ascending(values) and strictly_ascending(remove):
        pos = np.searchsorted(remove, values)
        found = remove[np.minimum(pos, len(remove) - 1)] == values
        return values[~found]
    return np.setdiff1d(values, remove)


def strictly_ascending(values: np.ndarray) -> bool:
    """Dates (datetime64[ns]) strictly ascending, without NaT."""
    ns = values.view("i8")
    return bool(ns[0] != _NAT and (ns[1:] > ns[:-1]).all())


# ------------------------------------------------------------------ missing sessions
def expected_after_allowed(expected: np.ndarray, allowed_missing: Iterable) -> np.ndarray:
    """Expected session dates (datetime64[ns]) minus the allow-list; left as
    given when the allow-list is empty."""
    allowed = list(allowed_missing)
    if allowed:
        return sorted_difference(expected, date_values(allowed))
    return expected


def missing_session_dates(expected: np.ndarray, dates: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Expected sessions with no usable bar: ``expected`` (the allow-list of
    exchange closures the calendar does not know and trading halts already
    removed, see :func:`expected_after_allowed`) minus the dates whose close
    is not null (a bar without a close does not cover its session)."""
    return sorted_difference(expected, dates[~np.isnan(close)])


# ------------------------------------------------------------------ duplicates, zero/negative
def duplicate_pct(unique_rows: int, duplicates: int) -> float:
    """Duplicated rows as a fraction of the rows the vendor sent
    (``unique_rows + duplicates``)."""
    total = unique_rows + duplicates
    return duplicates / total if total > 0 and duplicates > 0 else 0.0


def nonpositive_mask(*prices: np.ndarray) -> np.ndarray:
    """Bars with any of ``prices`` <= 0 (nulls are not counted here)."""
    mask = np.zeros(len(prices[0]), dtype=bool)
    for values in prices:
        mask |= values <= 0  # NaN compares False
    return mask


# ------------------------------------------------------------------ large moves
@dataclass(frozen=True)
class MoveDates:
    """Large day-to-day moves of one symbol, split by what explains them: the
    dates (datetime64[ns]) of the bars moved into."""

    spikes: np.ndarray                  # beyond the threshold, nothing explains them
    explained: np.ndarray               # beyond the threshold, a split/dividend/adjustment explains them
    adj_discontinuities: np.ndarray     # adj_close jumps while close does not


def scan_move_dates(dates: np.ndarray, close: np.ndarray, adj_close: np.ndarray, threshold: float,
                    corporate_actions: pd.DataFrame | None = None, split_ratio: np.ndarray | None = None,
                    dividend: np.ndarray | None = None) -> MoveDates:
    """Find close-to-close moves larger than ``threshold`` in bars already one
    per date and sorted (:func:`bar_arrays`) and sort them into unexplained
    spikes and explained moves.

    The size of a move is ``max(r, 1/r) - 1`` for the price ratio ``r``: an
    up move and the down move that undoes it have the same size, so a 2:1
    split (r = 0.5) is a move of 1.0, well beyond the stocks threshold of 0.5.

    A move into bar *t* is explained when
      * a split (stored, or the frame's ``split_ratio``) and/or a dividend
        dated after bar *t-1* and on or before bar *t* bring the corrected move
        ``(close_t * split + dividend) / close_{t-1}`` within the threshold, or
      * ``adj_close`` moves within the threshold: the adj_close/close ratio
        jumped, i.e. the vendor adjusted for an action we were not told about
        (a split, a large special dividend).
    Bars with a null or non-positive close are skipped (other checks report them).
    """
    empty = dates[:0]
    valid = np.isfinite(close) & (close > 0)
    if valid.sum() < 2:
        return MoveDates(empty, empty, empty)
    if not valid.all():
        dates, close, adj_close = dates[valid], close[valid], adj_close[valid]
        split_ratio = None if split_ratio is None else split_ratio[valid]
        dividend = None if dividend is None else dividend[valid]
    adj = np.where(np.isfinite(adj_close) & (adj_close > 0), adj_close, np.nan)

    split, cash = actions_per_bar(dates, corporate_actions, split_ratio, dividend)
    limit = np.log1p(threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        close_move = np.abs(np.log(close[1:] / close[:-1]))
        if split is None:
            # No action touches any bar: close * 1.0 + 0.0 is close, bit for bit.
            corrected = close_move
        else:
            corrected = np.abs(np.log((close[1:] * split[1:] + cash[1:]) / close[:-1]))
        adj_move = np.abs(np.log(adj[1:] / adj[:-1]))
    large = close_move > limit
    by_action = corrected <= limit
    by_adjustment = adj_move <= limit           # NaN (no adj_close) explains nothing
    spikes = large & ~by_action & ~by_adjustment
    explained = large & ~spikes
    adj_jump = (adj_move > limit) & ~large
    moved_into = dates[1:]
    return MoveDates(moved_into[spikes], moved_into[explained], moved_into[adj_jump])


_SPLIT, _DIVIDEND, _OTHER = 0, 1, 2
_ACTION_KIND = {"split": _SPLIT, "dividend": _DIVIDEND}


def actions_per_bar(dates: np.ndarray, corporate_actions: pd.DataFrame | None,
                    split_ratio: np.ndarray | None = None,
                    dividend: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Split factor (product of ratios) and cash dividend that apply to the
    move into each bar: actions dated after the previous bar and on or before
    this one (an ex-date on a non-session day lands on the next bar).

    Events are the stored ``corporate_actions`` (in their order) then the
    frame's own ``split_ratio`` and ``dividend`` columns; an event repeating
    the (date, action) of an earlier one is the same event and counts once;
    a null value is no event.  ``(None, None)`` when no event touches a bar.
    """
    days: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    values: list[np.ndarray] = []
    if corporate_actions is not None and not corporate_actions.empty:
        raw = corporate_actions["value"]
        if raw.dtype == np.float64:
            amounts = raw.to_numpy()
        else:
            # The same coercions as one float(...) per event: text that is not
            # a number is NaN (no event); a value float() cannot take raises.
            amounts = np.array([float(v) for v in pd.to_numeric(raw, errors="coerce")], dtype="float64")
        names = corporate_actions["action"].to_numpy(dtype=object)
        days.append(date_values(corporate_actions["date"]))
        kinds.append(np.array([_ACTION_KIND.get(str(a), _OTHER) for a in names], dtype=np.int64))
        values.append(amounts)
    for column, kind, neutral in ((split_ratio, _SPLIT, 1.0), (dividend, _DIVIDEND, 0.0)):
        if column is not None:
            keep = np.isfinite(column) & (column != neutral) & (column != 0.0)
            if keep.any():
                days.append(dates[keep])
                kinds.append(np.full(int(keep.sum()), kind, dtype=np.int64))
                values.append(column[keep])
    if not days:
        return None, None
    day = np.concatenate(days).view("i8") if len(days) > 1 else days[0].view("i8")
    kind = np.concatenate(kinds) if len(kinds) > 1 else kinds[0]
    value = np.concatenate(values) if len(values) > 1 else values[0]
    # A null value is skipped before the repeat check: it does not claim its
    # (date, action) for a later event.
    finite = np.isfinite(value)
    if not finite.all():
        day, kind, value = day[finite], kind[finite], value[finite]
    if len(day) > 1:
        # Keep the first event of each (date, action), in event order; NaT
        # dates share one key, as pandas' NaT does.
        order = np.lexsort((kind, day))           # stable: equal keys keep event order
        day_sorted, kind_sorted = day[order], kind[order]
        repeat = (day_sorted[1:] == day_sorted[:-1]) & (kind_sorted[1:] == kind_sorted[:-1])
        if repeat.any():
            first = np.sort(order[np.concatenate(([True], ~repeat))])
            day, kind, value = day[first], kind[first], value[first]
    is_split = kind == _SPLIT
    applies = (is_split & (value > 0)) | (kind == _DIVIDEND)
    bar = np.searchsorted(dates, day.view("datetime64[ns]"), side="left")
    applies &= bar < len(dates)
    if not applies.any():
        return None, None
    split = np.ones(len(dates))
    cash = np.zeros(len(dates))
    # ufunc.at applies repeated indices one after another in the given
    # (event) order: the same products and sums as one event at a time.
    splits = applies & is_split
    np.multiply.at(split, bar[splits], value[splits])
    dividends = applies & ~is_split
    np.add.at(cash, bar[dividends], value[dividends])
    return split, cash

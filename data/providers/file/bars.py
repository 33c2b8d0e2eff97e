"""Parsed columns of one file, and the contract frame made from them.

:class:`ParsedBars` is what the CSV and Parquet parsers hand over (dates as
int64 ns, float64 columns, in file order).  :func:`contract_frame` sorts,
adjusts (:func:`compute_adjustment_factors` when the file has dividends or
splits but no adjusted column) and cuts the request's window.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data.providers.base import (ADJ_COMPUTED, ADJ_UNADJUSTED, ADJ_VENDOR, BAR_COLUMNS, FetchRequest,
                                 MalformedDataError, NoDataError)
from data.providers.file.columns import NUMERIC_COLUMNS


@dataclass
class ParsedBars:
    """One file's bars in file order: dates (int64 ns) and float64 columns."""

    source: Path
    dates: np.ndarray                       # int64 nanoseconds since epoch, session dates
    values: dict[str, np.ndarray]           # canonical numeric column -> float64
    table: pa.Table                          # the used columns under their file names (raw payload)
    tickers: np.ndarray | None = None        # upper-cased ticker per row (long files)


# The store keeps volumes as SQLite INTEGER, a signed 64-bit number.
VOLUME_LIMIT = 2.0 ** 63


def volume_problem(volume: np.ndarray) -> tuple[int, str] | None:
    """The first row (file order) whose volume the store cannot hold, and
    why: infinite or not below 2**63 in magnitude (SQLite INTEGER), or
    fractional (the store keeps whole units; rounding would change the
    data without a trace).  A missing (NaN) volume is fine: stored as NULL
    for quality to report.  None when every volume can be stored."""
    finite = np.isfinite(volume)
    whole = np.where(finite, volume, 0.0)
    bad = np.isinf(volume) | (np.abs(whole) >= VOLUME_LIMIT) | (whole != np.round(whole))
    if not bad.any():
        return None
    row = int(np.argmax(bad))
    if np.isinf(volume[row]) or abs(volume[row]) >= VOLUME_LIMIT:
        return row, "cannot be stored (not a finite number below 2**63)"
    return row, "is not a whole number (the store keeps whole units; volumes are never rounded)"


def bars_from_table(table: pa.Table, dates: np.ndarray, mapping: Mapping[str, str], path: Path) -> ParsedBars:
    values = {canon: table.column(mapping[canon]).to_numpy() for canon in NUMERIC_COLUMNS if canon in mapping}
    tickers = None
    if "ticker" in mapping:
        col = table.column(mapping["ticker"])
        tickers = pc.utf8_upper(pc.utf8_trim_whitespace(col.cast(pa.string()))).to_numpy(zero_copy_only=False)
    return ParsedBars(source=path, dates=dates, values=values, table=table, tickers=tickers)


# --------------------------------------------------------------------------
# long files: rows per symbol
# --------------------------------------------------------------------------
def group_rows(tickers: np.ndarray) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """A row order that makes each ticker's rows contiguous (file order kept
    within a ticker), and each ticker's [start, stop) in that order.  Rows
    without a ticker are left out."""
    codes, uniques = pd.factorize(tickers, use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    bounds = np.r_[0, np.cumsum(np.bincount(codes[codes >= 0], minlength=len(uniques)))]
    groups = {str(u): (int(bounds[i]), int(bounds[i + 1])) for i, u in enumerate(uniques) if u}
    return order, groups


def rows_of_symbol_if_mixed(bars: ParsedBars, symbol: str, notes: list[str]) -> ParsedBars:
    """A file named after the symbol that also has a ticker column: with one
    ticker value (Stooq's ``AAPL.US``) every row is the symbol's; with several
    it is a long file and only the symbol's rows are served."""
    distinct = {t for t in bars.tickers if t}
    if len(distinct) <= 1:
        return bars
    key = symbol.strip().upper()
    rows = np.flatnonzero(bars.tickers == key)
    notes.append(f"{bars.source.name} holds {len(distinct)} tickers; served the {len(rows)} row(s) of {key}")
    if len(rows) == 0:
        raise NoDataError(f"{bars.source} is named after {symbol} but holds no rows for it "
                          f"(tickers: {', '.join(sorted(distinct)[:5])})")
    return ParsedBars(source=bars.source, dates=bars.dates[rows], values={k: v[rows] for k, v in bars.values.items()},
                       table=bars.table.take(pa.array(rows)))


# --------------------------------------------------------------------------
# the contract frame: sort, adjust, window
# --------------------------------------------------------------------------
def compute_adjustment_factors(dates: np.ndarray, close: np.ndarray, dividend: np.ndarray | None,
                               split_ratio: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """Multiplicative back-adjustment factors, Yahoo/CRSP style.

    ``dates`` ascending (duplicates allowed), ``close`` the as-traded close.
    For each ex-date ``t`` with dividend ``D`` and split ratio ``r`` (new
    shares per old share; neutral ``D = 0``, ``r = 1``)::

        f_t = (1 - D / close_{t-1}) / r

    where ``close_{t-1}`` is the last valid close on a date before ``t``.
    A row dated ``d`` gets ``factor_d = product of f_t over all t > d``, and
    ``adj_close = close * factor``: rows on or after the last event are
    unchanged.  Duplicate rows of one date count that date's event once.  A
    dividend with no earlier close, or one at least as large as that close,
    cannot be applied and is skipped with a note.
    """
    n = len(dates)
    notes: list[str] = []
    if n == 0:
        return np.ones(0), notes
    uniq, first = np.unique(dates, return_index=True)
    last = np.r_[first[1:], n] - 1
    k = len(uniq)
    div = np.zeros(k) if dividend is None else np.nan_to_num(dividend[last], nan=0.0)
    ratio = np.ones(k) if split_ratio is None else split_ratio[last].copy()
    ratio[~np.isfinite(ratio) | (ratio <= 0)] = 1.0
    # The previous valid close per date: forward-fill the last close of each date.
    day_close = close[last].astype(float)
    valid = np.isfinite(day_close) & (day_close > 0)
    filled_idx = np.maximum.accumulate(np.where(valid, np.arange(k), -1))
    prev_idx = np.r_[-1, filled_idx[:-1]]
    prev_close = np.where(prev_idx >= 0, day_close[np.maximum(prev_idx, 0)], np.nan)
    div_factor = np.ones(k)
    has_div = div != 0
    usable = has_div & np.isfinite(prev_close) & (div < prev_close)
    div_factor[usable] = 1.0 - div[usable] / prev_close[usable]
    for i in np.flatnonzero(has_div & ~usable):
        notes.append(f"dividend {div[i]} on {np.datetime64(int(uniq[i]), 'ns').astype('datetime64[D]')} "
                     f"not applied: no usable earlier close")
    event = div_factor / ratio
    # factor for date j = product of event over dates after j.
    after = np.r_[np.cumprod(event[::-1])[::-1][1:], 1.0]
    return after[np.searchsorted(uniq, dates)], notes


def contract_frame(bars: ParsedBars, request: FetchRequest) -> tuple[pd.DataFrame, str, list[str]]:
    """The contract frame of ``bars`` within the request's window, its
    adjustment and the adjustment's notes.  A volume the store cannot hold
    (see :func:`volume_problem`) is MalformedDataError, never cast."""
    dates = bars.dates
    values = bars.values
    if len(dates) > 1 and not (dates[1:] >= dates[:-1]).all():
        if (dates[1:] <= dates[:-1]).all():
            order = np.arange(len(dates) - 1, -1, -1)   # descending vendor order: reverse, keeps duplicates
        else:
            order = np.argsort(dates, kind="stable")
        dates = dates[order]
        values = {k: v[order] for k, v in values.items()}
    notes: list[str] = []
    dividend = values.get("dividend")
    split = values.get("split_ratio")
    if dividend is not None:
        dividend = np.where(np.isnan(dividend), 0.0, dividend)
    if split is not None:
        # Yahoo's "Stock Splits" writes 0 for "no split"; the contract's neutral is 1.
        split = np.where(np.isnan(split) | (split == 0), 1.0, split)
    close = values["close"]
    adj = values.get("adj_close")
    if adj is not None and np.isnan(adj).all() and not np.isnan(close).all():
        notes.append("adjusted column is empty; ignored")
        adj = None
    if adj is not None:
        adjustment = ADJ_VENDOR
    elif dividend is not None or split is not None:
        factors, adj_notes = compute_adjustment_factors(dates, close, dividend, split)
        notes.extend(adj_notes)
        adj = close * factors
        adjustment = ADJ_COMPUTED
    else:
        adj = close
        adjustment = ADJ_UNADJUSTED

    lo = np.int64(_day_ns(request.start))
    hi = np.int64(_day_ns(request.end))
    i0, i1 = np.searchsorted(dates, lo, "left"), np.searchsorted(dates, hi, "right")
    if i0 >= i1:
        raise NoDataError(f"{bars.source} holds no bars for {request.symbol} in {request.start}..{request.end}"
                          + (f" (file spans {_ns_day(dates[0])}..{_ns_day(dates[-1])})" if len(dates) else ""))
    window = slice(i0, i1)
    volume = values["volume"][window]
    problem = volume_problem(volume)
    if problem:
        # The per-symbol parsers reject these naming the line; long files
        # are judged here, per symbol; and this is the last door before the
        # cast, which would turn 1e20 into -9223372036854775808.
        row, why = problem
        raise MalformedDataError(f"{bars.source}: {request.symbol} on {_ns_day(dates[i0 + row])}: "
                                 f"volume {float(volume[row])!r} {why}")
    vol_mask = np.isnan(volume)
    # Volumes are integers in the store (whole, checked above); a missing
    # one stays missing (NULL).
    vol_int = np.where(vol_mask, 0.0, np.round(volume)).astype(np.int64)
    arrays = [dates[window].view("datetime64[ns]"), values["open"][window], values["high"][window],
              values["low"][window], close[window], np.asarray(adj, dtype=np.float64)[window],
              pd.arrays.IntegerArray(vol_int, vol_mask)]
    names = _FRAME_COLUMNS[(dividend is not None, split is not None)]
    if dividend is not None:
        arrays.append(dividend[window])
    if split is not None:
        arrays.append(split[window])
    frame = _frame_from_arrays(arrays, names)
    return frame, adjustment, notes


_FRAME_COLUMNS = {
    (has_div, has_split): pd.Index([*BAR_COLUMNS, *(["dividend"] if has_div else []),
                                    *(["split_ratio"] if has_split else [])])
    for has_div in (False, True) for has_split in (False, True)
}


def _frame_from_arrays(arrays: list, columns: pd.Index) -> pd.DataFrame:
    """A DataFrame over ready-typed column arrays, without pandas re-checking
    them: the public constructor costs ~100 us per frame, a tenth of the
    per-file budget.  The arrays are exactly what the dict constructor
    would store (tests compare the result with ``normalise_bars``)."""
    try:
        return pd.DataFrame._from_arrays(arrays, columns=columns, index=pd.RangeIndex(len(arrays[0])),
                                         verify_integrity=False)
    except (AttributeError, TypeError):  # a pandas without the private constructor
        return pd.DataFrame(dict(zip(columns, arrays)), copy=False)


def _day_ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400_000_000_000


def _ns_day(ns: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(ns // 86_400_000_000_000))

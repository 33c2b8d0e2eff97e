"""Defects the synthetic provider injects, to give governance something to catch.

Defects
-------
``SyntheticDataProvider(defects={"AAPL": ["missing_sessions=30"]})`` or, when
``defects`` is None, the environment variable ``SYNTHETIC_DEFECTS`` with the
grammar ``SYMBOL:defect[=arg][,defect[=arg]...][;SYMBOL:...]`` (see
:data:`DEFECTS` and :func:`parse_defect_spec`).  Defects apply only to the
symbols named, at deterministic positions inside the requested window:

* rows: ``short_history=N`` keeps the last N sessions of the window,
  ``stale=N`` then drops the last N, ``missing_sessions=N`` then drops N
  sessions spread evenly (never a row carrying another defect or an injected
  event), ``duplicate_rows=N`` finally repeats N rows (each right after its
  original, as a vendor re-sending rows would; they are kept in the frame).
* values, at fixed fractions of the returned rows: ``spike`` (close and
  adj_close x3 for one session at 50%, high raised to match, back the next
  day), ``zero_price`` (close, low and adj_close 0 at 60%),
  ``negative_price`` (close, low and adj_close negative at 70%),
  ``ohlc_inversion`` (high < low on 3 rows), ``null_values`` (close and
  adj_close NaN on 3 rows).  On tiny windows positions may coincide.
* explained events, not defects: ``split=R`` (a split of ratio R at 40%),
  ``special_dividend=F`` (a cash dividend of F x the previous close at 30%);
  both keep adj_close continuous, so they test that events are not spikes.
* whole request: ``no_data`` raises NoDataError, ``unavailable`` raises
  ProviderUnavailable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

ENV_VAR = "SYNTHETIC_DEFECTS"

# Defect name -> kind of argument: None (no argument), "count" (int >= 1),
# "ratio" (float > 0, != 1), "fraction" (0 < float < 1).
DEFECTS: dict[str, str | None] = {
    "missing_sessions": "count",
    "duplicate_rows": "count",
    "zero_price": None,
    "negative_price": None,
    "spike": None,
    "ohlc_inversion": None,
    "short_history": "count",
    "stale": "count",
    "null_values": None,
    "split": "ratio",
    "special_dividend": "fraction",
    "no_data": None,
    "unavailable": None,
}

# Fractions of the returned rows where value defects and injected events sit;
# distinct so that several defects on one symbol do not overwrite each other.
_SPIKE_AT = 0.5
_ZERO_AT = 0.6
_NEGATIVE_AT = 0.7
_INVERSION_AT = (0.25, 0.45, 0.85)
_NULL_AT = (0.15, 0.55, 0.8)
SPLIT_AT = 0.4
SPECIAL_DIVIDEND_AT = 0.3


def parse_defect_spec(text: str) -> dict[str, list[str]]:
    """Parse ``SYMBOL:defect[=arg][,defect[=arg]...][;SYMBOL:...]``.

    Returns {SYMBOL: [defect, ...]} with symbols upper-cased and each entry
    as written (``"missing_sessions=30"``).  Blank text gives {}.  Raises
    ValueError with a one-line message naming the offending part.
    """
    out: dict[str, list[str]] = {}
    for section in (text or "").split(";"):
        section = section.strip()
        if not section:
            continue
        symbol, sep, items = section.partition(":")
        symbol = symbol.strip().upper()
        if not sep or not symbol:
            raise ValueError(f"{ENV_VAR}: {section!r} is not SYMBOL:defect[=arg][,defect...]")
        entries = [item.strip() for item in items.split(",")]
        if not any(entries):
            raise ValueError(f"{ENV_VAR}: no defect given for {symbol}")
        for entry in entries:
            if not entry:
                raise ValueError(f"{ENV_VAR}: empty defect in {section!r}")
            _parse_defect(entry, symbol)
            out.setdefault(symbol, []).append(entry)
    return out


def _parse_defect(entry: str, symbol: str) -> tuple[str, float | int | None]:
    name, sep, arg = entry.partition("=")
    name, arg = name.strip().lower(), arg.strip()
    if name not in DEFECTS:
        raise ValueError(f"{ENV_VAR}: unknown defect {name!r} for {symbol}; known: {', '.join(DEFECTS)}")
    kind = DEFECTS[name]
    if kind is None:
        if sep:
            raise ValueError(f"{ENV_VAR}: defect {name!r} for {symbol} takes no argument, got {entry!r}")
        return name, None
    if not sep or not arg:
        raise ValueError(f"{ENV_VAR}: defect {name!r} for {symbol} needs an argument ({name}=<{kind}>)")
    try:
        value = int(arg) if kind == "count" else float(arg)
    except ValueError as exc:
        raise ValueError(f"{ENV_VAR}: defect {name!r} for {symbol}: {arg!r} is not a valid {kind}") from exc
    valid = {"count": lambda v: v >= 1,
             "ratio": lambda v: math.isfinite(v) and v > 0 and v != 1,
             "fraction": lambda v: 0 < v < 1}[kind]
    if not valid(value):
        rule = {"count": "an integer >= 1", "ratio": "a number > 0 other than 1",
                "fraction": "a number strictly between 0 and 1"}[kind]
        raise ValueError(f"{ENV_VAR}: defect {name!r} for {symbol}: {arg!r} must be {rule}")
    return name, value


@dataclass(frozen=True)
class DefectPlan:
    """The parsed defects of one symbol."""

    flags: frozenset[str] = frozenset()
    args: Mapping[str, float] = field(default_factory=dict)
    text: tuple[str, ...] = ()

    @classmethod
    def from_entries(cls, symbol: str, entries: Sequence[str]) -> "DefectPlan":
        flags, args = set(), {}
        for entry in entries:
            name, value = _parse_defect(entry, symbol)
            flags.add(name)
            if value is not None:
                args[name] = value
        return cls(frozenset(flags), args, tuple(entries))

    def count(self, name: str) -> int:
        return int(self.args.get(name, 0)) if name in self.flags else 0


def at_fraction(fraction: float, m: int) -> int:
    return min(m - 1, int(fraction * m))


def apply_value_defects(cols: dict[str, np.ndarray], plan: DefectPlan) -> set[int]:
    """Distort prices in place; return the rows carrying a defect."""
    m = len(cols["close"])
    marked: set[int] = set()
    close, adj, factor = cols["close"], cols["adj_close"], cols["factor"]
    if "spike" in plan.flags:
        p = at_fraction(_SPIKE_AT, m)
        close[p] *= 3.0
        adj[p] = np.rint(close[p] * factor[p])
        cols["high"][p] = max(cols["high"][p], close[p])
        marked.add(p)
    if "zero_price" in plan.flags:
        p = at_fraction(_ZERO_AT, m)
        close[p] = cols["low"][p] = adj[p] = 0.0
        marked.add(p)
    if "negative_price" in plan.flags:
        p = at_fraction(_NEGATIVE_AT, m)
        close[p] = -close[p]
        cols["low"][p] = close[p]
        adj[p] = np.rint(close[p] * factor[p])
        marked.add(p)
    if "ohlc_inversion" in plan.flags:
        for p in {at_fraction(f, m) for f in _INVERSION_AT}:
            high, low = cols["high"][p], cols["low"][p]
            cols["high"][p], cols["low"][p] = low, (high + 1.0 if high == low else high)
            marked.add(p)
    if "null_values" in plan.flags:
        for p in {at_fraction(f, m) for f in _NULL_AT}:
            close[p] = adj[p] = np.nan
            marked.add(p)
    return marked


def _spread(candidates: np.ndarray, count: int) -> np.ndarray:
    """``count`` positions spread evenly over ``candidates`` (repeats once
    ``count`` exceeds them)."""
    if count <= 0 or len(candidates) == 0:
        return np.empty(0, dtype=np.int64)
    k = np.arange(count)
    return candidates[((k + 0.5) * len(candidates) / count).astype(np.int64) % len(candidates)]


def row_order(m: int, plan: DefectPlan, protected: set[int]) -> np.ndarray:
    """Indices of the rows to return, after missing_sessions and duplicate_rows."""
    rows = np.arange(m)
    missing = plan.count("missing_sessions")
    if missing:
        free = np.setdiff1d(rows, np.fromiter(protected, dtype=np.int64, count=len(protected)))
        drop = _spread(free, min(missing, len(free)))
        rows = np.setdiff1d(rows, drop)
    duplicates = plan.count("duplicate_rows")
    if duplicates and len(rows):
        repeat = np.ones(len(rows), dtype=np.int64)
        np.add.at(repeat, _spread(np.arange(len(rows)), duplicates), 1)
        rows = np.repeat(rows, repeat)
    return rows

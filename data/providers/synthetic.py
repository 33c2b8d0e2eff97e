"""A deterministic synthetic market, labelled ``synthetic``.

Used for offline runs and to give governance real defects to catch.  Every
bar is a pure function of (seed, symbol, calendar, session): whatever window
is asked for, the bar for a given session is the same, byte for byte.

The model
---------
Each (symbol, calendar) has its own random stream, seeded from SHA-256 of
the symbol and calendar name plus the constructor ``seed`` (never Python's
``hash()``, which is salted per process).  The stream is consumed in fixed
blocks of ``BLOCK`` sessions counted from ``EPOCH`` (the synthetic market
opens on the calendar's first session on or after 2000-01-03; there are no
bars before it).  A request ending at session ``t`` generates the blocks up
to ``t`` and slices, so a deep window and a later one-session incremental
window see the same draws.  Everything transcendental (``exp``) is computed
per block, in calls of identical shape whatever the request, and the window
arithmetic is only IEEE-exact ``* / min max rint``; so results do not depend
on array length or SIMD alignment.

* The log total-return level is ``log(p0) + mu*t + x_t`` where ``x`` is a
  random walk with a weak pull to zero (AR(1) with a time constant of
  300-1000 sessions): daily returns have the asset class's volatility
  (stocks 1.3-2.2%, fx 0.4-0.7%, crypto 3-4.5%, commodities 1.2-2%), while
  25 years never wander to implausible levels.
* Open gaps from the previous close, high/low extend beyond open and close;
  all prices are rounded to the class's tick (``price_scale``) and at least
  one tick, so ``high >= max(open, close) >= min(open, close) >= low > 0``.
* Volume is a positive integer for every class, fx included (Yahoo reports
  0 for fx; here a zero volume only ever comes from a defect).  Volume
  scales with the split ratio after a split, as share counts do.
* Stocks: about two thirds pay a quarterly cash dividend (every 63
  sessions, 0.5-4% a year); rare splits (2:1 or 3:1) are considered now
  and then and happen only when the price is high (>= max(150, 3 x the
  starting price)).  Other classes have no
  corporate actions unless injected.

Forward-adjusted total return
-----------------------------
``adj_close_t = close_t * F_t`` where ``F_t`` is the product of the factors
of all events with ex-date ``<= t``, starting from 1 at the epoch: a split of
ratio ``r`` multiplies ``F`` by ``r``; a cash dividend ``D`` with ex-date
``t`` multiplies it by ``close_{t-1} / (close_{t-1} - D)``.  Because the
factor only ever applies *forward*, a new event never changes any earlier
``adj_close``: an incremental run appends bars and never rewrites history
(a backward-adjusted series, as most vendors publish, rescales the whole past
on every split or dividend).  ``adj_close`` is continuous through events;
``close`` drops by the split ratio or by about the dividend on the ex-date.
``split_ratio`` is the ratio on its ex-date and 1.0 otherwise; ``dividend``
the cash amount on its ex-date and 0.0 otherwise.

The payload
-----------
The raw payload is JSON shaped like a small columnar vendor answer: prices as
integer ticks (``price * price_scale``, the way exchange feeds carry them;
exact, and several times cheaper to encode than floats), ``null`` for a
missing value, dates as ISO strings, and the corporate actions as events.
:func:`frame_from_payload` turns it back into the exact frame returned.

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

import datetime as dt
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from core.calendar import expected_sessions
from data.providers.base import (ADJ_VENDOR, FetchRequest, FetchResult, NoDataError, ProviderUnavailable,
                                 SingleSymbolProvider)
from core.symbols import ASSET_CLASSES, classify_symbol

NAME = "synthetic"
ENV_VAR = "SYNTHETIC_DEFECTS"
EPOCH = dt.date(2000, 1, 3)
MODEL_VERSION = 1

BLOCK = 252                 # sessions per block of random draws
DIVIDEND_PERIOD = 63        # sessions between quarterly ex-dates
_FAR_FUTURE = dt.date(2200, 1, 1)

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
_SPLIT_AT = 0.4
_SPECIAL_DIVIDEND_AT = 0.3


@dataclass(frozen=True)
class _ClassProfile:
    """How one asset class behaves (ranges are per-symbol draws)."""

    vol: tuple[float, float]            # daily volatility of log returns
    level: tuple[float, float]          # starting price, drawn log-uniformly
    drift: tuple[float, float]          # annual total-return drift
    volume: tuple[float, float]         # typical daily volume, log-uniform
    gap: float                          # open gap, in units of vol
    tau: float                          # AR(1) time constant of the log-level, sessions
    dividend_payers: float = 0.0        # share of symbols paying dividends
    dividend_yield: tuple[float, float] = (0.0, 0.0)
    split_candidate: float = 0.0        # chance per block that a split is considered


_PROFILES: dict[str, _ClassProfile] = {
    "stocks": _ClassProfile(vol=(0.013, 0.022), level=(8.0, 300.0), drift=(0.03, 0.09),
                            volume=(2e5, 3e7), gap=0.3, tau=1000.0, dividend_payers=0.65,
                            dividend_yield=(0.005, 0.04), split_candidate=0.15),
    "fx": _ClassProfile(vol=(0.004, 0.007), level=(0.5, 150.0), drift=(0.0, 0.0),
                        volume=(2e3, 8e4), gap=0.1, tau=1000.0),
    "crypto": _ClassProfile(vol=(0.03, 0.045), level=(10.0, 30000.0), drift=(0.0, 0.05),
                            volume=(1e4, 5e7), gap=0.05, tau=300.0),
    "commodities": _ClassProfile(vol=(0.012, 0.02), level=(2.0, 2500.0), drift=(0.0, 0.02),
                                 volume=(5e3, 5e5), gap=0.3, tau=750.0),
}


def _decimals(asset_class: str, level: float) -> int:
    """Price decimals: enough that a price is thousands of ticks."""
    if asset_class == "fx":
        return 5 if level < 5 else (4 if level < 50 else 3)
    if asset_class == "crypto":
        return 2 if level >= 100 else 4
    if asset_class == "commodities":
        return 2 if level >= 20 else 3
    return 2


# ---------------------------------------------------------------- defects
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
class _DefectPlan:
    """The parsed defects of one symbol."""

    flags: frozenset[str] = frozenset()
    args: Mapping[str, float] = field(default_factory=dict)
    text: tuple[str, ...] = ()

    @classmethod
    def from_entries(cls, symbol: str, entries: Sequence[str]) -> "_DefectPlan":
        flags, args = set(), {}
        for entry in entries:
            name, value = _parse_defect(entry, symbol)
            flags.add(name)
            if value is not None:
                args[name] = value
        return cls(frozenset(flags), args, tuple(entries))

    def count(self, name: str) -> int:
        return int(self.args.get(name, 0)) if name in self.flags else 0


# ---------------------------------------------------------------- sessions
@dataclass(frozen=True)
class _CalendarSessions:
    dates: np.ndarray          # datetime64[ns] sessions from the epoch on
    iso: list[str]             # the same as ISO strings (payload)


@lru_cache(maxsize=16)
def _calendar_sessions(calendar: str) -> _CalendarSessions:
    sessions = expected_sessions(calendar, EPOCH, _FAR_FUTURE)
    dates = sessions.to_numpy(dtype="datetime64[ns]")
    return _CalendarSessions(dates, np.datetime_as_string(dates, unit="D").tolist())


@lru_cache(maxsize=8)
def _ar_weights(phi: float) -> tuple[np.ndarray, np.ndarray]:
    """phi**k and phi**-k for k = 1..BLOCK, so a block of the AR(1) is a cumsum."""
    k = np.arange(1, BLOCK + 1, dtype="float64")
    return phi ** k, phi ** -k


# ---------------------------------------------------------------- the path
@dataclass
class _Path:
    """One (symbol, calendar) path from the epoch through ``length`` sessions."""

    asset_class: str
    p0: float
    sigma: float
    scale: int
    base_volume: float
    split_threshold: float
    log_level: np.ndarray       # T_t, log total-return level
    level: np.ndarray           # exp(T_t)
    open_gap: np.ndarray        # exp(gap * sigma * z)
    high_ext: np.ndarray        # exp(+k sigma |z|) >= 1
    low_ext: np.ndarray         # exp(-k sigma |z|) <= 1
    volume_noise: np.ndarray    # exp(0.35 z)
    dividends: list[tuple[int, float]]          # (session index, quarterly yield)
    split_candidates: list[tuple[int, float]]   # (session index, ratio)


def _seed_words(seed: int, symbol: str, calendar: str) -> list[int]:
    digest = hashlib.sha256(f"{symbol}\x00{calendar}".encode()).digest()
    return [seed] + [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def _generate_path(seed: int, symbol: str, calendar: str, asset_class: str, length: int) -> _Path:
    """Draw the path through at least ``length`` sessions (whole blocks)."""
    profile = _PROFILES[asset_class]
    rng = np.random.default_rng(np.random.SeedSequence(_seed_words(seed, symbol, calendar)))
    u = rng.random(8)  # per-symbol parameters: always exactly 8 draws first
    sigma = profile.vol[0] + u[0] * (profile.vol[1] - profile.vol[0])
    p0 = math.exp(math.log(profile.level[0]) + u[1] * math.log(profile.level[1] / profile.level[0]))
    mu = (profile.drift[0] + u[2] * (profile.drift[1] - profile.drift[0])) / 252.0
    base_volume = math.exp(math.log(profile.volume[0]) + u[3] * math.log(profile.volume[1] / profile.volume[0]))
    pays = u[4] < profile.dividend_payers
    quarterly_yield = (profile.dividend_yield[0] + u[5] * (profile.dividend_yield[1] - profile.dividend_yield[0])) / 4
    phase = 1 + int(u[6] * DIVIDEND_PERIOD)
    scale = 10 ** _decimals(asset_class, p0)

    phi = 1.0 - 1.0 / profile.tau
    up, down = _ar_weights(phi)
    blocks = max(1, -(-length // BLOCK))
    # Rows: log level, open gap, high extension, low extension, volume noise;
    # exponentiated a block at a time, in one call of fixed shape.
    logs = np.empty((5, blocks * BLOCK))
    exps = np.empty_like(logs)
    coef = np.array([[profile.gap * sigma], [0.6 * sigma], [-0.6 * sigma], [0.35]])
    steps = np.arange(BLOCK, dtype="float64")
    splits: list[tuple[int, float]] = []
    x = 0.0
    log_p0 = math.log(p0)
    for b in range(blocks):
        # Same calls in the same order for every block: block b's draws do
        # not depend on how many blocks follow.
        z = rng.standard_normal((5, BLOCK))
        v = rng.random(3)
        lo, hi = b * BLOCK, (b + 1) * BLOCK
        # AR(1) inside the block: x_k = phi^k (x_0 + sum_j phi^-j sigma e_j).
        xs = up * (x + np.cumsum(down * (sigma * z[0])))
        x = float(xs[-1])
        block = logs[:, lo:hi]
        block[0] = (log_p0 + mu * lo) + mu * steps + xs
        np.abs(z[2:4], out=z[2:4])
        np.multiply(coef, z[1:], out=block[1:])
        exps[:, lo:hi] = np.exp(block)
        if v[0] < profile.split_candidate:
            splits.append((max(1, lo + int(v[1] * BLOCK)), 2.0 if v[2] < 0.75 else 3.0))
    dividends = ([(i, quarterly_yield) for i in range(phase, blocks * BLOCK, DIVIDEND_PERIOD)]
                 if pays and quarterly_yield > 0 else [])
    return _Path(asset_class, p0, sigma, scale, base_volume, max(150.0, 3.0 * p0), logs[0], exps[0],
                 exps[1], exps[2], exps[3], exps[4], dividends, splits)


@dataclass
class _Events:
    """Corporate actions as applied: F after each ex-date, plus the amounts."""

    factor_before: float = 1.0                      # F just before the first returned session
    changes: list[tuple[int, float]] = field(default_factory=list)       # (index, F from then on)
    dividends: list[tuple[int, int]] = field(default_factory=list)       # (index, ticks)
    splits: list[tuple[int, float]] = field(default_factory=list)        # (index, ratio)
    split_product: list[tuple[int, float]] = field(default_factory=list)  # (index, S from then on)
    split_before: float = 1.0


def _close_ticks(path: _Path, i: int, factor: float) -> int:
    # The scalar twin of the vectorised close in _window_bars: the same IEEE
    # operations in the same order, so the event loop sees the stored close.
    return max(1, int(np.rint(path.level[i] / factor * path.scale)))


def _apply_events(path: _Path, first: int, last: int,
                  injected: Sequence[tuple[int, str, float]]) -> _Events:
    """Walk the events with ex-date <= ``last`` from the epoch, in order
    (splits before a same-day dividend, which is then measured against the
    split-adjusted previous close), tracking the forward factor F.  A split
    candidate happens only if the previous close is above the threshold."""
    events = [(i, 0, "split?", r) for i, r in path.split_candidates if i <= last]
    events += [(i, 1, "dividend", y) for i, y in path.dividends if i <= last]
    events += [(i, 0 if kind == "split" else 1, kind, value) for i, kind, value in injected]
    events.sort(key=lambda e: (e[0], e[1]))
    out = _Events()
    factor, split_product = 1.0, 1.0
    for i, _, kind, value in events:
        if i < 1:
            continue  # an ex-date needs a previous close
        if kind == "split?":
            if _close_ticks(path, i - 1, factor) / path.scale < path.split_threshold:
                continue
            kind = "split"
        if kind == "split":
            factor *= value
            split_product *= value
            if i >= first:
                out.splits.append((i, value))
                out.split_product.append((i, split_product))
            else:
                out.split_before = split_product
        else:
            prev = _close_ticks(path, i - 1, factor)
            cash = max(1, int(np.rint(value * prev)))
            if cash >= prev:
                continue
            factor *= prev / (prev - cash)
            if i >= first:
                out.dividends.append((i, cash))
        if i >= first:
            out.changes.append((i, factor))
        else:
            out.factor_before = factor
    return out


def _step_series(n: int, first: int, before: float, changes: Sequence[tuple[int, float]]) -> np.ndarray:
    out = np.full(n, before)
    for i, value in changes:
        out[i - first:] = value
    return out


def _window_bars(path: _Path, first: int, last: int, events: _Events) -> dict[str, np.ndarray]:
    """Tick columns (float64 holding integers) for sessions first..last,
    plus ``factor`` (F per session, not part of the payload)."""
    n = last - first + 1
    sl = slice(first, last + 1)
    prev = np.arange(first - 1, last)
    prev[prev < 0] = 0  # the epoch session opens at its own level
    factor = _step_series(n, first, events.factor_before, events.changes)
    # The open gaps from the previous close on today's basis (after an
    # ex-date's adjustment), as a real opening auction does.
    close_f = path.level[sl] / factor * path.scale
    open_f = path.level[prev] / factor * path.open_gap[sl] * path.scale
    close = np.maximum(1.0, np.rint(close_f))
    open_ = np.maximum(1.0, np.rint(open_f))
    # rint is monotone and the extensions are >= 1 (<= 1), so after rounding
    # high >= max(open, close) and low <= min(open, close) still hold.
    high = np.maximum(1.0, np.rint(np.maximum(open_f, close_f) * path.high_ext[sl]))
    low = np.maximum(1.0, np.rint(np.minimum(open_f, close_f) * path.low_ext[sl]))
    adj = np.rint(close * factor)
    # Busy days are volatile days; share volume grows with the split product.
    log_ret = path.log_level[sl] - path.log_level[prev]
    splits = _step_series(n, first, events.split_before, events.split_product)
    volume = np.maximum(1.0, np.rint(path.base_volume * splits * path.volume_noise[sl]
                                     * (1.0 + 0.5 * np.abs(log_ret) / path.sigma)))
    dividend = np.zeros(n)
    for i, cash in events.dividends:
        dividend[i - first] = cash
    split_ratio = np.ones(n)
    for i, ratio in events.splits:
        split_ratio[i - first] = ratio
    return {"open": open_, "high": high, "low": low, "close": close, "adj_close": adj,
            "volume": volume, "dividend": dividend, "split_ratio": split_ratio, "factor": factor}


# ---------------------------------------------------------------- defects on a window
_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")


def _at(fraction: float, m: int) -> int:
    return min(m - 1, int(fraction * m))


def _apply_value_defects(cols: dict[str, np.ndarray], plan: _DefectPlan) -> set[int]:
    """Distort prices in place; return the rows carrying a defect."""
    m = len(cols["close"])
    marked: set[int] = set()
    close, adj, factor = cols["close"], cols["adj_close"], cols["factor"]
    if "spike" in plan.flags:
        p = _at(_SPIKE_AT, m)
        close[p] *= 3.0
        adj[p] = np.rint(close[p] * factor[p])
        cols["high"][p] = max(cols["high"][p], close[p])
        marked.add(p)
    if "zero_price" in plan.flags:
        p = _at(_ZERO_AT, m)
        close[p] = cols["low"][p] = adj[p] = 0.0
        marked.add(p)
    if "negative_price" in plan.flags:
        p = _at(_NEGATIVE_AT, m)
        close[p] = -close[p]
        cols["low"][p] = close[p]
        adj[p] = np.rint(close[p] * factor[p])
        marked.add(p)
    if "ohlc_inversion" in plan.flags:
        for p in {_at(f, m) for f in _INVERSION_AT}:
            high, low = cols["high"][p], cols["low"][p]
            cols["high"][p], cols["low"][p] = low, (high + 1.0 if high == low else high)
            marked.add(p)
    if "null_values" in plan.flags:
        for p in {_at(f, m) for f in _NULL_AT}:
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


def _row_order(m: int, plan: _DefectPlan, protected: set[int]) -> np.ndarray:
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


# ---------------------------------------------------------------- payload and frame
def _json_ints(values: np.ndarray) -> list:
    if np.isnan(values).any():
        return [None if v != v else int(v) for v in values.tolist()]
    return values.astype(np.int64).tolist()


def _build_payload(header: dict, dates: list[str], cols: dict[str, np.ndarray]) -> bytes:
    bars = {"date": dates}
    for name in (*_PRICE_COLUMNS, "volume"):
        bars[name] = _json_ints(cols[name])
    dividends = [{"date": dates[i], "amount": int(cols["dividend"][i])}
                 for i in np.flatnonzero(cols["dividend"])]
    splits = [{"date": dates[i], "ratio": float(cols["split_ratio"][i])}
              for i in np.flatnonzero(cols["split_ratio"] != 1.0)]
    payload = {**header, "bars": bars, "events": {"dividends": dividends, "splits": splits}}
    return json.dumps(payload, separators=(",", ":")).encode()


def _frame(dates: np.ndarray, cols: dict[str, np.ndarray], scale: int) -> pd.DataFrame:
    """The bars frame, built directly in the contract's dtypes (what
    normalise_bars would produce, at a fraction of its cost: the tests check
    that normalise_bars leaves it unchanged)."""
    raw: dict[str, object] = {"date": dates}
    for name in _PRICE_COLUMNS:
        raw[name] = cols[name] / scale
    raw["volume"] = pd.array(cols["volume"].astype(np.int64), dtype="Int64")
    raw["dividend"] = cols["dividend"] / scale
    raw["split_ratio"] = cols["split_ratio"]
    return pd.DataFrame(raw, copy=False)


def frame_from_payload(payload: bytes) -> pd.DataFrame:
    """The bars frame a synthetic payload describes (equal to the frame the
    provider returned with it): replays an archived raw payload."""
    doc = json.loads(payload)
    bars, scale = doc["bars"], doc["price_scale"]
    dates = pd.to_datetime(pd.Series(bars["date"])).to_numpy(dtype="datetime64[ns]")
    cols: dict[str, np.ndarray] = {}
    for name in (*_PRICE_COLUMNS, "volume"):
        cols[name] = np.array([np.nan if v is None else v for v in bars[name]], dtype="float64")
    iso = np.array(bars["date"])
    cols["dividend"] = np.zeros(len(dates))
    cols["split_ratio"] = np.ones(len(dates))
    # Duplicated rows share their date, so an event lands on every copy.
    for event in doc["events"]["dividends"]:
        cols["dividend"][iso == event["date"]] = event["amount"]
    for event in doc["events"]["splits"]:
        cols["split_ratio"][iso == event["date"]] = event["ratio"]
    return _frame(dates, cols, scale)


# ---------------------------------------------------------------- the provider
class SyntheticDataProvider(SingleSymbolProvider):
    """Deterministic seeded market; see the module docstring."""

    name = NAME
    batch_size = 200  # generation is local and fast: big batches, few thread hops
    parallelism = "process"   # generation is CPU-bound: keep it off the writer's GIL

    def __init__(self, defects: Mapping[str, Sequence[str]] | None = None, seed: int = 0):
        if defects is None:
            defects = parse_defect_spec(os.environ.get(ENV_VAR, ""))
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed
        self.defects: dict[str, _DefectPlan] = {}
        for symbol, entries in defects.items():
            if isinstance(entries, str):
                entries = [entries]
            key = symbol.strip().upper()
            self.defects[key] = _DefectPlan.from_entries(key, list(entries))

    def test(self) -> str:
        """One line: always reachable; says which symbols carry defects."""
        where = ", ".join(f"{s}({','.join(p.text)})" for s, p in sorted(self.defects.items()))
        return (f"{NAME}: ok, offline deterministic market (seed {self.seed}, model v{MODEL_VERSION}); "
                f"defects: {where or 'none'}")

    def fetch_one(self, request: FetchRequest) -> FetchResult:
        """The bars of one request, with its symbol's defects applied."""
        symbol = request.symbol.strip().upper()
        plan = self.defects.get(symbol, _DefectPlan())
        if "unavailable" in plan.flags:
            raise ProviderUnavailable("injected defect: unavailable", provider=NAME, symbol=symbol)
        if "no_data" in plan.flags:
            raise NoDataError("injected defect: no_data", provider=NAME, symbol=symbol)
        asset_class = request.asset_class if request.asset_class in ASSET_CLASSES else classify_symbol(symbol)
        sessions = _calendar_sessions(request.calendar)
        start = int(np.searchsorted(sessions.dates, np.datetime64(request.start, "ns"), side="left"))
        end = int(np.searchsorted(sessions.dates, np.datetime64(request.end, "ns"), side="right")) - 1
        if end < start:
            raise NoDataError(f"no {request.calendar} sessions in {request.start}..{request.end} "
                              f"(the synthetic market opens {EPOCH})", provider=NAME, symbol=symbol)
        n = end - start + 1
        keep_from = max(0, n - plan.count("short_history")) if "short_history" in plan.flags else 0
        keep_to = n - plan.count("stale")
        if keep_to <= keep_from:
            raise NoDataError(f"injected defects leave no sessions in {request.start}..{request.end}",
                              provider=NAME, symbol=symbol)
        first, last = start + keep_from, start + keep_to - 1
        m = last - first + 1
        injected: list[tuple[int, str, float]] = []
        if "split" in plan.flags:
            injected.append((first + _at(_SPLIT_AT, m), "split", float(plan.args["split"])))
        if "special_dividend" in plan.flags:
            injected.append((first + _at(_SPECIAL_DIVIDEND_AT, m), "dividend", float(plan.args["special_dividend"])))

        path = _generate_path(self.seed, symbol, request.calendar, asset_class, last + 1)
        events = _apply_events(path, first, last, injected)
        cols = _window_bars(path, first, last, events)
        protected = _apply_value_defects(cols, plan) if plan.flags else set()
        if plan.flags:
            protected |= {int(i) for i in np.flatnonzero((cols["dividend"] != 0) | (cols["split_ratio"] != 1))}
            rows = _row_order(m, plan, protected)
            if len(rows) != m or (rows != np.arange(m)).any():
                cols = {k: v[rows] for k, v in cols.items()}
            dates = sessions.dates[first:last + 1][rows]
            iso = [sessions.iso[first + int(i)] for i in rows]
        else:
            dates = sessions.dates[first:last + 1]
            iso = sessions.iso[first:last + 1]

        header = {"vendor": NAME, "symbol": symbol, "asset_class": asset_class, "calendar": request.calendar,
                  "start": str(request.start), "end": str(request.end),
                  "generator": {"model": MODEL_VERSION, "seed": self.seed, "epoch": str(EPOCH)},
                  "defects": list(plan.text), "price_scale": path.scale}
        notes = [f"synthetic defects: {','.join(plan.text)}"] if plan.text else []
        if request.start < EPOCH:
            notes.append(f"synthetic market opens {EPOCH}; nothing before it")
        return FetchResult(symbol=symbol, provider=NAME, frame=_frame(dates, cols, path.scale),
                           adjustment=ADJ_VENDOR, raw_payload=_build_payload(header, iso, cols),
                           raw_suffix="json", notes=notes)

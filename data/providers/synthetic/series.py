"""The synthetic market's price series: one seeded path per (symbol, calendar).

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
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from core.calendar import expected_sessions

EPOCH = dt.date(2000, 1, 3)
MODEL_VERSION = 1

BLOCK = 252                 # sessions per block of random draws
DIVIDEND_PERIOD = 63        # sessions between quarterly ex-dates
_FAR_FUTURE = dt.date(2200, 1, 1)


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


@dataclass(frozen=True)
class _CalendarSessions:
    dates: np.ndarray          # datetime64[ns] sessions from the epoch on
    iso: list[str]             # the same as ISO strings (payload)


@lru_cache(maxsize=16)
def calendar_sessions(calendar: str) -> _CalendarSessions:
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


def generate_path(seed: int, symbol: str, calendar: str, asset_class: str, length: int) -> _Path:
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
    # The scalar twin of the vectorised close in window_bars: the same IEEE
    # operations in the same order, so the event loop sees the stored close.
    return max(1, int(np.rint(path.level[i] / factor * path.scale)))


def apply_events(path: _Path, first: int, last: int,
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


def window_bars(path: _Path, first: int, last: int, events: _Events) -> dict[str, np.ndarray]:
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

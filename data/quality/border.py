"""The border check: every provider's bars, before anything is written.

A bar is INVALID when a price (open, high, low, close, adj_close) is
missing (NaN), not finite, not positive or above ``MAX_PRICE``; when high
is below low or open/close lie outside [low, high]; or when its volume is
missing or negative (a volume the store cannot hold, e.g. an int64
overflow, comes out of the normaliser negative and is caught the same way).

Invalid bars are malformed input, not data to be scored: the fetch worker
rejects the symbol's whole payload (``MALFORMED_DATA``, naming the date,
field and value and, for a text payload, its line), so an invalid value
never reaches the store and never replaces a stored valid bar
(docs/decisions.md, "Issue 10: never overwrite good with worse", D-B1..D-B3).
The store keeps the same rule as a last guard (``database.bars``).

Quality still scores zero, negative and inconsistent prices (``checks``)
for bars already stored by earlier builds or seeded directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

# No traded instrument the product handles quotes above this (the dearest
# share, BRK.A, is below 1e6; index levels below 1e6): a price above it is
# a vendor's garbage (1e300, a mis-scaled field), not a market value.
MAX_PRICE = 1e9
PRICE_FIELDS = ("open", "high", "low", "close", "adj_close")
# At most this many invalid bars are named in one message (the count is always given).
NAMED_AT_MOST = 5


@dataclass(frozen=True)
class InvalidBar:
    """One invalid value of one bar: its date, the field and the value
    (``problem`` says why), and the payload line when it is known."""

    date: str
    field: str
    value: float | None
    problem: str
    line: int | None = None

    def describe(self) -> str:
        """``2024-01-03 close=nan (not a number), line 3``."""
        where = f", line {self.line}" if self.line else ""
        return f"{self.date} {self.field}={_text(self.value)} ({self.problem}){where}"


def _text(value: float | None) -> str:
    if value is None:
        return "missing"
    return repr(float(value)) if not float(value).is_integer() or abs(value) >= 1e16 else str(int(value))


def _column(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def invalid_bars(frame: pd.DataFrame) -> list[InvalidBar]:
    """Every invalid value of ``frame`` (a bars-contract frame), in date
    order, one entry per bar and problem; [] when every bar is valid.
    Vectorised: a valid payload costs a few numpy passes."""
    n = len(frame)
    if n == 0:
        return []
    prices = {c: _column(frame, c) for c in PRICE_FIELDS if c in frame.columns}
    volume = _column(frame, "volume") if "volume" in frame.columns else np.zeros(n)
    bad = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        for values in prices.values():
            bad |= ~(np.isfinite(values) & (values > 0) & (values <= MAX_PRICE))
        if {"high", "low"} <= prices.keys():
            high, low = prices["high"], prices["low"]
            bad |= high < low
            for c in ("open", "close"):
                if c in prices:
                    bad |= (prices[c] < low) | (prices[c] > high)
        bad |= ~(np.isfinite(volume) & (volume >= 0))
    if not bad.any():
        return []
    dates = frame["date"].to_numpy(dtype="datetime64[D]").astype(str)
    out: list[InvalidBar] = []
    for i in np.flatnonzero(bad).tolist():
        out.extend(_problems(dates[i], {c: v[i] for c, v in prices.items()}, volume[i]))
    return out


def _problems(date: str, bar: dict[str, float], volume: float) -> list[InvalidBar]:
    """Why one bar flagged by ``invalid_bars`` is invalid."""
    found = []
    for col, v in bar.items():
        if np.isnan(v):
            found.append(InvalidBar(date, col, v, "not a number"))
        elif not np.isfinite(v):
            found.append(InvalidBar(date, col, v, "not finite"))
        elif v <= 0:
            found.append(InvalidBar(date, col, v, "not positive"))
        elif v > MAX_PRICE:
            found.append(InvalidBar(date, col, v, f"above {MAX_PRICE:g}"))
    high, low = bar.get("high"), bar.get("low")
    if high is not None and low is not None:
        if high < low:
            found.append(InvalidBar(date, "high", high, f"below low {_text(low)}"))
        for col in ("open", "close"):
            v = bar.get(col)
            if v is not None and high >= low and (v < low or v > high):
                found.append(InvalidBar(date, col, v, f"outside [low {_text(low)}, high {_text(high)}]"))
    if np.isnan(volume):
        found.append(InvalidBar(date, "volume", None, "missing"))
    elif not np.isfinite(volume) or volume < 0:
        found.append(InvalidBar(date, "volume", volume, "negative" if volume < 0 else "not finite"))
    return found


def locate_lines(invalid: list[InvalidBar], raw: bytes | None) -> list[InvalidBar]:
    """The same entries with the line of a text payload (CSV, header = line
    1) whose text holds the bar's ISO date; unchanged when the payload is
    binary, absent or writes its dates another way."""
    if not raw or not invalid:
        return invalid
    wanted = {b.date for b in invalid}
    lines: dict[str, int] = {}
    pattern = re.compile(rb"\d{4}-\d{2}-\d{2}")
    for number, text in enumerate(raw.split(b"\n"), start=1):
        match = pattern.search(text)
        if match is not None:
            day = match.group().decode()
            if day in wanted and day not in lines:
                lines[day] = number
    return [InvalidBar(b.date, b.field, b.value, b.problem, lines.get(b.date)) for b in invalid]


def border_message(invalid: list[InvalidBar], source: str) -> str:
    """One line for the audit and the report: how many bars are invalid and
    the first ``NAMED_AT_MOST`` of them, and where the payload is."""
    dates = sorted({b.date for b in invalid})
    named = "; ".join(b.describe() for b in invalid[:NAMED_AT_MOST])
    more = f"; and {len(invalid) - NAMED_AT_MOST} more" if len(invalid) > NAMED_AT_MOST else ""
    return (f"{len(dates)} invalid bar(s) in {source}, payload rejected, stored bars kept: {named}{more}")

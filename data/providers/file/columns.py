"""Column names and date formats of vendor files, before any parsing.

Column names match ignoring case, spaces, underscores, dots and ``<>``
(:func:`column_key`); each canonical column has its accepted spellings.  A
file's date format is detected from its first data row and then required of
every row (:func:`detect_date_format`, :func:`session_dates`).
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data.providers.base import MalformedDataError, SchemaError

# Null markers as vendors write them (Stooq/FRED ".", Yahoo "null").
NULL_VALUES = ["", ".", "null", "NULL", "Null", "NA", "N/A", "n/a", "NaN", "nan", "None"]

# Canonical column -> accepted spellings after column_key() folding.
_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "datetime", "timestamp"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "adj_close": ("adjclose", "adjustedclose"),
    "volume": ("volume", "vol"),
    "dividend": ("dividend", "dividends", "exdividend", "dividendamount"),
    "split_ratio": ("splitratio", "stocksplits", "split", "splits", "splitcoefficient"),
    "ticker": ("ticker", "symbol"),
}
_CANONICAL_BY_KEY = {key: canon for canon, keys in _ALIASES.items() for key in keys}
REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")
NUMERIC_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio")

# Date formats, each detected from the file's first data row and then
# required of every row (a file mixing formats is malformed, not guessed at).
ISO_DATE = "ISO date (YYYY-MM-DD)"
ISO_DATETIME = "ISO datetime (YYYY-MM-DD hh:mm[:ss][zone])"
US_DATE = "M/D/YYYY"
COMPACT_DATE = "YYYYMMDD"
DATE_PATTERNS = {
    ISO_DATE: re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    ISO_DATETIME: re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"),
    US_DATE: re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"),
    COMPACT_DATE: re.compile(r"^\d{8}$"),
}
# Plain decimal / scientific numbers plus the nan/inf spellings arrow accepts.
NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.IGNORECASE)


SHOWN_CHARS = 60


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` as it may be printed: escaped (``repr``, so binary junk or
    terminal escapes never reach the terminal raw) and cut to ``limit``
    characters, with the full length said when cut."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def column_key(name: str) -> str:
    return re.sub(r"[\s_.<>\-]", "", str(name)).lower()


def map_columns(names: list[str], path: Path) -> dict[str, str]:
    """Canonical column -> the file's column name; SchemaError when ambiguous."""
    mapping: dict[str, str] = {}
    for name in names:
        canon = _CANONICAL_BY_KEY.get(column_key(name))
        if canon is None:
            continue
        if canon in mapping:
            raise SchemaError(f"{path}: columns {shown(mapping[canon])} and {shown(name)} both read as {canon}",
                              missing=(canon,))
        mapping[canon] = name
    return mapping


def require_columns(mapping: Mapping[str, str], names: list[str], path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping]
    if missing:
        header = shown(",".join(map(str, names)))
        raise SchemaError(f"{path}: missing column(s) {', '.join(missing)}; header has {header}",
                          missing=missing)


def _head_lines(data: bytes, count: int) -> list[str]:
    """The first ``count`` lines as text (BOM and line ends removed)."""
    lines, start = [], 0
    while len(lines) < count and start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        lines.append(data[start:end].decode("utf-8", errors="replace").rstrip("\r"))
        start = end + 1
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines


def csv_header(data: bytes, path: Path | str = "<csv>") -> tuple[list[str], int, str | None]:
    """Header names, rows to skip after the header, and the first data row.

    A header the csv module refuses (a field over its limit) is
    MalformedDataError naming ``path`` and line 1.

    yfinance's ``download(...).to_csv()`` writes a three-row header
    (``Price,Close,...`` / ``Ticker,AAPL,...`` / ``Date,,,...``): its first
    name stands for the date column and the two rows after it are skipped.
    """
    lines = _head_lines(data, 8)
    if not lines:
        return [], 0, None
    try:
        names = next(csv.reader([lines[0]]), [])
    except csv.Error as exc:
        raise MalformedDataError(f"{path}, line 1: unreadable header ({exc}): {shown(lines[0])}") from exc
    skip = 0
    if (len(lines) >= 3 and names and column_key(names[0]) == "price"
            and column_key(lines[1].split(",", 1)[0]) in ("ticker", "symbol")
            and column_key(lines[2].split(",", 1)[0]) == "date"):
        skip = 2
    first_row = next((row for row in lines[1 + skip:] if row.strip()), None)
    return names, skip, first_row


def detect_date_format(value: str | None) -> str | None:
    if value is None:
        return None
    for fmt, pattern in DATE_PATTERNS.items():
        if pattern.match(value):
            return fmt
    return None


def date_problem(value: str, date_format: str) -> str | None:
    match = DATE_PATTERNS[date_format].match(value)
    if not match:
        return f"date {shown(value)} does not match the file's date format {date_format}"
    try:
        if date_format == US_DATE:
            dt.date(int(match.group(3)), int(match.group(1)), int(match.group(2)))
        elif date_format == COMPACT_DATE:
            dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        else:
            dt.date.fromisoformat(value[:10])
    except ValueError as exc:
        return f"unparseable date {shown(value)} ({exc})"
    return None


def session_dates(column: pa.ChunkedArray, date_format: str | None) -> np.ndarray:
    """Session dates as int64 ns; ValueError/ArrowInvalid on any bad or null value."""
    if column.null_count:
        raise ValueError("missing date")
    if date_format == ISO_DATE:
        days = column if pa.types.is_date32(column.type) else pc.cast(column, pa.date32())
    elif date_format == ISO_DATETIME:
        if not pc.all(pc.match_substring_regex(column, DATE_PATTERNS[ISO_DATETIME].pattern)).as_py():
            raise ValueError("a date does not match the file's ISO datetime format")
        # A time part (a vendor's local midnight or open) belongs to the
        # session of its own calendar date, whatever its zone offset says.
        days = pc.cast(pc.utf8_slice_codeunits(column, 0, 10), pa.date32())
    elif date_format == COMPACT_DATE:
        if not pc.all(pc.match_substring_regex(column, DATE_PATTERNS[COMPACT_DATE].pattern)).as_py():
            raise ValueError("a date does not match the file's YYYYMMDD format")
        iso = pc.binary_join_element_wise(pc.utf8_slice_codeunits(column, 0, 4), pc.utf8_slice_codeunits(column, 4, 6),
                                          pc.utf8_slice_codeunits(column, 6, 8), "-")
        days = pc.cast(iso, pa.date32())
    elif date_format == US_DATE:
        parts = pc.extract_regex(column, r"^(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})$")
        if parts.null_count:
            raise ValueError("a date does not match the file's M/D/YYYY format")
        month = pc.utf8_lpad(pc.struct_field(parts, "m"), 2, "0")
        day = pc.utf8_lpad(pc.struct_field(parts, "d"), 2, "0")
        # Rebuilt as ISO text so arrow's strict ISO cast rejects 2/30/2024
        # (strptime would roll it over to March 1).
        days = pc.cast(pc.binary_join_element_wise(pc.struct_field(parts, "y"), month, day, "-"), pa.date32())
    else:
        raise ValueError("unrecognised date format")
    return days.cast(pa.int32()).to_numpy().astype(np.int64) * 86_400_000_000_000

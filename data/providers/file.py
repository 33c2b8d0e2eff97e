"""The ``file`` provider: a directory of CSV/Parquet files as vendors ship them.

Two layouts are served from one directory (``FileDataProvider(directory)``):

* per-symbol files named by the symbol in any case or by
  :func:`core.symbols.filename_for` (``AAPL.csv``, ``aapl.csv``,
  ``EURUSD=X.csv``, ``EURUSD_X.csv``, ``BRK-B.parquet``, ``_GSPC.csv.gz``);
* long-format files: any CSV/Parquet with a ``ticker``/``symbol`` column
  holding rows of many symbols (a Kaggle dump, a vendor's yearly file).  A
  file named after the symbol wins over long files; a symbol found in several
  long files gets the rows of all of them.

Accepted content: Yahoo headers (``Date,Open,High,Low,Close,Adj Close,Volume``
plus ``Dividends``/``Stock Splits``), snake_case (``adj_close``, ``dividend``,
``split_ratio``), Stooq (no adjusted column, ``<DATE>``/``<VOL>`` too);
column names match ignoring case, spaces, underscores, dots and ``<>``.
UTF-8 BOM and CRLF are fine; dates are ISO ``YYYY-MM-DD`` (optionally with a
time part, whose calendar date is the session), ``M/D/YYYY`` or ``YYYYMMDD``,
one format per file; ``.``, empty, ``null``, ``NA`` are missing values.
Rows come back sorted ascending by date with duplicate dates kept (ingestion
counts duplicates before collapsing them).

Speed matters (the deep-backfill benchmark reads 6,000 files of 1,260 rows):
each CSV is parsed by pyarrow with explicit column types and the contract
frame is built straight from the arrow arrays.  Only when arrow rejects the
file does a slow pure-Python pass run, and its one job is to name the line
and the value for :class:`MalformedDataError`: a bad row is never skipped.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from data.providers.base import (
    ADJ_COMPUTED,
    ADJ_UNADJUSTED,
    ADJ_VENDOR,
    BAR_COLUMNS,
    FetchOutcome,
    FetchRequest,
    FetchResult,
    MalformedDataError,
    NoDataError,
    ProviderError,
    SchemaError,
    SingleSymbolProvider,
)
from core.symbols import filename_for

# Longest suffix first so that ``x.csv.gz`` is not taken for ``x.csv`` + ``.gz``.
DATA_SUFFIXES = (".csv.gz", ".csv", ".parquet")

# Null markers as vendors write them (Stooq/FRED ".", Yahoo "null").
NULL_VALUES = ["", ".", "null", "NULL", "Null", "NA", "N/A", "n/a", "NaN", "nan", "None"]

# Canonical column -> accepted spellings after _column_key() folding.
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
_NUMERIC_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio")

# Date formats, each detected from the file's first data row and then
# required of every row (a file mixing formats is malformed, not guessed at).
_ISO_DATE = "ISO date (YYYY-MM-DD)"
_ISO_DATETIME = "ISO datetime (YYYY-MM-DD hh:mm[:ss][zone])"
_US_DATE = "M/D/YYYY"
_COMPACT_DATE = "YYYYMMDD"
_DATE_PATTERNS = {
    _ISO_DATE: re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    _ISO_DATETIME: re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"),
    _US_DATE: re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"),
    _COMPACT_DATE: re.compile(r"^\d{8}$"),
}
# Plain decimal / scientific numbers plus the nan/inf spellings arrow accepts.
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.IGNORECASE)


class DataDirectoryNotFound(FileNotFoundError):
    """The provider's directory does not exist (or is not a directory).

    Deliberately not a ProviderError: it escapes ``fetch`` as a failure of the
    whole provider, and the ingest CLI maps it to exit 66 (EX_NOINPUT).
    """

    code = "NO_INPUT"

    def __init__(self, directory: os.PathLike | str, why: str = "does not exist"):
        super().__init__(f"data directory {directory} {why}")
        self.directory = Path(directory)


def require_data_directory(directory: os.PathLike | str | None) -> Path:
    """The directory as a Path; raises DataDirectoryNotFound naming it."""
    if directory is None or str(directory) == "":
        raise DataDirectoryNotFound("<unset>", "is not set (--data-dir or FILE_PROVIDER_DIR)")
    path = Path(directory)
    if not path.exists():
        raise DataDirectoryNotFound(path)
    if not path.is_dir():
        raise DataDirectoryNotFound(path, "is not a directory")
    return path


# --------------------------------------------------------------------------
# parsed, typed columns of one file (before sort/adjust/window)
# --------------------------------------------------------------------------
@dataclass
class _ParsedBars:
    """One file's bars in file order: dates (int64 ns) and float64 columns."""

    source: Path
    dates: np.ndarray                       # int64 nanoseconds since epoch, session dates
    values: dict[str, np.ndarray]           # canonical numeric column -> float64
    table: pa.Table                          # the used columns under their file names (raw payload)
    tickers: np.ndarray | None = None        # upper-cased ticker per row (long files)


@dataclass
class _Staged:
    """A per-symbol CSV read and its header understood, waiting to be parsed."""

    request: FetchRequest
    path: Path
    data: bytes
    layout: "_CsvLayout"
    rows: int                      # countable data rows; 0 = parse this file alone
    notes: list[str]
    elapsed: float                 # seconds spent on this request so far
    bars: _ParsedBars | None = None


@dataclass
class _LongFile:
    path: Path
    symbols: frozenset[str]


@dataclass
class _DirectoryIndex:
    """File names by symbol key, and (built on first need) long-file symbols."""

    per_symbol: dict[str, list[Path]]
    files: list[Path]
    long_files: list[_LongFile] | None = None
    long_errors: list[str] = field(default_factory=list)


class FileDataProvider(SingleSymbolProvider):
    """Daily bars from a directory of per-symbol or long-format CSV/Parquet files."""

    name = "file"
    batch_size = 50
    parallelism = "process"   # parsing is CPU-bound: keep it off the writer's GIL

    def __init__(self, directory: os.PathLike | str | None, *, long_cache_size: int = 2):
        # Nothing is read here: the router builds providers before it knows
        # whether this one will be asked, so the index is built on first use.
        self.directory = Path(directory) if directory not in (None, "") else None
        self._index: _DirectoryIndex | None = None
        self._lock = threading.Lock()
        # Parsed long files, grouped by symbol; a long file is parsed once and
        # then served symbol by symbol (bounded: such files can be large).
        self._long_cache: OrderedDict[Path, tuple[_ParsedBars, dict[str, tuple[int, int]]]] = OrderedDict()
        self._long_parse_lock = threading.Lock()
        self._long_cache_size = max(1, long_cache_size)

    # ------------------------------------------------------------ Provider
    def test(self) -> str:
        """One line: the directory, files and symbols found (raises if missing)."""
        index = self._long_index()
        long_paths = {lf.path for lf in index.long_files}
        symbols = {stem for stem, paths in index.per_symbol.items() if any(p not in long_paths for p in paths)}
        for long_file in index.long_files:
            symbols |= long_file.symbols
        line = (f"file: {self.directory}: {len(index.files)} data file(s), {len(symbols)} symbol(s) "
                f"({len(index.files) - len(long_paths)} per-symbol, {len(long_paths)} long-format file(s))")
        if index.long_errors:
            line += f"; {len(index.long_errors)} unreadable: {index.long_errors[0]}"
        return line

    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        """One outcome per request.  Per-symbol CSV files that share a header
        are parsed in one arrow call (see :func:`_parse_csv_group`); Parquet,
        long files and any file the joint parse cannot take go one by one.

        A missing directory raises :class:`DataDirectoryNotFound` out of the
        generator: the whole provider failed, not one symbol."""
        index = self._build_index()
        staged: list[_Staged] = []
        alone: list[FetchRequest] = []
        for request in requests:
            t0 = time.perf_counter()
            path, notes = self._resolve(index, request.symbol)
            if path is None or path.name.lower().endswith(".parquet"):
                alone.append(request)
                continue
            try:
                data, _ = _read_payload(path)
                layout = _csv_layout(data, path)
            except ProviderError as exc:
                yield self._failure(request, exc, time.perf_counter() - t0)
                continue
            except OSError as exc:
                yield self._failure(request, _unreadable(path, exc), time.perf_counter() - t0)
                continue
            joinable = ("ticker" not in layout.mapping and layout.date_format is not None
                        and not layout.skip_after_header)
            staged.append(_Staged(request, path, data, layout, _batchable_rows(data) if joinable else 0,
                                  notes, time.perf_counter() - t0))

        groups: dict[tuple[bytes, str | None], list[_Staged]] = {}
        for item in staged:
            if item.rows:
                groups.setdefault((item.layout.header_line, item.layout.date_format), []).append(item)
        for members in groups.values():
            if len(members) < 2:
                continue
            t0 = time.perf_counter()
            parsed = _parse_csv_group([(m.data, m.path, m.rows) for m in members], members[0].layout)
            share = (time.perf_counter() - t0) / len(members)
            for member, bars in zip(members, parsed or [None] * len(members)):
                member.bars = bars
                member.elapsed += share

        for item in staged:
            t0 = time.perf_counter()
            try:
                bars = item.bars or _parse_csv(item.data, item.path, item.layout)
                if bars.tickers is not None:
                    bars = _rows_of_symbol_if_mixed(bars, item.request.symbol, item.notes)
                result = self._result(item.request, bars, item.data, "csv", item.notes)
            except ProviderError as exc:
                yield self._failure(item.request, exc, item.elapsed + time.perf_counter() - t0)
                continue
            item.data = b""  # the payload now lives in the result only
            yield FetchOutcome(item.request, result=result,
                               latency_ms=(item.elapsed + time.perf_counter() - t0) * 1000)
        yield from super().fetch(alone)

    def fetch_one(self, request: FetchRequest) -> FetchResult:
        """Bars of ``request.symbol`` within [start, end] from this directory."""
        index = self._build_index()
        path, notes = self._resolve(index, request.symbol)
        if path is None:
            bars, raw = self._from_long_files(index, request.symbol)
            return self._result(request, bars, raw, "csv", notes)
        try:
            raw, is_parquet = _read_payload(path)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        bars = _parse_payload(raw, path, is_parquet)
        if bars.tickers is not None:
            bars = _rows_of_symbol_if_mixed(bars, request.symbol, notes)
        return self._result(request, bars, raw, "parquet" if is_parquet else "csv", notes)

    def _result(self, request: FetchRequest, bars: _ParsedBars, raw: bytes, raw_suffix: str,
                notes: list[str]) -> FetchResult:
        frame, adjustment, adj_notes = _contract_frame(bars, request)
        return FetchResult(symbol=request.symbol, provider=self.name, frame=frame, adjustment=adjustment,
                           raw_payload=raw, raw_suffix=raw_suffix, notes=notes + adj_notes)

    def _failure(self, request: FetchRequest, exc: ProviderError, seconds: float) -> FetchOutcome:
        exc.provider = exc.provider or self.name
        exc.symbol = exc.symbol or request.symbol
        return FetchOutcome(request, error=exc, latency_ms=seconds * 1000)

    def _resolve(self, index: _DirectoryIndex, symbol: str) -> tuple[Path | None, list[str]]:
        """The per-symbol file for ``symbol`` (None: look in long files)."""
        paths = self._per_symbol_paths(index, symbol)
        if not paths:
            return None, []
        notes = []
        if len(paths) > 1:
            notes.append(f"several files match {symbol}; used {paths[0].name}, "
                         f"ignored {', '.join(p.name for p in paths[1:])}")
        return paths[0], notes

    def close(self) -> None:
        """Drop cached long files (the router calls this at the end of a run)."""
        with self._lock:
            self._long_cache.clear()

    # ------------------------------------------------------------ index
    def _build_index(self) -> _DirectoryIndex:
        with self._lock:
            if self._index is None:
                directory = require_data_directory(self.directory)
                per_symbol: dict[str, list[Path]] = {}
                files: list[Path] = []
                for entry in sorted(os.scandir(directory), key=lambda e: e.name):
                    stem = _data_stem(entry.name)
                    if stem is None or not entry.is_file():
                        continue
                    path = Path(entry.path)
                    files.append(path)
                    per_symbol.setdefault(stem.upper(), []).append(path)
                for paths in per_symbol.values():
                    paths.sort(key=_suffix_preference)
                self._index = _DirectoryIndex(per_symbol=per_symbol, files=files)
            return self._index

    def _long_index(self) -> _DirectoryIndex:
        """The index with long files found: headers of every file are read,
        and of files with a ticker column only that column."""
        index = self._build_index()
        with self._lock:
            if index.long_files is None:
                long_files = []
                for path in index.files:
                    try:
                        symbols = _ticker_values(path)
                    except (OSError, ValueError, pa.ArrowException, ProviderError) as exc:
                        # One unreadable file must not hide the others' symbols;
                        # test() reports it.
                        index.long_errors.append(f"{path.name}: {exc}")
                        continue
                    if symbols is not None:
                        long_files.append(_LongFile(path, symbols))
                index.long_files = long_files
            return index

    @staticmethod
    def _per_symbol_paths(index: _DirectoryIndex, symbol: str) -> list[Path]:
        keys = dict.fromkeys((symbol.upper(), filename_for(symbol).upper()))
        paths: list[Path] = []
        for key in keys:
            paths.extend(p for p in index.per_symbol.get(key, ()) if p not in paths)
        return paths

    def _from_long_files(self, index: _DirectoryIndex, symbol: str) -> tuple[_ParsedBars, bytes]:
        key = symbol.strip().upper()
        holders = [lf.path for lf in self._long_index().long_files if key in lf.symbols]
        if not holders:
            looked = sorted(set((symbol, filename_for(symbol))))
            raise NoDataError(f"no file for {symbol} in {self.directory} (looked for "
                              f"{' / '.join(looked)} with {', '.join(DATA_SUFFIXES)}, and a ticker column in "
                              f"{len(index.files)} file(s))", symbol=symbol)
        parts = []
        for path in holders:
            bars, groups = self._parsed_long_file(path)
            start, stop = groups[key]
            parts.append(_ParsedBars(source=path, dates=bars.dates[start:stop],
                                     values={k: v[start:stop] for k, v in bars.values.items()},
                                     table=bars.table.slice(start, stop - start)))
        if len(parts) == 1:
            merged = parts[0]
        else:
            common = set.intersection(*(set(p.values) for p in parts))
            merged = _ParsedBars(source=parts[0].source, dates=np.concatenate([p.dates for p in parts]),
                                 values={k: np.concatenate([p.values[k] for p in parts]) for k in common},
                                 table=pa.concat_tables([p.table for p in parts], promote_options="permissive"))
        sink = io.BytesIO()
        pa_csv.write_csv(merged.table, sink)
        return merged, sink.getvalue()

    def _parsed_long_file(self, path: Path) -> tuple[_ParsedBars, dict[str, tuple[int, int]]]:
        """The long file parsed once, its rows regrouped so that each symbol's
        rows are one contiguous slice (file order kept within a symbol)."""
        # One parse at a time: several fetch workers asking for symbols of
        # the same large file must not each parse it.
        with self._long_parse_lock:
            with self._lock:
                cached = self._long_cache.get(path)
                if cached is not None:
                    self._long_cache.move_to_end(path)
                    return cached
            try:
                raw, is_parquet = _read_payload(path)
            except OSError as exc:
                raise _unreadable(path, exc) from exc
            bars = _parse_payload(raw, path, is_parquet)
            order, groups = _group_rows(bars.tickers)
            regrouped = _ParsedBars(source=path, dates=bars.dates[order],
                                    values={k: v[order] for k, v in bars.values.items()},
                                    table=bars.table.take(pa.array(order)).combine_chunks())
            with self._lock:
                self._long_cache[path] = (regrouped, groups)
                while len(self._long_cache) > self._long_cache_size:
                    self._long_cache.popitem(last=False)
            return regrouped, groups


# --------------------------------------------------------------------------
# file names, payloads, headers
# --------------------------------------------------------------------------
def _data_stem(file_name: str) -> str | None:
    lower = file_name.lower()
    for suffix in DATA_SUFFIXES:
        if lower.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None


def _suffix_preference(path: Path) -> tuple[int, str]:
    lower = path.name.lower()
    rank = next(i for i, s in enumerate((".csv", ".csv.gz", ".parquet")) if lower.endswith(s)
                and not (s == ".csv" and lower.endswith(".csv.gz")))
    return rank, path.name


def _unreadable(path: Path, exc: OSError) -> MalformedDataError:
    return MalformedDataError(f"{path}: cannot read the file: {exc}")


def _read_payload(path: Path) -> tuple[bytes, bool]:
    """The file's bytes (a ``.csv.gz`` decompressed: the archive gzips again)."""
    lower = path.name.lower()
    data = path.read_bytes()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise MalformedDataError(f"{path}: not a readable gzip file: {exc}") from exc
    return data, lower.endswith(".parquet")


def _column_key(name: str) -> str:
    return re.sub(r"[\s_.<>\-]", "", str(name)).lower()


def _map_columns(names: list[str], path: Path) -> dict[str, str]:
    """Canonical column -> the file's column name; SchemaError when ambiguous."""
    mapping: dict[str, str] = {}
    for name in names:
        canon = _CANONICAL_BY_KEY.get(_column_key(name))
        if canon is None:
            continue
        if canon in mapping:
            raise SchemaError(f"{path}: columns {mapping[canon]!r} and {name!r} both read as {canon}",
                              missing=(canon,))
        mapping[canon] = name
    return mapping


def _require_columns(mapping: Mapping[str, str], names: list[str], path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {', '.join(missing)}; header has {', '.join(map(str, names))}",
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


def _csv_header(data: bytes) -> tuple[list[str], int, str | None]:
    """Header names, rows to skip after the header, and the first data row.

    yfinance's ``download(...).to_csv()`` writes a three-row header
    (``Price,Close,...`` / ``Ticker,AAPL,...`` / ``Date,,,...``): its first
    name stands for the date column and the two rows after it are skipped.
    """
    lines = _head_lines(data, 8)
    if not lines:
        return [], 0, None
    names = next(csv.reader([lines[0]]), [])
    skip = 0
    if (len(lines) >= 3 and names and _column_key(names[0]) == "price"
            and _column_key(lines[1].split(",", 1)[0]) in ("ticker", "symbol")
            and _column_key(lines[2].split(",", 1)[0]) == "date"):
        skip = 2
    first_row = next((row for row in lines[1 + skip:] if row.strip()), None)
    return names, skip, first_row


def _ticker_values(path: Path) -> frozenset[str] | None:
    """Symbols in the file's ticker column (reading only that column), or
    None when the file has no ticker column."""
    lower = path.name.lower()
    if lower.endswith(".parquet"):
        names = pq.read_schema(path).names
        mapping = _map_columns(names, path)
        if "ticker" not in mapping:
            return None
        column = pq.read_table(path, columns=[mapping["ticker"]]).column(0)
    else:
        if lower.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                head = fh.readline()
        else:
            with open(path, "rb") as fh:
                head = fh.readline()
        names, _, _ = _csv_header(head)
        mapping = _map_columns(names, path)
        if "ticker" not in mapping:
            return None
        column = pa_csv.read_csv(
            path, read_options=pa_csv.ReadOptions(use_threads=False),
            convert_options=pa_csv.ConvertOptions(include_columns=[mapping["ticker"]],
                                                  column_types={mapping["ticker"]: pa.string()},
                                                  strings_can_be_null=False, null_values=NULL_VALUES),
        ).column(0)
    values = pc.unique(pc.utf8_upper(pc.utf8_trim_whitespace(column.cast(pa.string())))).to_pylist()
    return frozenset(v for v in values if v)


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------
def _parse_payload(data: bytes, path: Path, is_parquet: bool) -> _ParsedBars:
    if is_parquet:
        return _parse_parquet(data, path)
    return _parse_csv(data, path)


def _detect_date_format(value: str | None) -> str | None:
    if value is None:
        return None
    for fmt, pattern in _DATE_PATTERNS.items():
        if pattern.match(value):
            return fmt
    return None


@dataclass(frozen=True)
class _CsvLayout:
    """What the header says: names, canonical mapping, date format, arrow types."""

    names: tuple[str, ...]
    mapping: Mapping[str, str]
    date_format: str | None
    column_types: Mapping[str, pa.DataType]
    header_line: bytes          # without BOM and line end: files with equal ones can share a parse
    skip_after_header: int = 0  # yfinance's extra header rows


def _csv_layout(data: bytes, path: Path) -> _CsvLayout:
    """Read the header (and the first row's date format); SchemaError when
    required columns are missing, NoDataError for an empty file."""
    if len(data) < 4096 and not data.strip():
        raise NoDataError(f"{path} is empty")
    names, skip, first_row = _csv_header(data)
    if skip:
        mapping = _map_columns(["Date", *names[1:]], path)
        mapping["date"] = names[0]
    else:
        mapping = _map_columns(names, path)
    _require_columns(mapping, names, path)
    date_format = None
    if first_row is not None:
        fields = next(csv.reader([first_row]), [])
        position = names.index(mapping["date"])
        if position < len(fields):
            date_format = _detect_date_format(fields[position])
    column_types = {mapping[c]: pa.float64() for c in _NUMERIC_COLUMNS if c in mapping}
    column_types[mapping["date"]] = pa.date32() if date_format == _ISO_DATE else pa.string()
    if "ticker" in mapping:
        column_types[mapping["ticker"]] = pa.string()
    newline = data.find(b"\n")
    if first_row is None and (newline < 0 or not data[newline + 1:].strip()):
        raise NoDataError(f"{path} has a header but no rows")
    header_line = data[:newline if newline >= 0 else len(data)].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
    return _CsvLayout(tuple(names), mapping, date_format, column_types, header_line, skip)


_ONE_BLOCK_BYTES = 16 << 20


def _arrow_read(data: bytes, layout: _CsvLayout) -> tuple[pa.Table, np.ndarray]:
    """The fast path: arrow parses with explicit types; raises ArrowInvalid or
    ValueError on anything it cannot convert (the caller then locates it)."""
    small = len(data) < _ONE_BLOCK_BYTES
    table = pa_csv.read_csv(
        pa.BufferReader(data),
        # A per-symbol file is read single-threaded in one block (the
        # ingestion already runs several fetch workers, and one block means
        # unchunked columns); a large long file gets arrow's threads.
        read_options=pa_csv.ReadOptions(use_threads=not small, block_size=len(data) + 1 if small else 1 << 22,
                                        skip_rows_after_names=layout.skip_after_header),
        convert_options=pa_csv.ConvertOptions(include_columns=list(layout.column_types),
                                              column_types=dict(layout.column_types),
                                              null_values=NULL_VALUES, strings_can_be_null=False),
    )
    if table.num_rows == 0:
        return table, np.zeros(0, dtype=np.int64)
    if layout.date_format is None:
        raise ValueError("unrecognised date format in the first row")
    return table, _session_dates(table.column(layout.mapping["date"]), layout.date_format)


def _parse_csv(data: bytes, path: Path, layout: _CsvLayout | None = None) -> _ParsedBars:
    """Arrow fast path; on any conversion failure the slow pass names the line."""
    layout = layout or _csv_layout(data, path)
    try:
        table, dates = _arrow_read(data, layout)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise _locate_csv_error(data, path, layout, exc) from exc
    if table.num_rows == 0:
        raise NoDataError(f"{path} has a header but no rows")
    return _bars_from_table(table, dates, layout.mapping, path)


def _batchable_rows(data: bytes) -> int:
    """Data rows of a CSV whose rows can be counted by newlines (no quotes,
    no blank lines, no lone CR), or 0 when the file must be parsed alone."""
    # numpy over the bytes: bytes.count/"\n\n" in data cost ~100 us per file.
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    if len(newlines) == 0:
        return 0
    body_start = int(newlines[0]) + 1
    if body_start >= len(data) or data.find(b'"', body_start) >= 0:
        return 0
    gaps = np.diff(newlines)
    if data.find(b"\r", body_start) >= 0:
        before_newline_is_cr = raw[newlines - 1] == 13
        if np.count_nonzero(raw[body_start:] == 13) != np.count_nonzero(before_newline_is_cr[1:]):
            return 0  # a lone CR ends a line for arrow but not for this count
        if np.any((gaps == 2) & before_newline_is_cr[1:]):
            return 0  # a blank CRLF line (arrow skips it)
    if np.any(gaps == 1):
        return 0  # a blank line (arrow skips it)
    return len(newlines) - 1 + (0 if data.endswith(b"\n") else 1)


def _parse_csv_group(items: list[tuple[bytes, Path, int]], layout: _CsvLayout) -> list[_ParsedBars] | None:
    """Parse files that share a header in one arrow call and split the rows
    back per file (arrow's per-call cost is a third of a small file's parse).
    None when the joint parse fails or the rows do not add up: the caller
    then parses each file alone, which names the bad file and line."""
    parts: list = [layout.header_line, b"\n"]
    for data, _, _ in items:
        parts.append(memoryview(data)[data.find(b"\n") + 1:])  # no copy before the join
        if not data.endswith(b"\n"):
            parts.append(b"\n")
    try:
        table, dates = _arrow_read(b"".join(parts), layout)
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.num_rows != sum(rows for _, _, rows in items):
        return None
    values = {canon: table.column(layout.mapping[canon]).to_numpy()
              for canon in _NUMERIC_COLUMNS if canon in layout.mapping}
    out, offset = [], 0
    for _, path, rows in items:
        window = slice(offset, offset + rows)
        out.append(_ParsedBars(source=path, dates=dates[window], values={k: v[window] for k, v in values.items()},
                               table=table.slice(offset, rows)))
        offset += rows
    return out


def _session_dates(column: pa.ChunkedArray, date_format: str | None) -> np.ndarray:
    """Session dates as int64 ns; ValueError/ArrowInvalid on any bad or null value."""
    if column.null_count:
        raise ValueError("missing date")
    if date_format == _ISO_DATE:
        days = column if pa.types.is_date32(column.type) else pc.cast(column, pa.date32())
    elif date_format == _ISO_DATETIME:
        if not pc.all(pc.match_substring_regex(column, _DATE_PATTERNS[_ISO_DATETIME].pattern)).as_py():
            raise ValueError("a date does not match the file's ISO datetime format")
        # A time part (a vendor's local midnight or open) belongs to the
        # session of its own calendar date, whatever its zone offset says.
        days = pc.cast(pc.utf8_slice_codeunits(column, 0, 10), pa.date32())
    elif date_format == _COMPACT_DATE:
        if not pc.all(pc.match_substring_regex(column, _DATE_PATTERNS[_COMPACT_DATE].pattern)).as_py():
            raise ValueError("a date does not match the file's YYYYMMDD format")
        iso = pc.binary_join_element_wise(pc.utf8_slice_codeunits(column, 0, 4), pc.utf8_slice_codeunits(column, 4, 6),
                                          pc.utf8_slice_codeunits(column, 6, 8), "-")
        days = pc.cast(iso, pa.date32())
    elif date_format == _US_DATE:
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


def _bars_from_table(table: pa.Table, dates: np.ndarray, mapping: Mapping[str, str], path: Path) -> _ParsedBars:
    values = {canon: table.column(mapping[canon]).to_numpy() for canon in _NUMERIC_COLUMNS if canon in mapping}
    tickers = None
    if "ticker" in mapping:
        col = table.column(mapping["ticker"])
        tickers = pc.utf8_upper(pc.utf8_trim_whitespace(col.cast(pa.string()))).to_numpy(zero_copy_only=False)
    return _ParsedBars(source=path, dates=dates, values=values, table=table, tickers=tickers)


def _locate_csv_error(data: bytes, path: Path, layout: _CsvLayout, cause: Exception) -> MalformedDataError:
    """The slow pass: walk the file with the csv module and report the first
    bad line as a text editor counts it (header = line 1) with its value."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return MalformedDataError(f"{path}, line {line}: not UTF-8 text (byte {data[exc.start:exc.start + 1]!r})")
    reader = csv.reader(io.StringIO(text, newline=""))
    for _ in range(1 + layout.skip_after_header):
        next(reader, None)
    names = list(layout.names)
    positions = {canon: names.index(name) for canon, name in layout.mapping.items()}
    date_format: str | None = None
    for row in reader:
        line = reader.line_num
        if not row:
            continue  # arrow skips blank lines too
        if len(row) != len(names):
            return MalformedDataError(f"{path}, line {line}: expected {len(names)} fields, got {len(row)}: "
                                      f"{','.join(row)!r}")
        raw_date = row[positions["date"]]
        if raw_date in NULL_VALUES:
            return MalformedDataError(f"{path}, line {line}: missing date ({raw_date!r})")
        if date_format is None:
            date_format = _detect_date_format(raw_date)
            if date_format is None:
                return MalformedDataError(f"{path}, line {line}: unparseable date {raw_date!r}")
        problem = _date_problem(raw_date, date_format)
        if problem:
            return MalformedDataError(f"{path}, line {line}: {problem}")
        for canon in _NUMERIC_COLUMNS:
            if canon not in positions:
                continue
            value = row[positions[canon]]
            if value in NULL_VALUES or _NUMBER_RE.match(value.strip()):
                continue
            return MalformedDataError(f"{path}, line {line}: column {names[positions[canon]]!r}: "
                                      f"cannot parse {value!r} as a number")
    return MalformedDataError(f"{path}: unreadable CSV: {cause}")


def _date_problem(value: str, date_format: str) -> str | None:
    match = _DATE_PATTERNS[date_format].match(value)
    if not match:
        return f"date {value!r} does not match the file's date format {date_format}"
    try:
        if date_format == _US_DATE:
            dt.date(int(match.group(3)), int(match.group(1)), int(match.group(2)))
        elif date_format == _COMPACT_DATE:
            dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        else:
            dt.date.fromisoformat(value[:10])
    except ValueError as exc:
        return f"unparseable date {value!r} ({exc})"
    return None


def _parse_parquet(data: bytes, path: Path) -> _ParsedBars:
    try:
        names = list(pq.read_schema(pa.BufferReader(data)).names)
        mapping = _map_columns(names, path)
        _require_columns(mapping, names, path)
        wanted = [mapping[c] for c in ("date", "ticker", *_NUMERIC_COLUMNS) if c in mapping]
        table = pq.read_table(pa.BufferReader(data), columns=wanted)
    except pa.ArrowException as exc:
        raise MalformedDataError(f"{path}: not a readable Parquet file: {exc}") from exc
    if table.num_rows == 0:
        raise NoDataError(f"{path} has no rows")
    columns = {}
    for canon in _NUMERIC_COLUMNS:
        if canon in mapping:
            columns[mapping[canon]] = _parquet_numeric(table.column(mapping[canon]), path, mapping[canon])
    date_col = table.column(mapping["date"])
    columns[mapping["date"]] = date_col
    if "ticker" in mapping:
        columns[mapping["ticker"]] = table.column(mapping["ticker"]).cast(pa.string())
    typed = pa.table(columns)
    dates = _parquet_dates(date_col, path, mapping["date"])
    return _bars_from_table(typed, dates, mapping, path)


def _parquet_numeric(column: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    if pa.types.is_floating(column.type) and column.type == pa.float64():
        return column
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.if_else(pc.is_in(column, pa.array(NULL_VALUES)), None, column)
        return column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        for i, value in enumerate(column.to_pylist(), start=1):
            if value is None:
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                raise MalformedDataError(f"{path}, row {i}: column {name!r}: cannot parse {value!r} as a number") from exc
        raise MalformedDataError(f"{path}: column {name!r}: {exc}") from exc


def _parquet_dates(column: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if column.null_count:
        row = pc.index(pc.is_null(column), True).as_py() + 1
        raise MalformedDataError(f"{path}, row {row}: column {name!r}: missing date")
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            # The session is the local calendar date of the vendor's stamp.
            column = pc.local_timestamp(column)
        return pc.floor_temporal(column, unit="day").cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy()
    if pa.types.is_date(kind):
        return column.cast(pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64) * 86_400_000_000_000
    text = column.cast(pa.string())
    first = text[0].as_py()
    date_format = _detect_date_format(first)
    try:
        return _session_dates(text, date_format)
    except (pa.ArrowInvalid, ValueError) as exc:
        for i, value in enumerate(text.to_pylist(), start=1):
            fmt = date_format or _ISO_DATE
            problem = _date_problem(value, fmt) if value is not None else "missing date"
            if problem:
                raise MalformedDataError(f"{path}, row {i}: column {name!r}: {problem}") from exc
        raise MalformedDataError(f"{path}: column {name!r}: {exc}") from exc


# --------------------------------------------------------------------------
# long files: rows per symbol
# --------------------------------------------------------------------------
def _group_rows(tickers: np.ndarray) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """A row order that makes each ticker's rows contiguous (file order kept
    within a ticker), and each ticker's [start, stop) in that order.  Rows
    without a ticker are left out."""
    codes, uniques = pd.factorize(tickers, use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    bounds = np.r_[0, np.cumsum(np.bincount(codes[codes >= 0], minlength=len(uniques)))]
    groups = {str(u): (int(bounds[i]), int(bounds[i + 1])) for i, u in enumerate(uniques) if u}
    return order, groups


def _rows_of_symbol_if_mixed(bars: _ParsedBars, symbol: str, notes: list[str]) -> _ParsedBars:
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
    return _ParsedBars(source=bars.source, dates=bars.dates[rows], values={k: v[rows] for k, v in bars.values.items()},
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


def _contract_frame(bars: _ParsedBars, request: FetchRequest) -> tuple[pd.DataFrame, str, list[str]]:
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
    vol_mask = np.isnan(volume)
    # Volumes are integers in the store; a missing one stays missing (NULL).
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


# --------------------------------------------------------------------------
# writing (benchmark and test fixtures)
# --------------------------------------------------------------------------
YAHOO_HEADER = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
                "adj_close": "Adj Close", "volume": "Volume", "dividend": "Dividends", "split_ratio": "Stock Splits"}


def write_yahoo_csv(path: os.PathLike | str, frame: pd.DataFrame) -> None:
    """Write a contract frame as a Yahoo-style CSV (``Date,Open,High,Low,Close,
    Adj Close,Volume`` plus ``Dividends,Stock Splits`` when the frame has
    them; a neutral split is written as Yahoo's 0).  Dates are ISO, missing
    values empty, floats in shortest round-trip form; ``.gz`` paths are gzipped."""
    columns = {}
    for canon in (*BAR_COLUMNS, "dividend", "split_ratio"):
        if canon not in frame.columns:
            continue
        series = frame[canon]
        if canon == "date":
            array = pa.array(pd.DatetimeIndex(series).values.astype("datetime64[D]"), type=pa.date32())
        elif canon == "volume":
            array = pa.array(series.astype("Int64"), type=pa.int64(), from_pandas=True)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            if canon == "split_ratio":
                values = np.where(values == 1.0, 0.0, values)
            array = pa.array(values, type=pa.float64(), from_pandas=True)
        columns[YAHOO_HEADER[canon]] = array
    table = pa.table(columns)
    sink = io.BytesIO()
    # Arrow quotes header names; Yahoo's header is bare, so it is written here.
    sink.write((",".join(columns) + "\n").encode())
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    data = sink.getvalue()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6)
    Path(path).write_bytes(data)

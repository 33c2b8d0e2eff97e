"""CSV parsing: pyarrow with explicit column types, straight into arrays.

Only when arrow rejects a file does a slow pure-Python pass run, and its one
job is to name the line and the value for :class:`MalformedDataError`: a bad
row is never skipped.  Per-symbol files that share a header are parsed in one
arrow call (:func:`parse_csv_group`).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from data.providers.base import MalformedDataError, NoDataError
from data.providers.file.bars import ParsedBars, bars_from_table, volume_problem
from data.providers.file.columns import (ISO_DATE, NULL_VALUES, NUMBER_RE, NUMERIC_COLUMNS, csv_header,
                                         date_problem, detect_date_format, map_columns, require_columns,
                                         session_dates, shown)


@dataclass(frozen=True)
class CsvLayout:
    """What the header says: names, canonical mapping, date format, arrow types."""

    names: tuple[str, ...]
    mapping: Mapping[str, str]
    date_format: str | None
    column_types: Mapping[str, pa.DataType]
    header_line: bytes          # without BOM and line end: files with equal ones can share a parse
    skip_after_header: int = 0  # yfinance's extra header rows


def csv_layout(data: bytes, path: Path) -> CsvLayout:
    """Read the header (and the first row's date format); SchemaError when
    required columns are missing, NoDataError for an empty file."""
    if len(data) < 4096 and not data.strip():
        raise NoDataError(f"{path} is empty")
    names, skip, first_row = csv_header(data, path)
    if skip:
        mapping = map_columns(["Date", *names[1:]], path)
        mapping["date"] = names[0]
    else:
        mapping = map_columns(names, path)
    require_columns(mapping, names, path)
    date_format = None
    if first_row is not None:
        try:
            fields = next(csv.reader([first_row]), [])
        except csv.Error:
            fields = []  # no date format: the full parse names the line
        position = names.index(mapping["date"])
        if position < len(fields):
            date_format = detect_date_format(fields[position])
    column_types = {mapping[c]: pa.float64() for c in NUMERIC_COLUMNS if c in mapping}
    column_types[mapping["date"]] = pa.date32() if date_format == ISO_DATE else pa.string()
    if "ticker" in mapping:
        column_types[mapping["ticker"]] = pa.string()
    newline = data.find(b"\n")
    if first_row is None and (newline < 0 or not data[newline + 1:].strip()):
        raise NoDataError(f"{path} has a header but no rows")
    header_line = data[:newline if newline >= 0 else len(data)].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
    return CsvLayout(tuple(names), mapping, date_format, column_types, header_line, skip)


_ONE_BLOCK_BYTES = 16 << 20


def _arrow_read(data: bytes, layout: CsvLayout) -> tuple[pa.Table, np.ndarray]:
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
    return table, session_dates(table.column(layout.mapping["date"]), layout.date_format)


def parse_csv(data: bytes, path: Path, layout: CsvLayout | None = None, *, check_volumes: bool = True) -> ParsedBars:
    """Arrow fast path; on any conversion failure the slow pass names the line.

    A volume the store cannot hold is MalformedDataError naming the line,
    unless ``check_volumes`` is off (a long file: the symbol whose row it is
    fails alone, in :func:`contract_frame`)."""
    layout = layout or csv_layout(data, path)
    try:
        table, dates = _arrow_read(data, layout)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise _locate_csv_error(data, path, layout, exc) from exc
    if table.num_rows == 0:
        raise NoDataError(f"{path} has a header but no rows")
    bars = bars_from_table(table, dates, layout.mapping, path)
    if check_volumes and "volume" in bars.values:
        _check_volumes(bars, data, layout)
    return bars


def _check_volumes(bars: ParsedBars, data: bytes, layout: CsvLayout) -> None:
    """A volume the store cannot hold (inf, 1e20, 1018.6) is
    MalformedDataError naming the line and the value as written."""
    problem = volume_problem(bars.values["volume"])
    if problem is None:
        return
    row, why = problem
    column = layout.mapping["volume"]
    line, text = _row_source(data, layout, row, column)
    where = f"line {line}" if line else f"data row {row + 1}"
    value = shown(text) if text is not None else repr(float(bars.values["volume"][row]))
    raise MalformedDataError(f"{bars.source}, {where}: column {shown(column)}: volume {value} {why}")


def _row_source(data: bytes, layout: CsvLayout, row: int, column: str) -> tuple[int | None, str | None]:
    """The line number (header = 1) of data row ``row`` and its ``column``
    text as written; (None, None) when the csv module cannot walk the file."""
    position = list(layout.names).index(column)
    if batchable_rows(data):  # one row per line: index the newlines
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        k = 1 + layout.skip_after_header + row
        start = int(newlines[k - 1]) + 1
        end = int(newlines[k]) if k < len(newlines) else len(data)
        fields = data[start:end].decode("utf-8", errors="replace").rstrip("\r").split(",")
        return k + 1, fields[position] if position < len(fields) else None
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
    try:
        for _ in range(1 + layout.skip_after_header):
            next(reader, None)
        seen = -1
        for fields in reader:
            if fields:
                seen += 1
                if seen == row:
                    return reader.line_num, fields[position] if position < len(fields) else None
    except csv.Error:
        pass
    return None, None


def batchable_rows(data: bytes) -> int:
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


def parse_csv_group(items: list[tuple[bytes, Path, int]], layout: CsvLayout) -> list[ParsedBars | None] | None:
    """Parse files that share a header in one arrow call and split the rows
    back per file (arrow's per-call cost is a third of a small file's parse).
    None when the joint parse fails or the rows do not add up, and None for
    a file with a volume to reject: the caller then parses those
    files alone, which names the bad file and line."""
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
              for canon in NUMERIC_COLUMNS if canon in layout.mapping}
    out: list[ParsedBars | None] = []
    offset = 0
    for _, path, rows in items:
        window = slice(offset, offset + rows)
        bars = ParsedBars(source=path, dates=dates[window], values={k: v[window] for k, v in values.items()},
                          table=table.slice(offset, rows))
        if "volume" in bars.values and volume_problem(bars.values["volume"]):
            bars = None  # parsed alone: names the line of the bad volume
        out.append(bars)
        offset += rows
    return out


def _locate_csv_error(data: bytes, path: Path, layout: CsvLayout, cause: Exception) -> MalformedDataError:
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
    try:
        problem = _first_bad_row(reader, names, positions)
    except csv.Error as exc:  # a field over the csv module's limit, a stray NUL
        return MalformedDataError(f"{path}, line {reader.line_num}: unreadable CSV row ({exc})")
    if problem:
        return MalformedDataError(f"{path}, {problem}")
    return MalformedDataError(f"{path}: unreadable CSV: {shown(cause, 200)}")


def _first_bad_row(reader, names: list[str], positions: Mapping[str, int]) -> str | None:
    """``line N: what`` for the first row arrow cannot have taken, or None."""
    date_format: str | None = None
    for row in reader:
        line = reader.line_num
        if not row:
            continue  # arrow skips blank lines too
        if len(row) != len(names):
            return f"line {line}: expected {len(names)} fields, got {len(row)}: {shown(','.join(row))}"
        raw_date = row[positions["date"]]
        if raw_date in NULL_VALUES:
            return f"line {line}: missing date ({raw_date!r})"
        if date_format is None:
            date_format = detect_date_format(raw_date)
            if date_format is None:
                return f"line {line}: unparseable date {shown(raw_date)}"
        problem = date_problem(raw_date, date_format)
        if problem:
            return f"line {line}: {problem}"
        for canon in NUMERIC_COLUMNS:
            if canon not in positions:
                continue
            value = row[positions[canon]]
            if value in NULL_VALUES or NUMBER_RE.match(value.strip()):
                continue
            return f"line {line}: column {shown(names[positions[canon]])}: cannot parse {shown(value)} as a number"
    return None

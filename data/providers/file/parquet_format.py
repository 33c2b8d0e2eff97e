"""Parquet parsing: the columns read by name, typed, dates as session dates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.providers.base import MalformedDataError, NoDataError
from data.providers.file.bars import ParsedBars, bars_from_table, volume_problem
from data.providers.file.columns import (ISO_DATE, NULL_VALUES, NUMERIC_COLUMNS, date_problem, detect_date_format,
                                         map_columns, require_columns, session_dates, shown)


def parse_parquet(data: bytes, path: Path, *, check_volumes: bool = True) -> ParsedBars:
    """The file's bars in file order; MalformedDataError naming the row of
    a bad value (a volume the store cannot hold included, unless
    ``check_volumes`` is off: see :func:`parse_csv`)."""
    try:
        names = list(pq.read_schema(pa.BufferReader(data)).names)
        mapping = map_columns(names, path)
        require_columns(mapping, names, path)
        wanted = [mapping[c] for c in ("date", "ticker", *NUMERIC_COLUMNS) if c in mapping]
        table = pq.read_table(pa.BufferReader(data), columns=wanted)
    except pa.ArrowException as exc:
        raise MalformedDataError(f"{path}: not a readable Parquet file: {exc}") from exc
    if table.num_rows == 0:
        raise NoDataError(f"{path} has no rows")
    columns = {}
    for canon in NUMERIC_COLUMNS:
        if canon in mapping:
            columns[mapping[canon]] = _parquet_numeric(table.column(mapping[canon]), path, mapping[canon])
    date_col = table.column(mapping["date"])
    columns[mapping["date"]] = date_col
    if "ticker" in mapping:
        columns[mapping["ticker"]] = table.column(mapping["ticker"]).cast(pa.string())
    typed = pa.table(columns)
    dates = _parquet_dates(date_col, path, mapping["date"])
    bars = bars_from_table(typed, dates, mapping, path)
    problem = volume_problem(bars.values["volume"]) if check_volumes and "volume" in bars.values else None
    if problem:
        row, why = problem
        raise MalformedDataError(f"{path}, row {row + 1}: column {shown(mapping['volume'])}: "
                                 f"volume {bars.values['volume'][row]!r} {why}")
    return bars


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
                raise MalformedDataError(f"{path}, row {i}: column {shown(name)}: cannot parse {shown(value)} "
                                         f"as a number") from exc
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
    date_format = detect_date_format(first)
    try:
        return session_dates(text, date_format)
    except (pa.ArrowInvalid, ValueError) as exc:
        for i, value in enumerate(text.to_pylist(), start=1):
            fmt = date_format or ISO_DATE
            problem = date_problem(value, fmt) if value is not None else "missing date"
            if problem:
                raise MalformedDataError(f"{path}, row {i}: column {name!r}: {problem}") from exc
        raise MalformedDataError(f"{path}: column {name!r}: {exc}") from exc

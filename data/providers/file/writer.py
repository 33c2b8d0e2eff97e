"""Writing Yahoo-style CSV files (benchmark and test fixtures)."""
from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from data.providers.base import BAR_COLUMNS

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

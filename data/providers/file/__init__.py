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
Volumes must fit the store (whole numbers below 2**63): ``inf``, ``1e20`` or
``1018.6`` is MalformedDataError naming the line, never cast or rounded.

Bad input stays one symbol's outcome: whatever one file (a symlink loop, a
corrupt gzip, a field over the csv limit) makes reading or parsing raise is
that symbol's typed error naming the file; only a missing data directory
fails the whole provider.  Text quoted from a file is escaped and cut
(:func:`columns.shown`).  The table of cases is in ``docs/providers.md``.

The package, one module per job: ``directory`` (which file holds which
symbol), ``columns`` (column names and date formats), ``csv_format`` and
``parquet_format`` (parsing), ``bars`` (sort, adjust, window: the contract
frame), ``provider`` (the provider class), ``writer`` (Yahoo-style CSV for
fixtures and benchmarks).
"""
from __future__ import annotations

from data.providers.file.bars import compute_adjustment_factors
from data.providers.file.columns import NULL_VALUES, REQUIRED_COLUMNS
from data.providers.file.directory import DATA_SUFFIXES, DataDirectoryNotFound, require_data_directory
from data.providers.file.provider import FileDataProvider
from data.providers.file.writer import YAHOO_HEADER, write_yahoo_csv

__all__ = ["DATA_SUFFIXES", "NULL_VALUES", "REQUIRED_COLUMNS", "YAHOO_HEADER", "DataDirectoryNotFound",
           "FileDataProvider", "compute_adjustment_factors", "require_data_directory", "write_yahoo_csv"]

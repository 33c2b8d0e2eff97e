"""Per-file cost of the file provider on Yahoo-style CSVs (not a test).

Writes N files of 1,260 rows with ``write_yahoo_csv`` into a temporary
directory, then times ``FileDataProvider.fetch`` in batches of 50 (as the
ingestion calls it) and ``fetch_one`` file by file; prints ms per file
(best and median of several repetitions; files are in the page cache).

    .venv/bin/python bench/file_provider_parse.py [--files 500] [--reps 5]
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data.providers.base import FetchRequest, chunks
from data.providers.file import FileDataProvider, write_yahoo_csv


def write_files(directory: Path, count: int, rows: int = 1260, seed: int = 0) -> list[str]:
    """``count`` Yahoo-style CSVs of ``rows`` business days; returns the symbols."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2021-01-04", periods=rows, unit="ns")
    symbols = [f"SYM{i:05d}" for i in range(count)]
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
        frame = pd.DataFrame({"date": days, "open": close.round(4), "high": (close * 1.01).round(4),
                              "low": (close * 0.99).round(4), "close": close.round(4),
                              "adj_close": (close * 0.98).round(6),
                              "volume": pd.array(rng.integers(100_000, 10_000_000, rows), dtype="Int64")})
        write_yahoo_csv(directory / f"{symbol}.csv", frame)
    return symbols


def time_fetch(directory: Path, symbols: list[str], batch: int, reps: int) -> list[float]:
    requests = [FetchRequest(s, "stocks", dt.date(2000, 1, 1), dt.date(2030, 12, 31)) for s in symbols]
    per_file_ms = []
    for _ in range(reps):
        provider = FileDataProvider(directory=directory)
        t0 = time.perf_counter()
        if batch <= 1:
            for req in requests:
                provider.fetch_one(req)
        else:
            for group in chunks(requests, batch):
                for outcome in provider.fetch(group):
                    assert outcome.error is None, outcome.error
        per_file_ms.append((time.perf_counter() - t0) / len(requests) * 1000)
    return per_file_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        t0 = time.perf_counter()
        symbols = write_files(directory, args.files)
        print(f"wrote {args.files} files x 1260 rows in {time.perf_counter() - t0:.2f} s")
        for batch in (50, 1):
            times = time_fetch(directory, symbols, batch, args.reps)
            label = "fetch, batches of 50" if batch > 1 else "fetch_one, one by one"
            print(f"{label:24s} best {min(times):.3f} ms/file, median {statistics.median(times):.3f} ms/file")


if __name__ == "__main__":
    main()

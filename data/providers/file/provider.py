"""The ``file`` provider class: serve requests from a data directory.

See the package docstring for the layouts and content accepted.  Per-symbol
CSV files that share a header are parsed together; Parquet files, long
files and whatever the joint parse cannot take are served one by one.
"""
from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from data.providers.base import (FetchOutcome, FetchRequest, FetchResult, NoDataError, ProviderError,
                                 SingleSymbolProvider)
from data.providers.file.bars import ParsedBars, contract_frame, group_rows, rows_of_symbol_if_mixed
from data.providers.file.csv_format import CsvLayout, batchable_rows, csv_layout, parse_csv, parse_csv_group
from data.providers.file.directory import (DATA_SUFFIXES, DataDirectoryNotFound, DirectoryIndex, find_long_files,
                                           per_symbol_paths, read_payload, require_data_directory, scan_directory,
                                           unreadable)
from data.providers.file.parquet_format import parse_parquet
from data.providers.guard import FetchGuard, checked
from core.symbols import filename_for


@dataclass
class _Staged:
    """A per-symbol CSV read and its header understood, waiting to be parsed."""

    request: FetchRequest
    path: Path
    data: bytes
    layout: CsvLayout
    rows: int                      # countable data rows; 0 = parse this file alone
    notes: list[str]
    elapsed: float                 # seconds spent on this request so far
    bars: ParsedBars | None = None


class FileDataProvider(SingleSymbolProvider):
    """Daily bars from a directory of per-symbol or long-format CSV/Parquet files."""

    name = "file"
    batch_size = 50
    parallelism = "process"   # parsing is CPU-bound: keep it off the writer's GIL

    def __init__(self, directory: os.PathLike | str | None, *, long_cache_size: int = 2,
                 guard: FetchGuard | None = None):
        # Nothing is read here: the router builds providers before it knows
        # whether this one will be asked, so the index is built on first use.
        self.directory = Path(directory) if directory not in (None, "") else None
        self.guard = guard
        self._index: DirectoryIndex | None = None
        self._lock = threading.Lock()
        # Parsed long files, grouped by symbol; a long file is parsed once and
        # then served symbol by symbol (bounded: such files can be large).
        self._long_cache: OrderedDict[Path, tuple[ParsedBars, dict[str, tuple[int, int]]]] = OrderedDict()
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
        are parsed in one arrow call (see :func:`parse_csv_group`); Parquet,
        long files and any file the joint parse cannot take go one by one.

        A batch the guard refuses raises :class:`GuardViolation` here, before
        any file is read.  A missing directory raises
        :class:`DataDirectoryNotFound` out of the generator: the whole
        provider failed, not one symbol."""
        return self._fetch_batch(checked(self.guard, requests))

    def _fetch_batch(self, requests: list[FetchRequest]) -> Iterator[FetchOutcome]:
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
                data, _ = read_payload(path)
                layout = csv_layout(data, path)
            except Exception as exc:  # noqa: BLE001 - one file's failure is its symbol's outcome
                yield self._failure(request, unreadable(path, exc), time.perf_counter() - t0)
                continue
            joinable = ("ticker" not in layout.mapping and layout.date_format is not None
                        and not layout.skip_after_header)
            staged.append(_Staged(request, path, data, layout, batchable_rows(data) if joinable else 0,
                                  notes, time.perf_counter() - t0))

        groups: dict[tuple[bytes, str | None], list[_Staged]] = {}
        for item in staged:
            if item.rows:
                groups.setdefault((item.layout.header_line, item.layout.date_format), []).append(item)
        for members in groups.values():
            if len(members) < 2:
                continue
            t0 = time.perf_counter()
            try:
                parsed = parse_csv_group([(m.data, m.path, m.rows) for m in members], members[0].layout)
            except Exception:  # noqa: BLE001 - each file is then parsed alone and names its own problem
                parsed = None
            share = (time.perf_counter() - t0) / len(members)
            for member, bars in zip(members, parsed or [None] * len(members)):
                member.bars = bars
                member.elapsed += share

        for item in staged:
            t0 = time.perf_counter()
            try:
                bars = item.bars or parse_csv(item.data, item.path, item.layout)
                if bars.tickers is not None:
                    bars = rows_of_symbol_if_mixed(bars, item.request.symbol, item.notes)
                result = self._result(item.request, bars, item.data, "csv", item.notes)
            except Exception as exc:  # noqa: BLE001 - one file's failure is its symbol's outcome
                yield self._failure(item.request, unreadable(item.path, exc), item.elapsed + time.perf_counter() - t0)
                continue
            item.data = b""  # the payload now lives in the result only
            yield FetchOutcome(item.request, result=result,
                               latency_ms=(item.elapsed + time.perf_counter() - t0) * 1000)
        yield from super().fetch(alone)

    def fetch_one(self, request: FetchRequest) -> FetchResult:
        """Bars of ``request.symbol`` within [start, end] from this directory.

        Whatever reading or parsing its file raises is a typed error naming
        the file (MALFORMED_DATA, or PROVIDER_CRASH for a bug), so that
        :meth:`fetch` turns it into this symbol's outcome alone; only a
        missing directory is raised as such."""
        index = self._build_index()
        path, notes = self._resolve(index, request.symbol)
        try:
            return self._fetch_file(index, request, path, notes)
        except (ProviderError, DataDirectoryNotFound):
            raise
        except Exception as exc:  # noqa: BLE001 - contained to this symbol
            raise unreadable(path or self.directory, exc) from exc

    def _fetch_file(self, index: DirectoryIndex, request: FetchRequest, path: Path | None,
                    notes: list[str]) -> FetchResult:
        if path is None:
            bars, raw = self._from_long_files(index, request.symbol)
            return self._result(request, bars, raw, "csv", notes)
        raw, is_parquet = read_payload(path)
        bars = _parse_payload(raw, path, is_parquet)
        if bars.tickers is not None:
            bars = rows_of_symbol_if_mixed(bars, request.symbol, notes)
        return self._result(request, bars, raw, "parquet" if is_parquet else "csv", notes)

    def _result(self, request: FetchRequest, bars: ParsedBars, raw: bytes, raw_suffix: str,
                notes: list[str]) -> FetchResult:
        frame, adjustment, adj_notes = contract_frame(bars, request)
        return FetchResult(symbol=request.symbol, provider=self.name, frame=frame, adjustment=adjustment,
                           raw_payload=raw, raw_suffix=raw_suffix, notes=notes + adj_notes)

    def _failure(self, request: FetchRequest, exc: ProviderError, seconds: float) -> FetchOutcome:
        exc.provider = exc.provider or self.name
        exc.symbol = exc.symbol or request.symbol
        return FetchOutcome(request, error=exc, latency_ms=seconds * 1000)

    def _resolve(self, index: DirectoryIndex, symbol: str) -> tuple[Path | None, list[str]]:
        """The per-symbol file for ``symbol`` (None: look in long files)."""
        paths = per_symbol_paths(index, symbol)
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
    def _build_index(self) -> DirectoryIndex:
        with self._lock:
            if self._index is None:
                self._index = scan_directory(require_data_directory(self.directory))
            return self._index

    def _long_index(self) -> DirectoryIndex:
        """The index with long files found (see :func:`find_long_files`)."""
        index = self._build_index()
        with self._lock:
            if index.long_files is None:
                find_long_files(index)
            return index

    def _from_long_files(self, index: DirectoryIndex, symbol: str) -> tuple[ParsedBars, bytes]:
        key = symbol.strip().upper()
        holders = [lf.path for lf in self._long_index().long_files if key in lf.symbols]
        if not holders:
            looked = sorted(set((symbol, filename_for(symbol))))
            raise NoDataError(f"no file for {symbol} in {self.directory} (looked for "
                              f"{' / '.join(looked)} with {', '.join(DATA_SUFFIXES)}, and a ticker column in "
                              f"{len(index.files)} file(s))" + _unreadable_note(index), symbol=symbol)
        parts = []
        for path in holders:
            bars, groups = self._parsed_long_file(path)
            start, stop = groups[key]
            parts.append(ParsedBars(source=path, dates=bars.dates[start:stop],
                                    values={k: v[start:stop] for k, v in bars.values.items()},
                                    table=bars.table.slice(start, stop - start)))
        if len(parts) == 1:
            merged = parts[0]
        else:
            common = set.intersection(*(set(p.values) for p in parts))
            merged = ParsedBars(source=parts[0].source, dates=np.concatenate([p.dates for p in parts]),
                                values={k: np.concatenate([p.values[k] for p in parts]) for k in common},
                                table=pa.concat_tables([p.table for p in parts], promote_options="permissive"))
        sink = io.BytesIO()
        pa_csv.write_csv(merged.table, sink)
        return merged, sink.getvalue()

    def _parsed_long_file(self, path: Path) -> tuple[ParsedBars, dict[str, tuple[int, int]]]:
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
            raw, is_parquet = read_payload(path)
            # Volumes are judged per symbol (contract_frame): one bad row
            # fails the symbol it belongs to, not every symbol of the file.
            bars = _parse_payload(raw, path, is_parquet, check_volumes=False)
            order, groups = group_rows(bars.tickers)
            regrouped = ParsedBars(source=path, dates=bars.dates[order],
                                   values={k: v[order] for k, v in bars.values.items()},
                                   table=bars.table.take(pa.array(order)).combine_chunks())
            with self._lock:
                self._long_cache[path] = (regrouped, groups)
                while len(self._long_cache) > self._long_cache_size:
                    self._long_cache.popitem(last=False)
            return regrouped, groups


def _unreadable_note(index: DirectoryIndex) -> str:
    """For a NO_DATA message: the files whose ticker column could not be read."""
    if not index.long_errors:
        return ""
    return f"; {len(index.long_errors)} file(s) could not be read, first: {index.long_errors[0]}"


def _parse_payload(data: bytes, path: Path, is_parquet: bool, *, check_volumes: bool = True) -> ParsedBars:
    if is_parquet:
        return parse_parquet(data, path, check_volumes=check_volumes)
    return parse_csv(data, path, check_volumes=check_volumes)

"""The data directory: which file holds which symbol.

Per-symbol files are found by name (the symbol in any case, or
:func:`core.symbols.filename_for`); long-format files (a ``ticker``/``symbol``
column) are found by reading only that column, on first need.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from data.providers.base import MalformedDataError, ProviderError
from core.symbols import filename_for
from data.providers.file.columns import NULL_VALUES, csv_header, map_columns

# Longest suffix first so that ``x.csv.gz`` is not taken for ``x.csv`` + ``.gz``.
DATA_SUFFIXES = (".csv.gz", ".csv", ".parquet")


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


@dataclass
class LongFile:
    path: Path
    symbols: frozenset[str]


@dataclass
class DirectoryIndex:
    """File names by symbol key, and (built on first need) long-file symbols."""

    per_symbol: dict[str, list[Path]]
    files: list[Path]
    long_files: list[LongFile] | None = None
    long_errors: list[str] = field(default_factory=list)


def data_stem(file_name: str) -> str | None:
    lower = file_name.lower()
    for suffix in DATA_SUFFIXES:
        if lower.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None


def suffix_preference(path: Path) -> tuple[int, str]:
    lower = path.name.lower()
    rank = next(i for i, s in enumerate((".csv", ".csv.gz", ".parquet")) if lower.endswith(s)
                and not (s == ".csv" and lower.endswith(".csv.gz")))
    return rank, path.name


def unreadable(path: Path, exc: OSError) -> MalformedDataError:
    return MalformedDataError(f"{path}: cannot read the file: {exc}")


def read_payload(path: Path) -> tuple[bytes, bool]:
    """The file's bytes (a ``.csv.gz`` decompressed: the archive gzips again)."""
    lower = path.name.lower()
    data = path.read_bytes()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise MalformedDataError(f"{path}: not a readable gzip file: {exc}") from exc
    return data, lower.endswith(".parquet")


def ticker_values(path: Path) -> frozenset[str] | None:
    """Symbols in the file's ticker column (reading only that column), or
    None when the file has no ticker column."""
    lower = path.name.lower()
    if lower.endswith(".parquet"):
        names = pq.read_schema(path).names
        mapping = map_columns(names, path)
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
        names, _, _ = csv_header(head)
        mapping = map_columns(names, path)
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


def scan_directory(directory: Path) -> DirectoryIndex:
    """Data files of ``directory`` by upper-cased stem, the preferred suffix first."""
    per_symbol: dict[str, list[Path]] = {}
    files: list[Path] = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        stem = data_stem(entry.name)
        if stem is None or not entry.is_file():
            continue
        path = Path(entry.path)
        files.append(path)
        per_symbol.setdefault(stem.upper(), []).append(path)
    for paths in per_symbol.values():
        paths.sort(key=suffix_preference)
    return DirectoryIndex(per_symbol=per_symbol, files=files)


def find_long_files(index: DirectoryIndex) -> None:
    """Fill ``index.long_files``: headers of every file are read, and of
    files with a ticker column only that column."""
    long_files = []
    for path in index.files:
        try:
            symbols = ticker_values(path)
        except (OSError, ValueError, pa.ArrowException, ProviderError) as exc:
            # One unreadable file must not hide the others' symbols;
            # test() reports it.
            index.long_errors.append(f"{path.name}: {exc}")
            continue
        if symbols is not None:
            long_files.append(LongFile(path, symbols))
    index.long_files = long_files


def per_symbol_paths(index: DirectoryIndex, symbol: str) -> list[Path]:
    """Files named after ``symbol`` (as written or as ``filename_for``), best first."""
    keys = dict.fromkeys((symbol.upper(), filename_for(symbol).upper()))
    paths: list[Path] = []
    for key in keys:
        paths.extend(p for p in index.per_symbol.get(key, ()) if p not in paths)
    return paths

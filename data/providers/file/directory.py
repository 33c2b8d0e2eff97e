"""The data directory: which file holds which symbol.

Per-symbol files are found by name (the symbol in any case, or
:func:`core.symbols.filename_for`); long-format files (a ``ticker``/``symbol``
column) are found by reading only that column, on first need.
"""
from __future__ import annotations

import csv
import gzip
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from core.errors import MissingInputError
from data.providers.base import MalformedDataError, ProviderCrash, ProviderError
from core.symbols import filename_for
from data.providers.file.columns import NULL_VALUES, csv_header, map_columns

# Longest suffix first so that ``x.csv.gz`` is not taken for ``x.csv`` + ``.gz``.
DATA_SUFFIXES = (".csv.gz", ".csv", ".parquet")


class DataDirectoryNotFound(MissingInputError):
    """The provider's directory is not set, does not exist or is not a
    directory: point ``--data-dir`` (or ``FILE_PROVIDER_DIR``) at it.

    An operator input, not a provider's failure: the router checks it when
    it is built, before a run changes any state, and ``fetch`` raises it
    (never a per-symbol outcome) should the directory vanish later.
    """

    def __init__(self, directory: os.PathLike | str, why: str = "does not exist"):
        super().__init__(f"data directory {directory} {why}")
        self.directory = Path(directory)
        self.why = why

    def __reduce__(self):
        # Rebuilt from its own arguments when it comes back from a worker process.
        return (type(self), (str(self.directory), self.why))


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


# What reading or parsing one bad file can raise besides our typed errors:
# each is that file's symbol's MALFORMED_DATA, never the batch's failure.
FILE_ERRORS = (OSError, EOFError, zlib.error, csv.Error, ValueError, pa.ArrowException)


def error_name(exc: BaseException) -> str:
    """``zlib.error``, ``OSError``: the exception's class as a reader knows it."""
    module = type(exc).__module__
    return type(exc).__qualname__ if module == "builtins" else f"{module.lstrip('_')}.{type(exc).__qualname__}"


def unreadable(path: Path, exc: BaseException) -> ProviderError:
    """``exc``, raised while reading or parsing ``path``, as a typed error
    naming the file: MALFORMED_DATA for what a bad file can raise, a
    PROVIDER_CRASH (still one symbol's outcome) for anything else."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, FILE_ERRORS):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return MalformedDataError(f"{path}: cannot read the file: {reason} ({error_name(exc)})")
    return ProviderCrash.wrapping(exc, prefix=f"{path}: ")


def read_payload(path: Path) -> tuple[bytes, bool]:
    """The file's bytes (a ``.csv.gz`` decompressed: the archive gzips again)."""
    lower = path.name.lower()
    data = path.read_bytes()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedDataError(f"{path}: not a readable gzip file: {exc} ({error_name(exc)})") from exc
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
        names, _, _ = csv_header(head, path)
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
    """Data files of ``directory`` by upper-cased stem, the preferred suffix first.

    An entry that cannot even be inspected (a symlink loop, a link into a
    directory we may not search) is kept under its name: reading it then
    fails the symbol it is named after, naming the path, and nothing else.
    Directories, FIFOs and dangling links are not data files and are skipped.
    """
    per_symbol: dict[str, list[Path]] = {}
    files: list[Path] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise DataDirectoryNotFound(directory, f"cannot be listed: {exc.strerror or exc}") from exc
    for entry in entries:
        stem = data_stem(entry.name)
        if stem is None:
            continue
        try:
            if not entry.is_file():
                continue
        except OSError:
            pass  # kept: fetching it names the path and the reason
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
        except Exception as exc:  # noqa: BLE001 - contained: one file, reported
            # One unreadable file must not hide the others' symbols; test()
            # and the NO_DATA message of a symbol not found report it.
            index.long_errors.append(str(unreadable(path, exc)))
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

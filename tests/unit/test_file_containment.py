"""Issue 10, file provider: what one bad entry of the data directory can
raise stays that symbol's typed outcome, naming the file (and line)."""
from __future__ import annotations

import datetime as dt
import gzip
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data.providers.file.provider as provider_module
from data.providers.base import FetchRequest, MalformedDataError, NoDataError, ProviderCrash
from data.providers.file import DataDirectoryNotFound, FileDataProvider
from data.providers.file.bars import volume_problem
from data.providers.file.columns import shown

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,10.0,11.0,9.5,10.5,10.25,1000
2024-01-03,10.5,11.5,10.0,11.0,10.75,2000
2024-01-04,11.0,12.0,10.5,11.5,11.25,3000
"""


def request(symbol: str) -> FetchRequest:
    return FetchRequest(symbol=symbol, asset_class="stocks", start=dt.date(2000, 1, 1), end=dt.date(2030, 12, 31))


def outcomes(directory, symbols):
    provider = FileDataProvider(directory=directory)
    return {o.request.symbol: o for o in provider.fetch([request(s) for s in symbols])}


def corrupt(payload: bytes) -> bytes:
    packed = bytearray(gzip.compress(payload * 20))
    for i in range(20, 60):
        packed[i] ^= 0x55
    return bytes(packed)


def test_volume_problem_classes():
    assert volume_problem(np.array([1.0, np.nan, 2e18, -5.0, 1018.0])) is None
    assert volume_problem(np.array([1.0, np.inf]))[0] == 1
    assert "2**63" in volume_problem(np.array([2.0 ** 63]))[1]
    assert "whole number" in volume_problem(np.array([3.0, 0.5]))[1]


def test_shown_escapes_and_cuts():
    assert shown("Date") == "'Date'"
    text = shown("\x1b[31m" * 100)
    assert "\x1b" not in text and text.endswith("... (500 characters)")


def test_symlink_loop_dangling_link_and_fifo_in_one_batch(tmp_path):
    for name in ("A", "C"):
        (tmp_path / f"{name}.csv").write_text(YAHOO)
    os.symlink(tmp_path / "LOOP.csv", tmp_path / "LOOP.csv")
    os.symlink(tmp_path / "gone.csv", tmp_path / "DANGLING.csv")
    os.mkfifo(tmp_path / "PIPE.csv")           # never opened: it would block the worker
    os.symlink(tmp_path / "sub", tmp_path / "sub")   # a looping non-data entry is ignored
    got = outcomes(tmp_path, ["A", "LOOP", "DANGLING", "PIPE", "C"])
    assert got["A"].result is not None and got["C"].result is not None
    assert isinstance(got["LOOP"].error, MalformedDataError)
    assert "LOOP.csv: cannot read the file: Too many levels of symbolic links" in str(got["LOOP"].error)
    assert isinstance(got["DANGLING"].error, NoDataError) and isinstance(got["PIPE"].error, NoDataError)


def test_corrupt_gzip_in_the_joint_batch(tmp_path):
    for name in ("A", "C"):
        (tmp_path / f"{name}.csv").write_text(YAHOO)
    (tmp_path / "B.csv.gz").write_bytes(corrupt(YAHOO.encode()))
    got = outcomes(tmp_path, ["A", "B", "C"])
    assert got["A"].result is not None and got["C"].result is not None
    assert "B.csv.gz: not a readable gzip file" in str(got["B"].error) and "zlib.error" in str(got["B"].error)


def test_corrupt_gzip_long_file_does_not_hide_the_others_and_is_named(tmp_path):
    (tmp_path / "good.csv").write_text("ticker," + YAHOO.replace("\n2024", "\nAAA,2024"))
    (tmp_path / "dump.csv.gz").write_bytes(corrupt(("ticker," + YAHOO.replace("\n2024", "\nZZZ,2024")).encode()))
    got = outcomes(tmp_path, ["AAA", "ZZZ"])
    assert got["AAA"].result is not None
    assert isinstance(got["ZZZ"].error, NoDataError)
    assert "could not be read, first: " in str(got["ZZZ"].error) and "dump.csv.gz" in str(got["ZZZ"].error)


def test_bad_volume_in_a_joint_parse_fails_that_file_alone(tmp_path):
    for name in ("A", "C", "D"):
        (tmp_path / f"{name}.csv").write_text(YAHOO)
    (tmp_path / "B.csv").write_text(YAHOO.replace(",2000\n", ",1e20\n"))
    got = outcomes(tmp_path, ["A", "B", "C", "D"])
    assert all(got[s].result is not None for s in "ACD")
    assert list(got["A"].result.frame["volume"]) == [1000, 2000, 3000]
    message = str(got["B"].error)
    assert isinstance(got["B"].error, MalformedDataError)
    assert "B.csv, line 3: column 'Volume': volume '1e20' cannot be stored" in message


def test_bad_volume_in_a_quoted_file_still_names_the_line(tmp_path):
    text = YAHOO.replace("2024-01-03", '"2024-01-03"').replace(",3000\n", ",inf\n")
    (tmp_path / "B.csv").write_text(text + "\n")   # quotes and a blank line: rows are not lines
    message = str(outcomes(tmp_path, ["B"])["B"].error)
    assert "B.csv, line 4:" in message and "'inf' cannot be stored" in message


@pytest.mark.parametrize("volume, why", [(float("inf"), "cannot be stored"), (1e20, "cannot be stored"),
                                         (2.5, "not a whole number")])
def test_bad_volume_in_parquet_names_the_row(tmp_path, volume, why):
    table = pa.table({"date": pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 3)]), "open": [1.0, 1.0],
                      "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0], "volume": [5.0, volume]})
    pq.write_table(table, tmp_path / "P.parquet")
    (tmp_path / "A.csv").write_text(YAHOO)
    got = outcomes(tmp_path, ["P", "A"])
    assert got["A"].result is not None
    assert "P.parquet, row 2: column 'volume'" in str(got["P"].error) and why in str(got["P"].error)


def test_an_unexpected_exception_is_one_symbols_crash_naming_the_file(tmp_path, monkeypatch):
    for name in ("A", "B"):
        (tmp_path / f"{name}.csv").write_text(YAHOO)
    pq.write_table(pa.table({"date": ["2024-01-02"], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
                             "volume": [1.0]}), tmp_path / "P.parquet")
    real = provider_module.parse_csv

    def flaky(data, path, layout=None, **kw):
        if path.name == "B.csv":
            raise RuntimeError("boom")
        return real(data, path, layout, **kw)

    def broken(data, path, **kw):
        raise KeyError("nope")

    monkeypatch.setattr(provider_module, "parse_csv", flaky)
    monkeypatch.setattr(provider_module, "parse_csv_group", lambda items, layout: None)
    monkeypatch.setattr(provider_module, "parse_parquet", broken)
    got = outcomes(tmp_path, ["A", "B", "P"])
    assert got["A"].result is not None
    for symbol, text in (("B", "B.csv: RuntimeError: boom"), ("P", "P.parquet: KeyError: 'nope'")):
        assert isinstance(got[symbol].error, ProviderCrash) and text in str(got[symbol].error)
        assert got[symbol].error.symbol == symbol


def test_a_directory_that_cannot_be_listed_is_the_operators_input(tmp_path, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", refuse)   # chmod 0 does not stop root
    with pytest.raises(DataDirectoryNotFound, match="cannot be listed: Permission denied"):
        list(FileDataProvider(directory=tmp_path).fetch([request("A")]))


def test_a_bad_volume_in_a_long_file_fails_only_the_symbol_of_its_row(tmp_path):
    rows = [f"{t},2024-01-0{d},10,11,9,10.5,10.5,{1000 + d}" for t in ("AAA", "BBB", "CCC") for d in (2, 3, 4)]
    rows[4] = "BBB,2024-01-03,10,11,9,10.5,10.5,1e20"
    (tmp_path / "dump.csv").write_text("ticker,Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(rows) + "\n")
    got = outcomes(tmp_path, ["AAA", "BBB", "CCC"])
    assert got["AAA"].result is not None and got["CCC"].result is not None
    assert isinstance(got["BBB"].error, MalformedDataError)
    assert "dump.csv: BBB on 2024-01-03: volume 1e+20 cannot be stored" in str(got["BBB"].error)

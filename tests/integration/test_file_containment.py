"""Issue 10 (failures 1, 2, 8 and the file parts of 17): one bad entry of a
data directory fails the symbol it belongs to, naming the file (and line),
and nothing else.  Real files in tmp dirs, through the ingest CLI."""
from __future__ import annotations

import gzip
import json
import os

import pytest
from click.testing import CliRunner

import ingest_history
from database.manager import Database

AS_OF = "2026-11-19"
GOOD = ("AAPL", "MSFT", "SPY", "QQQ")
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
ROWS = "".join(f"2026-11-{d:02d},10,11,9,10.5,10.5,{1000 + d}\n" for d in (16, 17, 18, 19))


def symlink_loop(directory):
    os.symlink(directory / "IWM.csv", directory / "IWM.csv")   # IWM.csv -> itself


def corrupt_gzip(directory):
    packed = bytearray(gzip.compress((HEADER + ROWS * 40).encode()))
    for i in range(20, 60):
        packed[i] ^= 0x55      # deflate stream damaged: zlib.error, not OSError
    (directory / "IWM.csv.gz").write_bytes(bytes(packed))


def field_over_the_csv_limit(directory):
    big = "x" * (2 << 20)      # 2 MB field: over the csv module's 128 KiB limit
    (directory / "IWM.csv").write_text(HEADER + ROWS.replace("2026-11-18,10,11,9,10.5", f"2026-11-18,10,11,9,{big}"))


def header_field_over_the_csv_limit(directory):
    (directory / "IWM.csv").write_text('"' + "y" * (2 << 20) + '",' + HEADER + ROWS)


def volume(value):
    def write(directory):
        (directory / "IWM.csv").write_text(HEADER + ROWS.replace(",1018\n", f",{value}\n"))
    return write


def binary_header(directory):
    (directory / "IWM.csv").write_bytes(b"\x00\x01\x1b[31mRED\xff\xfe" * 40 + b"\n" + ROWS.encode())


def run(tmp_path, make_bad, runs=1):
    data = tmp_path / "dumps"
    data.mkdir()
    for symbol in GOOD:
        (data / f"{symbol}.csv").write_text(HEADER + ROWS)
    make_bad(data)
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": s} for s in (*GOOD, "IWM")]}))
    for _ in range(runs):
        result = CliRunner().invoke(ingest_history.main, ["--universe", str(universe), "--provider", "file",
                                                          "--data-dir", str(data), "--as-of", AS_OF,
                                                          "--start", "2026-11-16", "--end", AS_OF])
    return result


def assert_only_iwm_failed(runtime, result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "RuntimeWarning" not in result.output
    line = next(l for l in result.stdout.splitlines() if "IWM" in l and "MALFORMED_DATA" in l)
    for fragment in fragments:
        assert fragment in line, line
    with Database(runtime.db) as db:
        summary = db.bars.history_summary([*GOOD, "IWM"])
        assert {s: summary[s]["rows"] for s in GOOD} == dict.fromkeys(GOOD, 4)
        assert summary["IWM"]["rows"] == 0
    return line


def test_a_symlink_loop_fails_only_its_symbol(runtime, tmp_path):
    """Failure 1: ELOOP no longer escapes the directory index."""
    result = run(tmp_path, symlink_loop)
    assert_only_iwm_failed(runtime, result, "IWM.csv", "Too many levels of symbolic links")


def test_a_corrupt_gzip_fails_only_its_symbol_and_never_dead_letters_the_others(runtime, tmp_path):
    """Failure 2: zlib.error is MALFORMED_DATA of that file; three runs
    dead-letter the bad symbol alone."""
    result = run(tmp_path, corrupt_gzip, runs=3)
    assert_only_iwm_failed(runtime, result, "IWM.csv.gz", "not a readable gzip file")
    with Database(runtime.db) as db:
        dead = {s for s, state in db.fetch_state.by_symbol().items() if state["dead_letter"]}
    assert dead == {"IWM"}


@pytest.mark.parametrize("make_bad, fragments", [
    (field_over_the_csv_limit, ("IWM.csv, line 4", "field larger than field limit")),
    (header_field_over_the_csv_limit, ("IWM.csv, line 1", "field larger than field limit")),
], ids=["row", "header"])
def test_a_field_over_the_csv_limit_fails_only_its_symbol(runtime, tmp_path, make_bad, fragments):
    """Failure 2: the csv module's field limit names the file and line."""
    line = assert_only_iwm_failed(runtime, run(tmp_path, make_bad), *fragments)
    assert len(line) < 600     # the 2 MB field is not echoed


@pytest.mark.parametrize("value", ["1e20", "inf", "-inf", "9223372036854775808", "9" * 400])
def test_a_volume_the_store_cannot_hold_is_malformed_not_cast(runtime, tmp_path, value):
    """Failure 8: 1e20 / inf were stored as -9223372036854775808."""
    line = assert_only_iwm_failed(runtime, run(tmp_path, volume(value)), "IWM.csv, line 4", "cannot be stored",
                                  repr(value[:60]))
    assert "-9223372036854775808" not in line


def test_a_fractional_volume_is_malformed_not_rounded(runtime, tmp_path):
    """Failure 17: 1018.6 was silently stored as 1019; a whole number
    written as a float (1018.0, 1.018e3) is still fine."""
    def write(directory):
        (directory / "IWM.csv").write_text(HEADER + ROWS.replace(",1018\n", ",1018.6\n"))
        (directory / "AAPL.csv").write_text(HEADER + ROWS.replace(",1018\n", ",1.018e3\n")
                                            .replace(",1017\n", ",1017.0\n"))
    line = assert_only_iwm_failed(runtime, run(tmp_path, write), "IWM.csv, line 4", "'1018.6'",
                                  "is not a whole number")
    assert "Traceback" not in line


def test_a_binary_junk_header_is_shown_escaped_and_cut(runtime, tmp_path):
    """Failure 17: the header is never echoed raw to the terminal."""
    result = run(tmp_path, binary_header)
    assert result.exit_code == 1, result.output
    line = next(l for l in result.stdout.splitlines() if "IWM" in l and "SCHEMA_ERROR" in l)
    assert "\x1b" not in result.output and "\x00" not in result.output
    assert "\\x1b[31m" in line and "characters)" in line
    with Database(runtime.db) as db:
        assert all(db.bars.history_summary(list(GOOD))[s]["rows"] == 4 for s in GOOD)

"""Issue 10, failures 7 and 9: a re-fetched file with an invalid value never
overwrites good stored bars.  Real runs through the CLI on the file provider:
a healthy two-symbol store, then one symbol's file re-written with one bad
value; the run rejects that symbol's payload at the border (exit 1, the
date, field and value and the file's line named), every stored bar stays
byte-identical, the other symbol is unaffected.  A valid but different value
is a correction, kept with its old value (docs/decisions.md D-B1..D-B4)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import ingest_history
from data.providers.file import write_yahoo_csv
from database.manager import Database
from tests import bar_frames as B
from tests.store_reads import corrections

AS_OF = str(B.AS_OF)
POSITION = 1000           # the bar the tests spoil (of 1,260)


def ingest(universe, data_dir):
    result = CliRunner().invoke(ingest_history.main, ["--universe", str(universe), "--provider", "file",
                                                      "--data-dir", str(data_dir), "--as-of", AS_OF,
                                                      "--mode=deep_backfill", "--json"], catch_exceptions=False)
    return result, json.loads(result.stdout)


def snapshot(db, symbol):
    """Every stored column of ``symbol``'s bars, provenance included."""
    return db.bars.read(symbol, include_provenance=True).to_dict("list")


@pytest.fixture
def healthy(runtime, tmp_path):
    """A store where AAPL and MSFT are ACTIVE with 1,260 good bars."""
    data_dir = tmp_path / "files"
    data_dir.mkdir()
    sessions = B.window_sessions()
    frames = {"AAPL": B.clean_bars(sessions, seed=1), "MSFT": B.clean_bars(sessions, seed=2)}
    for symbol, frame in frames.items():
        write_yahoo_csv(data_dir / f"{symbol}.csv", frame)
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": s} for s in frames]}))
    result, _ = ingest(universe, data_dir)
    assert result.exit_code == 0, result.output
    with Database(runtime.db) as db:
        assert {s: r["state"] for s, r in db.governance.states().items()} == {"AAPL": "ACTIVE", "MSFT": "ACTIVE"}
    return runtime, universe, data_dir, frames


def spoil(frame, field, value):
    bad = frame.copy()
    if field == "high<low":
        bad.loc[POSITION, ["high", "low"]] = [bad.loc[POSITION, "low"], bad.loc[POSITION, "high"]]
    else:
        bad.loc[POSITION, field] = value
    return bad


@pytest.mark.parametrize("field,value,named", [
    ("close", float("nan"), "close=nan"),                # failure 7
    ("close", float("inf"), "close=inf"),                # failure 9 ...
    ("high", float("inf"), "high=inf"),
    ("close", -5.0, "close=-5"),
    ("low", 0.0, "low=0"),
    ("close", 0.0, "close=0"),
    ("close", 1e300, "close=1e+300"),
    ("high<low", None, "below low"),
])
def test_an_invalid_refetched_value_never_replaces_a_stored_valid_bar(healthy, field, value, named):
    runtime, universe, data_dir, frames = healthy
    with Database(runtime.db) as db:
        before = {s: snapshot(db, s) for s in frames}
        states_before = db.governance.states()
    write_yahoo_csv(data_dir / "AAPL.csv", spoil(frames["AAPL"], field, value))
    result, report = ingest(universe, data_dir)
    assert result.exit_code == 1, result.output
    by_symbol = {s["symbol"]: s for s in report["symbols"]}
    aapl = by_symbol["AAPL"]
    date = str(frames["AAPL"]["date"][POSITION].date())
    assert aapl["outcome"] == "FAILED" and aapl["error_code"] == "MALFORMED_DATA"
    assert date in aapl["error_message"] and named in aapl["error_message"]
    assert f"line {POSITION + 2}" in aapl["error_message"]          # header = line 1
    assert by_symbol["MSFT"]["outcome"] == "SUCCESS"
    with Database(runtime.db) as db:
        assert {s: snapshot(db, s) for s in frames} == before      # byte-identical, provenance too
        states = db.governance.states()
        assert states["MSFT"]["state"] == states_before["MSFT"]["state"] == "ACTIVE"
        assert corrections(db) == []
        audit = {a["symbol"]: a for a in db.runs.audit_rows(report["run_id"])}
        assert audit["AAPL"]["error_code"] == "MALFORMED_DATA" and audit["AAPL"]["rows_written"] == 0


def test_a_valid_correction_is_kept_with_its_old_value(healthy):
    runtime, universe, data_dir, frames = healthy
    corrected = frames["AAPL"].copy()
    old_close = float(corrected.loc[POSITION, "close"])
    new_close = (old_close + float(corrected.loc[POSITION, "low"])) / 2    # still inside [low, high]
    corrected.loc[POSITION, ["close", "adj_close"]] = new_close
    write_yahoo_csv(data_dir / "AAPL.csv", corrected)
    with Database(runtime.db) as db:
        msft_before = snapshot(db, "MSFT")
    result, report = ingest(universe, data_dir)
    assert result.exit_code == 0, result.output
    aapl = next(s for s in report["symbols"] if s["symbol"] == "AAPL")
    assert aapl["rows_corrected"] == 1 and aapl["rows_written"] == 1
    date = str(frames["AAPL"]["date"][POSITION].date())
    with Database(runtime.db) as db:
        (kept,) = corrections(db, "AAPL")
        assert (kept["date"], kept["run_id"], kept["close"]) == (date, report["run_id"], pytest.approx(old_close))
        stored = db.bars.read("AAPL", date, date)
        assert float(stored["close"][0]) == pytest.approx(new_close)
        assert snapshot(db, "MSFT") == msft_before
        audit = {a["symbol"]: a for a in db.runs.audit_rows(report["run_id"])}
        assert audit["AAPL"]["rows_corrected"] == 1 and audit["MSFT"]["rows_corrected"] == 0

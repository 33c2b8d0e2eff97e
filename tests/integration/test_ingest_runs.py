"""Stage 1 runs through the CLI, in-process (CliRunner), on the synthetic
provider and on vendor-style CSV files."""
import gzip
import json

import pytest
from click.testing import CliRunner

import ingest_history
from database.manager import Database

AS_OF = "2026-11-19"          # a Thursday: the next NYSE session is 2026-11-20
NEXT = "2026-11-20"
STOCKS = ["AAPL", "MSFT", "SPY"]


def ingest(*args):
    result = CliRunner().invoke(ingest_history.main, [*args, "--json"], catch_exceptions=False)
    payload = json.loads(result.stdout) if result.exit_code in (0, 1) and result.stdout.strip() else None
    return result, payload


def small_universe(tmp_path, symbols):
    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": s} for s in symbols]}))
    return str(path)


def test_deep_backfill_default_universe_every_window_exact(runtime):
    result, report = ingest("--mode=deep_backfill", "--provider", "synthetic", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    with Database(runtime.db) as db:
        summary = db.bars.history_summary()
        universe = json.load(open("configs/universe.json"))["symbols"]
        assert set(summary) == {e["symbol"] for e in universe}
        assert all(info["rows"] == 1260 for info in summary.values())
        audit = db.runs.audit_rows(report["run_id"])
        assert len(audit) == len(universe)
        assert {a["outcome"] for a in audit} == {"SUCCESS"}
        assert {a["provider_used"] for a in audit} == {"synthetic"}
        assert db.conn.execute("SELECT DISTINCT typeof(volume) FROM price_history").fetchall() == [("integer",)]
    raw = sorted((runtime.root / "raw" / report["run_id"]).iterdir())
    assert len(raw) == len(universe)
    assert all(p.name.endswith(".json.gz") and "=" not in p.name for p in raw)
    json.loads(gzip.decompress(raw[0].read_bytes()))
    events = [json.loads(line) for line in runtime.audit_jsonl.read_text().splitlines()]
    assert {"ts", "level", "module", "run_id", "event"} <= set(events[0])
    # The run's last event, then the command's exit (cli.job_alerts).
    assert [e["event"] for e in events[-2:]] == ["run_finished", "job_exit"]
    assert events[-1]["exit_code"] == 0 and events[-1]["job"] == "ingest_history"


def test_backfill_twice_same_content_two_runs(runtime, tmp_path):
    universe = small_universe(tmp_path, STOCKS + ["BTC-USD"])
    _, first = ingest("--universe", universe, "--provider", "synthetic", "--as-of", AS_OF)
    with Database(runtime.db) as db:
        h1 = db.bars.content_hash(include_provenance=True)
    _, second = ingest("--universe", universe, "--provider", "synthetic", "--as-of", AS_OF)
    assert second["rows_written"] == 0
    with Database(runtime.db) as db:
        assert db.bars.content_hash(include_provenance=True) == h1
        assert db.table_count("ingestion_audit_runs") == 2


def test_incremental_adds_exactly_one_session_and_reads_no_history(runtime, tmp_path):
    universe = small_universe(tmp_path, STOCKS)
    ingest("--universe", universe, "--provider", "synthetic", "--as-of", AS_OF)
    result, report = ingest("--universe", universe, "--mode=incremental", "--provider", "synthetic",
                            "--as-of", NEXT)
    assert result.exit_code == 0
    assert report["rows_written"] == len(STOCKS)
    with Database(runtime.db) as db:
        for row in db.runs.audit_rows(report["run_id"]):
            assert (row["window_start"], row["window_end"], row["rows_received"]) == (NEXT, NEXT, 1)
        assert all(v["rows"] == 1261 for v in db.bars.history_summary(STOCKS).values())
    # Nothing new: every symbol up to date, nothing fetched.
    _, again = ingest("--universe", universe, "--mode=incremental", "--provider", "synthetic", "--as-of", NEXT)
    assert again["rows_written"] == 0
    assert {s["outcome"] for s in again["symbols"]} == {"UP_TO_DATE"}


def test_a_failing_symbol_never_stops_the_batch(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:unavailable")
    universe = small_universe(tmp_path, STOCKS)
    result, report = ingest("--universe", universe, "--provider", "synthetic", "--as-of", AS_OF)
    assert result.exit_code == 1
    outcomes = {s["symbol"]: (s["outcome"], s["error_code"]) for s in report["symbols"]}
    assert outcomes["MSFT"] == ("FAILED", "PROVIDER_UNAVAILABLE")
    assert outcomes["AAPL"] == ("SUCCESS", None) and outcomes["SPY"] == ("SUCCESS", None)
    with Database(runtime.db) as db:
        assert db.fetch_state.by_symbol()["MSFT"]["consecutive_failures"] == 1


def test_no_valid_provider_is_a_recorded_decision(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("YAHOO_ENABLED", "false")
    universe = small_universe(tmp_path, ["GC=F"])
    result, report = ingest("--universe", universe, "--as-of", AS_OF)
    assert result.exit_code == 1
    assert report["symbols"][0]["outcome"] == "NO_VALID_PROVIDER"
    with Database(runtime.db) as db:
        event = db.governance.events(event="NO_VALID_PROVIDER")[0]
        assert event["symbol"] == "GC=F"
        assert "YAHOO_ENABLED=false" in event["detail"] and "does not serve commodities" in event["detail"]


@pytest.mark.parametrize("args,code,fragment", [
    (["--tickers", "TSLA"], 64, "not in the universe: TSLA"),
    (["--tickers", "NOT A TICKER"], 64, "--tickers"),
    (["--mode", "sideways"], 64, "--mode"),
    (["--mode", "repair"], 64, "--mode"),          # repair_db.py's, never an unlabelled backfill
    (["--mode", "range"], 64, "--mode"),           # a range is --start/--end
    (["--start", "2026-01-10", "--end", "2026-01-02"], 64, "--start 2026-01-10 is after --end 2026-01-02"),
    (["--mode", "incremental", "--start", "2026-01-02"], 64, "--start/--end go with --mode=deep_backfill"),
    (["--provider", "bloomberg"], 64, "--provider 'bloomberg'"),
    (["--as-of", "2026-13-01"], 64, "--as-of"),
    (["--data-dir", "/nonexistent/dir"], 66, "--data-dir /nonexistent/dir"),
    (["--universe", "/nonexistent/u.json"], 66, "/nonexistent/u.json"),
])
def test_bad_flags_one_line_error_nothing_written(runtime, args, code, fragment):
    result = CliRunner().invoke(ingest_history.main, args)
    assert result.exit_code == code
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not runtime.db.exists()


def test_malformed_universe_exit_65_database_untouched(runtime, tmp_path):
    path = tmp_path / "universe.json"
    path.write_text('{"symbols": [{"symbol": "AAPL"}, {"symbol": "AAPL"}]}')
    result = CliRunner().invoke(ingest_history.main, ["--universe", str(path), "--provider", "synthetic"])
    assert result.exit_code == 65
    assert result.stderr.strip() == f"error: {path}: entry 2 ('AAPL'): duplicate symbol AAPL (first at entry 1)"
    assert not runtime.db.exists()


def test_synthetic_never_mixes_with_vendor_data(runtime, tmp_path):
    universe = small_universe(tmp_path, ["AAPL"])
    ingest("--universe", universe, "--provider", "synthetic", "--as-of", AS_OF)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "AAPL.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2026-11-19,1,2,0.5,1.5,1.5,100\n")
    with Database(runtime.db) as db:
        before = db.bars.content_hash(include_provenance=True)
    result = CliRunner().invoke(ingest_history.main, ["--universe", universe, "--provider", "file",
                                                      "--data-dir", str(csv_dir), "--as-of", AS_OF])
    assert result.exit_code == 64
    assert "holds synthetic data" in result.stderr
    with Database(runtime.db) as db:
        assert db.bars.content_hash(include_provenance=True) == before


def test_a_csv_with_a_garbage_row_names_file_and_line_and_writes_nothing_of_it(runtime, tmp_path):
    csv_dir = tmp_path / "dumps"
    csv_dir.mkdir()
    header = "Date,Open,High,Low,Close,Adj Close,Volume\n"
    good = "".join(f"2026-11-{d:02d},10,11,9,10.5,10.5,1000\n" for d in (16, 17, 18, 19))
    (csv_dir / "AAPL.csv").write_text(header + good)
    (csv_dir / "MSFT.csv").write_text(header + good.replace("2026-11-18,10,11,9,10.5", "2026-11-18,10,11,9,abc"))
    universe = small_universe(tmp_path, ["AAPL", "MSFT"])
    result = CliRunner().invoke(ingest_history.main, ["--universe", universe, "--provider", "file", "--data-dir",
                                                      str(csv_dir), "--as-of", AS_OF, "--start", "2026-11-16",
                                                      "--end", AS_OF])
    assert result.exit_code == 1
    line = next(l for l in result.stdout.splitlines() if "MSFT" in l and "MALFORMED_DATA" in l)
    assert "MSFT.csv" in line and "line 4" in line and "abc" in line
    with Database(runtime.db) as db:
        assert db.bars.history_summary(["AAPL", "MSFT"]) == {
            "AAPL": {"rows": 4, "first_date": "2026-11-16", "last_date": "2026-11-19"},
            "MSFT": {"rows": 0, "first_date": None, "last_date": None}}


def test_fail_on_quality_turns_an_error_finding_into_exit_2(runtime, tmp_path, monkeypatch):
    # A spike leaves the symbol ACTIVE (reason EXTREME_SPIKE): the run passes
    # unless the operator asked the quality gate to fail it.
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:spike")
    universe = small_universe(tmp_path, ["AAPL", "MSFT"])
    result, report = ingest("--universe", universe, "--provider", "synthetic", "--as-of", AS_OF)
    assert result.exit_code == 0 and report["exit_code"] == 0
    assert report["governance"]["has_error_findings"] is True
    gated = CliRunner().invoke(ingest_history.main, ["--universe", universe, "--provider", "synthetic", "--as-of",
                                                     AS_OF, "--fail-on-quality", "--json"])
    assert gated.exit_code == 2 and json.loads(gated.stdout)["exit_code"] == 2
    assert list(json.loads(gated.stdout))[:6] == ["run_id", "mode", "as_of", "status", "exit_code", "rows_written"]

"""verify_backfill.py and verify_db_status.py through click's CliRunner on a
store seeded by the real write path and governed by govern_symbols."""
from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

import verify_backfill
import verify_db_status
from data.governance.governance_agent import govern_symbols
from core.universe import load_universe
from cli.health_report import status_exit_code
from database.manager import Database
from core.runtime import DB_FILENAME
from core.settings import Settings
from tests import bar_frames as B
from tests.store_seed import seed_store
from tests import store_reads

AS_OF = B.AS_OF
AS_OF_PLUS_16_SESSIONS = "2024-07-23"    # 16 XNYS sessions after 2024-06-28 (07-04 is a holiday)
SECTIONS = ["history", "quality", "governance", "freshness", "integrity", "last_ingest", "providers"]


def write_universe(path, symbols):
    path.write_text(json.dumps({"version": 1, "symbols": [{"symbol": s} for s in symbols]}))
    return path


@pytest.fixture
def desk(tmp_path, monkeypatch):
    """A runtime dir with a governed store: GOOD1, GOOD2, BTC-USD comply;
    SHORT (1,100 rows) is DEGRADED, BROKEN (OHLC inverted) QUARANTINED."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("SETTINGS_FILE", raising=False)
    sessions = B.window_sessions()
    frames = {"GOOD1": B.clean_bars(sessions, seed=1), "GOOD2": B.clean_bars(sessions, seed=2),
              "SHORT": B.last_sessions(B.clean_bars(sessions, seed=3), 1100),
              "BROKEN": B.with_ohlc_inversion(B.clean_bars(sessions, seed=4), 10),
              "BTC-USD": B.clean_bars(B.window_sessions("24/7"), daily_vol=0.03, seed=5)}
    universe = write_universe(tmp_path / "universe.json", list(frames))
    write_universe(tmp_path / "good.json", ["GOOD1", "GOOD2", "BTC-USD"])
    with Database(runtime / DB_FILENAME) as db:
        seed_store(db, frames, run_id="run-1")
        govern_symbols(db, universe_entries=load_universe(universe).entries, run_id="run-1", as_of=AS_OF,
                       settings=Settings())
        store_reads.set_run_verification(db, "run-1", "PASSED")
    return tmp_path


def run(command, *args):
    result = CliRunner().invoke(command.main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_backfill_reports_compliance_and_exits_zero_without_strict(desk):
    result = run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "universe.json")
    assert result.exit_code == 0
    assert "3/5 symbols (60.00%)" in result.output
    assert "NOT compliant" in result.output


def test_backfill_strict_fails_unless_every_symbol_complies(desk):
    assert run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "universe.json", "--strict").exit_code == 2
    good = run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "good.json", "--strict")
    assert good.exit_code == 0
    assert "100% compliant" in good.output


def test_backfill_symbols_lists_failing_symbols_with_rows_score_and_reason(desk):
    result = run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "universe.json", "--symbols")
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    assert lines["SHORT"][:4] == ["SHORT", "DEGRADED", "PARTIAL_HISTORY", "1100"]
    assert lines["BROKEN"][:4] == ["BROKEN", "QUARANTINED", "OHLC_INCONSISTENT", "1260"]
    assert "GOOD1" not in lines
    assert lines["SHORT"][5] == "0.9619"   # score column


def test_backfill_json(desk):
    result = run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "universe.json", "--json", "--strict")
    assert result.exit_code == 2
    doc = json.loads(result.output)
    assert doc["compliant"] == 3 and doc["symbols"] == 5 and doc["compliance_pct"] == 60.0
    assert doc["passed"] is False
    assert {f["symbol"]: f["reason"] for f in doc["failing"]} == {"SHORT": "PARTIAL_HISTORY",
                                                                  "BROKEN": "OHLC_INCONSISTENT"}
    assert doc["states"] == {"ACTIVE": 3, "DEGRADED": 1, "QUARANTINED": 1, "UNGOVERNED": 0}


def test_backfill_counts_an_ungoverned_symbol_as_failing(desk):
    write_universe(desk / "more.json", ["GOOD1", "NEWCO"])
    doc = json.loads(run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "more.json", "--json").output)
    assert doc["failing"] == [{"symbol": "NEWCO", "state": "UNGOVERNED", "reason": "NOT_GOVERNED", "rows": 0,
                               "window_rows": 0, "quality_score": None, "last_date": None,
                               "age_sessions": None}]


def test_a_store_16_sessions_behind_the_calendar_fails_strict_and_names_the_fix(desk):
    """Judged at its own date the store passes; 16 XNYS sessions later (and
    by the wall clock, the default) the same store fails --strict with exit 2."""
    good = desk / "good.json"
    assert run(verify_backfill, "--as-of", AS_OF, "--universe", good, "--strict").exit_code == 0
    later = AS_OF_PLUS_16_SESSIONS
    result = run(verify_backfill, "--as-of", later, "--universe", good, "--strict", "--symbols")
    assert result.exit_code == 2
    assert "Action required: python ingest_history.py --mode=incremental" in result.output
    doc = json.loads(run(verify_backfill, "--as-of", later, "--universe", good, "--json").output)
    assert doc["passed"] is False and doc["stale"] == 3
    assert {f["reason"] for f in doc["failing"]} == {"STALE"}
    assert {f["symbol"]: f["age_sessions"] for f in doc["failing"]} == {"GOOD1": 16, "GOOD2": 16, "BTC-USD": 25}
    assert doc["fix"] == "python ingest_history.py --mode=incremental"
    by_clock = run(verify_backfill, "--universe", good, "--strict")
    assert by_clock.exit_code == 2 and "--mode=incremental" in by_clock.output


def test_status_json_holds_every_section(desk):
    result = run(verify_db_status, "--universe", desk / "universe.json", "--json", "--as-of", AS_OF)
    doc = json.loads(result.output)
    assert list(doc["checks"]) == SECTIONS
    for name in SECTIONS:
        assert doc[name]["status"] in ("PASS", "WARN", "FAIL"), name
    assert doc["checks"] == {"history": "FAIL", "quality": "PASS", "governance": "FAIL", "freshness": "PASS",
                             "integrity": "PASS", "last_ingest": "PASS", "providers": "PASS"}
    assert result.exit_code == 2 and doc["passed"] is False
    assert doc["history"]["short_symbols"][0]["symbol"] == "SHORT"
    assert doc["quality"]["distribution"]["1.0"] == 4
    assert doc["quality"]["findings"]["OHLC_INCONSISTENT"] == {"severity": "critical", "symbols": 1}
    assert doc["governance"]["counts"]["QUARANTINED"] == 1
    assert len(doc["governance"]["recent_events"]) == 5
    assert doc["freshness"]["price_health"] == "GREEN"
    assert doc["integrity"]["quick_check"] == "ok"
    assert doc["last_ingest"]["run_id"] == "run-1" and doc["last_ingest"]["verification"] == "PASSED"
    assert doc["last_ingest"]["providers_used"] == {"file": 5}


def test_status_passes_on_a_compliant_universe(desk):
    result = run(verify_db_status, "--universe", desk / "good.json", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert "All checks passed" in result.output
    for title in ("History", "Quality", "Governance", "Freshness", "Integrity", "Last ingest"):
        assert f"== {title}: PASS ==" in result.output


def test_status_section_flags_select_sections(desk):
    doc = json.loads(run(verify_db_status, "--universe", desk / "good.json", "--json", "--history",
                         "--governance").output)
    assert list(doc["checks"]) == ["history", "governance"]
    assert "quality" not in doc and "freshness" not in doc


def test_freshness_turns_yellow_then_red_with_age(desk):
    # XNYS: 2024-06-28 is a Friday; 2024-07-03 is three sessions on, 2024-07-15 ten (July 4 is closed).
    week = json.loads(run(verify_db_status, "--universe", desk / "good.json", "--json", "--freshness",
                          "--as-of", "2024-07-03").output)
    assert week["freshness"]["price_health"] == "YELLOW" and week["freshness"]["status"] == "WARN"
    assert week["passed"] is True
    late = run(verify_db_status, "--universe", desk / "good.json", "--json", "--freshness", "--as-of", "2024-07-15")
    doc = json.loads(late.output)
    assert doc["freshness"]["price_health"] == "RED" and late.exit_code == 2
    ages = {s["symbol"]: s["age_sessions"] for s in doc["freshness"]["stale_symbols"]}
    assert ages == {"GOOD1": 10, "GOOD2": 10, "BTC-USD": 17}


def test_weekend_does_not_age_an_equity_bar(desk):
    write_universe(desk / "equities.json", ["GOOD1"])
    doc = json.loads(run(verify_db_status, "--universe", desk / "equities.json", "--json", "--freshness",
                         "--as-of", "2024-06-30").output)   # a Sunday
    assert doc["freshness"]["price_health"] == "GREEN"


def test_verify_commands_do_not_write_to_the_store(desk):
    path = desk / "runtime" / DB_FILENAME
    before = digest(path)
    run(verify_db_status, "--universe", desk / "universe.json", "--json")
    run(verify_backfill, "--as-of", AS_OF, "--universe", desk / "universe.json", "--strict")
    assert digest(path) == before


def test_missing_database_is_one_line_naming_the_path(desk, tmp_path):
    missing = tmp_path / "nowhere" / "x.db"
    for command in (verify_backfill, verify_db_status):
        result = run(command, "--db", missing, "--universe", desk / "universe.json")
        assert result.exit_code == 66
        assert result.output.strip().count("\n") == 0
        assert str(missing) in result.output
    assert not missing.exists()


def test_universe_errors_map_to_input_exit_codes(desk):
    assert run(verify_backfill, "--universe", desk / "absent.json").exit_code == 66
    (desk / "bad.json").write_text("{not json")
    assert run(verify_db_status, "--universe", desk / "bad.json").exit_code == 65


def test_bad_flags_exit_64(desk):
    assert run(verify_backfill, "--as-of", AS_OF, "--nope").exit_code == 64
    assert run(verify_db_status, "--as-of", "yesterday").exit_code == 64


def test_status_exit_code_prefers_integrity_failure():
    assert status_exit_code({"checks": {"integrity": "FAIL", "history": "FAIL"}, "passed": False}) == 1
    assert status_exit_code({"checks": {"history": "FAIL"}, "passed": False}) == 2
    assert status_exit_code({"checks": {"freshness": "WARN"}, "passed": True}) == 0


def test_status_without_any_run_fails_last_ingest(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTIME_DIR", str(tmp_path))
    Database(tmp_path / DB_FILENAME).close()
    universe = write_universe(tmp_path / "u.json", ["AAA"])
    result = run(verify_db_status, "--universe", universe, "--json", "--as-of", AS_OF)
    doc = json.loads(result.output)
    assert doc["last_ingest"]["status"] == "FAIL" and doc["history"]["no_data"] == 1
    assert doc["freshness"]["price_health"] == "RED"
    assert result.exit_code == 2


def test_a_file_that_is_not_a_database_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTIME_DIR", str(tmp_path))
    bogus = tmp_path / "bogus.db"
    bogus.write_text("this is not sqlite\n" * 100)
    universe = write_universe(tmp_path / "u.json", ["AAA"])
    result = run(verify_backfill, "--as-of", AS_OF, "--db", bogus, "--universe", universe)
    assert result.exit_code == 65 and str(bogus) in result.output


def test_verify_commands_honour_universe_file(desk, monkeypatch):
    """UNIVERSE_FILE chooses the universe when --universe is not given (as in
    every other command); --universe still wins."""
    good = desk / "good.json"
    monkeypatch.setenv("UNIVERSE_FILE", str(good))
    backfill = run(verify_backfill, "--as-of", AS_OF, "--json", "--strict")
    doc = json.loads(backfill.output)
    assert doc["universe"] == str(good) and doc["symbols"] == 3 and backfill.exit_code == 0
    status = json.loads(run(verify_db_status, "--as-of", AS_OF, "--json", "--governance").output)
    assert status["universe"] == str(good) and status["symbols"] == 3
    assert status["governance"]["status"] == "PASS"
    overridden = json.loads(run(verify_backfill, "--as-of", AS_OF, "--json", "--universe",
                                desk / "universe.json").output)
    assert overridden["symbols"] == 5
    monkeypatch.setenv("UNIVERSE_FILE", str(desk / "absent.json"))
    missing = run(verify_db_status, "--as-of", AS_OF)
    assert missing.exit_code == 66 and str(desk / "absent.json") in missing.output

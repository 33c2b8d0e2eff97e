"""A symbol no provider serves in 3 consecutive runs is dead-lettered:
incremental runs skip it, verify_db_status.py lists it, and --revive or an
edit of its universe entry brings it back.  Every run records provider health."""
import json

from click.testing import CliRunner

import ingest_history
import verify_db_status
from database.manager import Database

AS_OF = "2026-11-19"


def ingest(*args):
    result = CliRunner().invoke(ingest_history.main, [*args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def outcomes(report):
    return {s["symbol"]: s["outcome"] for s in report["symbols"]}


def dead_letter(tmp_path, monkeypatch, symbols, defect):
    """A universe of ``symbols`` where ``defect`` ("SYM:kind") fails one of
    them in 3 consecutive runs, so it is dead-lettered; the defect is then
    lifted (the vendor is back).  Returns the universe file."""
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": s} for s in symbols]}))
    monkeypatch.setenv("SYNTHETIC_DEFECTS", defect)
    for _ in range(3):
        ingest("--universe", str(universe), "--provider", "synthetic", "--as-of", AS_OF)
    monkeypatch.delenv("SYNTHETIC_DEFECTS")
    return universe


def test_dead_letter_lifecycle(runtime, tmp_path, monkeypatch):
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "MSFT"}]}))
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:unavailable")
    monkeypatch.setenv("ALERT_DRY_RUN", "1")     # alerts written as artifacts under runtime/alerts/
    for run in range(3):
        code, report = ingest("--universe", str(universe), "--provider", "synthetic", "--as-of", AS_OF)
        assert code == 1 and outcomes(report)["MSFT"] == "FAILED"
        with Database(runtime.db) as db:
            assert bool(db.fetch_state.by_symbol()["MSFT"]["dead_letter"]) == (run == 2)
    with Database(runtime.db) as db:
        assert [e["symbol"] for e in db.governance.events(event="DEAD_LETTER")] == ["MSFT"]
        health = {h["provider"]: h for h in db.runs.provider_health(report["run_id"])}
        assert health["synthetic"]["requests"] == 2
        assert health["synthetic"]["successes"] == 1
        assert health["synthetic"]["failures"] == {"PROVIDER_UNAVAILABLE": 1}
    alerts = [p.read_text() for p in (runtime.root / "alerts").rglob("*") if p.is_file()]
    assert sum("dead-lettered" in text and "MSFT" in text for text in alerts) == 1

    status = CliRunner().invoke(verify_db_status.main, ["--universe", str(universe), "--providers", "--json",
                                                        "--as-of", AS_OF])
    section = json.loads(status.stdout)["providers"]
    assert section["status"] == "WARN"
    assert [d["symbol"] for d in section["dead_letters"]] == ["MSFT"]
    assert section["revive_with"].startswith("python ingest_history.py --revive")

    code, report = ingest("--universe", str(universe), "--mode=incremental", "--provider", "synthetic",
                          "--as-of", "2026-11-20")
    assert outcomes(report) == {"AAPL": "SUCCESS", "MSFT": "SKIPPED_DEAD_LETTER"}

    # The vendor is back; the operator revives the symbol.
    monkeypatch.delenv("SYNTHETIC_DEFECTS")
    code, report = ingest("--universe", str(universe), "--mode=incremental", "--provider", "synthetic",
                          "--as-of", "2026-11-20", "--revive", "msft")
    assert outcomes(report)["MSFT"] == "SUCCESS"
    with Database(runtime.db) as db:
        assert db.fetch_state.dead_letters() == []
        assert [e["reason"] for e in db.governance.events(event="REVIVED")] == ["OPERATOR"]


def test_editing_the_universe_entry_revives_a_dead_letter(runtime, tmp_path, monkeypatch):
    universe = dead_letter(tmp_path, monkeypatch, ["AAPL", "GC=F"], "GC=F:no_data")
    with Database(runtime.db) as db:
        assert [d["symbol"] for d in db.fetch_state.dead_letters()] == ["GC=F"]
    _, report = ingest("--universe", str(universe), "--mode=incremental", "--provider", "synthetic",
                       "--as-of", AS_OF)
    assert outcomes(report)["GC=F"] == "SKIPPED_DEAD_LETTER"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "GC=F", "calendar": "24/5"}]}))
    _, report = ingest("--universe", str(universe), "--mode=incremental", "--provider", "synthetic",
                       "--as-of", AS_OF)
    assert outcomes(report)["GC=F"] == "SUCCESS"
    with Database(runtime.db) as db:
        assert [e["reason"] for e in db.governance.events(event="REVIVED")] == ["UNIVERSE_ENTRY_CHANGED"]


def test_revive_rejects_symbols_outside_the_universe(runtime):
    result = CliRunner().invoke(ingest_history.main, ["--revive", "TSLA", "--provider", "synthetic"])
    assert result.exit_code == 64 and "--revive: not in the universe: TSLA" in result.stderr


def test_a_run_refused_for_its_range_revives_nothing(runtime, tmp_path, monkeypatch):
    # --start after the last complete session is found only when the run
    # plans each calendar: a usage error (64) before any state changes, so
    # the --revive of the same invocation has not happened either.
    universe = dead_letter(tmp_path, monkeypatch, ["AAPL", "MSFT"], "MSFT:unavailable")
    with Database(runtime.db) as db:
        before = (db.table_count("ingestion_audit_runs"), db.table_count("governance_events"))
    result = CliRunner().invoke(ingest_history.main, ["--universe", str(universe), "--provider", "synthetic",
                                                      "--as-of", AS_OF, "--start", "2026-12-01", "--revive", "MSFT"])
    assert result.exit_code == 64 and "--start 2026-12-01 is after --end 2026-11-19" in result.stderr
    with Database(runtime.db) as db:
        assert [d["symbol"] for d in db.fetch_state.dead_letters()] == ["MSFT"]
        assert (db.table_count("ingestion_audit_runs"), db.table_count("governance_events")) == before

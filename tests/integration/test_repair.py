"""repair_db.py: a damaged range is restored, the symbol returns to ACTIVE,
--dry-run changes nothing, --undo restores what the repair replaced."""
import json
import sqlite3

from click.testing import CliRunner

import ingest_history
import repair_db
from database.manager import Database

AS_OF = "2026-11-19"


def run(cli, *args):
    return CliRunner().invoke(cli, [*args], catch_exceptions=False)


def state(db_path, symbol):
    with Database(db_path) as db:
        return db.governance.states([symbol])[symbol]["state"], db.governance.states([symbol])[symbol]["reason"]


def test_repair_restores_a_damaged_range(runtime, tmp_path):
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "MSFT"}]}))
    assert run(ingest_history.main, "--universe", str(universe), "--provider", "synthetic",
               "--as-of", AS_OF).exit_code == 0
    with Database(runtime.db) as db:
        healthy = db.bars.content_hash()
    assert state(runtime.db, "AAPL") == ("ACTIVE", "OK")

    # Damage: three closes far above their highs (a bad vendor correction).
    raw = sqlite3.connect(runtime.db)
    raw.execute("UPDATE price_history SET close = close * 5 WHERE symbol = 'AAPL' "
                "AND date BETWEEN '2022-03-01' AND '2022-03-03'")
    raw.commit()
    raw.close()
    assert run(ingest_history.main, "--universe", str(universe), "--mode=verify", "--as-of", AS_OF).exit_code == 2
    assert state(runtime.db, "AAPL") == ("QUARANTINED", "OHLC_INCONSISTENT")
    with Database(runtime.db) as db:
        damaged = db.bars.content_hash(include_provenance=True)

    dry = run(repair_db.main, "--universe", str(universe), "--symbol", "AAPL", "--from", "2022-02-01",
              "--to", "2022-03-31", "--provider", "synthetic", "--dry-run", "--json", "--as-of", AS_OF)
    assert dry.exit_code == 0
    report = json.loads(dry.stdout)
    assert [c["date"] for c in report["changes"]] == ["2022-03-01", "2022-03-02", "2022-03-03"]
    assert set(report["changes"][0]["columns"]) == {"close"}
    with Database(runtime.db) as db:
        assert db.bars.content_hash(include_provenance=True) == damaged
        assert db.table_count("price_history_replaced") == 0

    fixed = run(repair_db.main, "--universe", str(universe), "--symbol", "AAPL", "--from", "2022-02-01",
                "--to", "2022-03-31", "--provider", "synthetic", "--json", "--as-of", AS_OF)
    assert fixed.exit_code == 0
    report = json.loads(fixed.stdout)
    assert (report["state_before"], report["state_after"]) == ("QUARANTINED", "ACTIVE")
    with Database(runtime.db) as db:
        assert db.bars.content_hash() == healthy
        assert db.runs.recent(1)[0]["mode"] == "repair"
        assert len(db.bars.replaced_rows(report["run_id"])) == 3

    undone = run(repair_db.main, "--universe", str(universe), "--undo", report["run_id"], "--json",
                 "--as-of", AS_OF)
    assert undone.exit_code == 0
    assert json.loads(undone.stdout)["state_after"] == "QUARANTINED"
    with Database(runtime.db) as db:
        assert db.bars.content_hash() != healthy
        assert db.bars.content_hash(include_provenance=True) == damaged
    again = run(repair_db.main, "--universe", str(universe), "--undo", report["run_id"])
    assert again.exit_code == 64 and "already undone" in again.stderr


def test_repair_refuses_symbols_outside_the_universe(runtime, tmp_path):
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    run(ingest_history.main, "--universe", str(universe), "--provider", "synthetic", "--as-of", AS_OF)
    result = run(repair_db.main, "--universe", str(universe), "--symbol", "TSLA", "--from", "2022-01-03",
                 "--to", "2022-01-10")
    assert result.exit_code == 64
    assert "TSLA is not an enabled symbol of the universe" in result.stderr
    missing = run(repair_db.main, "--universe", str(universe), "--symbol", "AAPL")
    assert missing.exit_code == 64 and "--from and --to are required" in missing.stderr
    backwards = run(repair_db.main, "--universe", str(universe), "--symbol", "AAPL", "--from", "2022-01-10",
                    "--to", "2022-01-03")
    assert backwards.exit_code == 64 and "--from 2022-01-10 is after --to 2022-01-03" in backwards.stderr

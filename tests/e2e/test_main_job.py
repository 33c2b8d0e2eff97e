"""The README's main job (`make run` = run_offline.py) end to end, in a temp
runtime: Stage 1 backfill on the synthetic provider, verification, one paper
cycle, a ticket; every universe symbol ACTIVE with its calendar's window."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_offline_main_job(tmp_path):
    env = dict(os.environ, RUNTIME_DIR=str(tmp_path / "runtime"), LOGS_DIR=str(tmp_path / "logs"))
    env.pop("SETTINGS_FILE", None)
    proc = subprocess.run([sys.executable, str(REPO / "run_offline.py")], env=env, capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    db = tmp_path / "runtime" / "institutional_trading.db"
    conn = sqlite3.connect(db)
    # The runbook's own query.
    assert conn.execute("SELECT state, COUNT(*) FROM symbol_governance GROUP BY state").fetchall() == [("ACTIVE", 25)]
    rows = dict(conn.execute("SELECT symbol, COUNT(*) FROM price_history GROUP BY symbol").fetchall())
    universe = json.loads((REPO / "configs" / "universe.json").read_text())["symbols"]
    assert set(rows) == {e["symbol"] for e in universe} and set(rows.values()) == {1260}
    assert conn.execute("SELECT COUNT(*) FROM ingestion_audit").fetchone()[0] >= 25
    conn.close()
    assert list((tmp_path / "runtime" / "raw").rglob("*.json.gz"))
    tickets = sorted((tmp_path / "runtime" / "tickets").iterdir())
    assert [p.suffix for p in tickets] == [".json", ".md"]
    assert "ticket:" in proc.stdout and str(tickets[0].parent) in proc.stdout

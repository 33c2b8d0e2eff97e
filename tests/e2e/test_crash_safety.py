"""SIGKILL the deep backfill at random moments, re-run, and compare with an
uninterrupted run: the store must be intact and converge to the same content."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from database.manager import Database

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-19"
TRIALS = 10


def universe(tmp_path, n=200):
    from bench.backfill import symbol_names
    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": s} for s in symbol_names(n)]
                                + [{"symbol": "BTC-USD"}, {"symbol": "EURUSD=X"}, {"symbol": "GC=F"}]}))
    return path


def start(db, universe_path, runtime_dir):
    # Small transactions: many commit points for a kill to fall between.
    settings = runtime_dir / "settings.toml"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    settings.write_text("[ingest]\nsymbols_per_transaction = 10\n")
    env = dict(os.environ, RUNTIME_DIR=str(runtime_dir), LOGS_DIR=str(runtime_dir / "logs"),
               SETTINGS_FILE=str(settings))
    return subprocess.Popen([sys.executable, str(REPO / "ingest_history.py"), "--provider", "synthetic",
                             "--as-of", AS_OF, "--universe", str(universe_path), "--db", str(db), "--json"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)


def wait_for_store(db_path, proc, timeout=120.0):
    """Block until bars are being written: the WAL has grown past the schema
    and run rows (about 100 KB) that precede any bar."""
    wal = Path(f"{db_path}-wal")
    deadline = time.monotonic() + timeout
    while not (wal.exists() and wal.stat().st_size > 400_000):
        assert proc.poll() is None, "ingest exited before writing"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return time.monotonic()


def test_sigkill_at_random_moments_then_rerun_converges(tmp_path):
    uni = universe(tmp_path)
    ref_db = tmp_path / "reference.db"
    proc = start(ref_db, uni, tmp_path / "rt-ref")
    writing_from = wait_for_store(ref_db, proc)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    write_phase = time.monotonic() - writing_from
    with Database(ref_db) as db:
        reference = db.bars.content_hash()
        ref_rows = db.table_count("price_history")
    assert ref_rows > 100 * 1260

    rng = random.Random(20261122)
    killed_mid_write = 0
    for trial in range(TRIALS):
        db_path = tmp_path / f"trial{trial}.db"
        runtime_dir = tmp_path / f"rt{trial}"
        proc = start(db_path, uni, runtime_dir)
        wait_for_store(db_path, proc)
        time.sleep(rng.uniform(0.0, 0.95) * write_phase)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if db_path.exists():
            with Database(db_path) as db:
                assert db.check_integrity().detail == "ok"
                partial = db.table_count("price_history")
                # Bars and their audit rows commit together: never one without the other.
                audited = db.conn.execute("SELECT COUNT(*) FROM ingestion_audit WHERE outcome='SUCCESS'").fetchone()[0]
                symbols = db.conn.execute("SELECT COUNT(DISTINCT symbol) FROM price_history").fetchone()[0]
                assert audited == symbols
                killed_mid_write += 0 < partial < ref_rows
        proc = start(db_path, uni, runtime_dir)
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
        with Database(db_path) as db:
            assert db.check_integrity().detail == "ok"
            assert db.bars.content_hash() == reference, f"trial {trial} diverged"
    # The random moments must actually land inside the write phase sometimes.
    assert killed_mid_write >= 3

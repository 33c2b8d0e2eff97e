"""Raw archives follow their bars (issue 10, failure 11).

An archive is written by the fetch worker before its bars are committed; a
run that fails (here: the raw archive on a real, tiny tmpfs that fills up,
in a private mount namespace) or a repair that fails used to leave the
archives of symbols whose bars were never committed.  Now exactly the
archives of committed bars remain.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import load_settings
from core.universe import load_universe
from data.collectors.repair import repair_symbol
from database.manager import Database
from tests.integration.test_interrupted_runs import (AS_OF, REPO, desk_env, ingest_cmd, needs_mount_ns, run_rows,
                                                     universe)

# Lists every file under $RAW from inside the namespace (the tmpfs and its
# files vanish with it), then exits with the command's code.
IN_NAMESPACE = ('mount -t tmpfs -o {options} tmpfs "$RAW" && {{ "$@"; rc=$?; '
                'find "$RAW" -type f -printf "%P\\n" > "$LIST"; exit $rc; }}')


def _in_namespace(options: str, cmd: list[str], env: dict[str, str], raw: Path, listing: Path):
    raw.mkdir(exist_ok=True)
    done = subprocess.run(["unshare", "-m", "sh", "-c", IN_NAMESPACE.format(options=options), "sh", *cmd],
                          env={**env, "RAW": str(raw), "LIST": str(listing)}, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    return done, sorted(line for line in listing.read_text().splitlines() if line)


def _committed_archives(db: Path) -> list[str]:
    """Archives the store's committed audit rows name, relative to raw/."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT raw_archive FROM ingestion_audit WHERE outcome = 'SUCCESS' "
                            "AND raw_archive IS NOT NULL").fetchall()
    finally:
        conn.close()
    return sorted(str(Path(r[0]).relative_to(Path(r[0]).parents[1])) for r in rows)


@needs_mount_ns
def test_a_run_failed_by_a_full_disk_keeps_only_the_archives_of_committed_bars(tmp_path, runtime):
    uni, db = universe(tmp_path, 260), tmp_path / "desk.db"
    # Room for the first batch of 200 (synthetic batch_size; committed 10 at a
    # time), not for 260 symbols.
    done, files = _in_namespace("size=6m", ingest_cmd(uni, "--provider", "synthetic", "--db", str(db)),
                                desk_env(runtime.root), runtime.root / "raw", tmp_path / "listing")
    assert done.returncode == 1 and "No space left on device" in done.stderr, done.stderr
    (run,) = run_rows(db)
    assert run["status"] == "FAILED"
    committed = _committed_archives(db)
    assert committed, "the disk filled before any transaction committed: enlarge the tmpfs"
    assert files == committed


@needs_mount_ns
def test_a_repair_failed_by_a_full_disk_leaves_no_partial_archive(tmp_path, runtime):
    uni = tmp_path / "universe.json"
    uni.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    db = tmp_path / "desk.db"
    env = desk_env(runtime.root)
    seeded = subprocess.run(ingest_cmd(uni, "--provider", "synthetic", "--db", str(db)), env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert seeded.returncode in (0, 2), seeded.stderr
    cmd = [sys.executable, str(REPO / "repair_db.py"), "--universe", str(uni),
           "--db", str(db), "--symbol", "AAPL", "--from", "2024-01-02", "--to", "2026-11-19",
           "--provider", "synthetic", "--as-of", AS_OF]
    done, files = _in_namespace("size=8k", cmd, env, runtime.root / "raw", tmp_path / "listing")
    assert done.returncode == 1 and "No space left on device" in done.stderr, done.stderr
    assert files == []


def test_a_repair_whose_write_fails_removes_its_archive(tmp_path, runtime, monkeypatch):
    uni = tmp_path / "universe.json"
    uni.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    settings = load_settings()
    universe_ = load_universe(uni)

    def refused(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with Database(runtime.db) as db:
        monkeypatch.setattr(db.bars, "write_repair", refused)
        with pytest.raises(OSError):
            repair_symbol(db, universe_, settings, runtime, symbol="AAPL", start=dt.date(2026, 10, 1),
                          end=dt.date(2026, 10, 30), provider="synthetic")
    raw = runtime.root / "raw"
    assert not raw.exists() or [p for p in raw.rglob("*") if p.is_file()] == []

"""Issue 10, failures 12 and 13: store failures told apart, and a damaged
store refused before anything is fetched or written.

Each cause has its own exit code and runbook procedure (only real corruption
names 'Database corruption'); the read-only commands read a healthy WAL store
on a read-only mount; a corrupt file's bytes are unchanged by every attempt.
Read-only mounts and a full disk are real (a private mount namespace,
``unshare -m``, as root); permission denied is the errno translation's unit
test (tests/unit/test_store_failure_classes.py), since root passes chmod.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import ingest_history
import main as main_cli
import trading_daemon
import verify_backfill
import verify_db_status
from tests.bar_frames import clean_bars, window_sessions

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-19"
CORRUPTION = "(see docs/runbook.md, 'Database corruption')"

needs_root_mounts = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("mount") is None,
    reason="needs root and unshare(1) for a private mount namespace")


@pytest.fixture
def universe(tmp_path):
    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "MSFT"}]}))
    return path


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def ingest(universe, db, *extra):
    return invoke(ingest_history.main, "--universe", universe, "--db", db, "--as-of", AS_OF, *extra)


def healthy_store(universe, db: Path) -> Path:
    result = ingest(universe, db, "--provider", "synthetic")
    assert result.exit_code == 0, result.output
    return db


def vendor_csvs(directory: Path) -> Path:
    """Per-symbol CSVs (the file provider's vendor format) for the universe."""
    directory.mkdir(exist_ok=True)
    sessions = window_sessions(as_of=dt.date.fromisoformat(AS_OF))
    for seed, symbol in enumerate(("AAPL", "MSFT")):
        frame = clean_bars(sessions, seed=seed).rename(columns={
            "date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
            "adj_close": "Adj Close", "volume": "Volume"})
        frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
        frame.to_csv(directory / f"{symbol}.csv", index=False)
    return directory


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage_pages(db: Path) -> None:
    """Junk over the pages after the schema page: the header stays SQLite's,
    quick_check fails (SQLITE_CORRUPT territory, not 'not a database')."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    junk = bytes((i * 37 + 11) % 256 for i in range(page * 3))
    data[page * 2:page * 5] = junk[:len(data[page * 2:page * 5])]
    db.write_bytes(bytes(data))


def companions_absent(db: Path) -> bool:
    return not any(db.with_name(db.name + s).exists() for s in ("-wal", "-shm", "-journal"))


# ------------------------------------------------------- not a database: 65
def test_zero_byte_db_is_not_a_database_not_corruption(runtime, universe, tmp_path):
    db = tmp_path / "empty.db"
    db.touch()
    for result in (invoke(verify_db_status.main, "--db", db), ingest(universe, db, "--provider", "synthetic")):
        assert result.exit_code == 65, result.output
        assert "empty file (0 bytes)" in result.stderr
        assert "'Database: not a database file'" in result.stderr and CORRUPTION not in result.stderr
    assert db.stat().st_size == 0 and companions_absent(db)


def test_a_json_file_as_db_is_not_a_database(runtime, universe, tmp_path):
    db = tmp_path / "universe_copy.json"
    db.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    before = digest(db)
    for result in (invoke(verify_db_status.main, "--db", db), invoke(verify_backfill.main, "--db", db),
                   ingest(universe, db, "--provider", "synthetic")):
        assert result.exit_code == 65, result.output
        assert f"{db}: a JSON file, not a SQLite database" in result.stderr
        assert CORRUPTION not in result.stderr
    assert digest(db) == before and companions_absent(db)


# ------------------------------------------------------- corruption: 79
def test_garbage_bytes_are_corruption_and_stay_untouched(runtime, universe, tmp_path):
    db = tmp_path / "garbage.db"
    db.write_bytes(bytes((i * 131 + 7) % 256 for i in range(64 * 1024)))
    before = digest(db)
    for result in (invoke(verify_db_status.main, "--db", db),
                   ingest(universe, db, "--provider", "synthetic"),
                   ingest(universe, db, "--mode=verify")):
        assert result.exit_code == 79, result.output
        assert result.stderr.strip().endswith(CORRUPTION)
    assert digest(db) == before and companions_absent(db)


@pytest.mark.parametrize("extra", [("--provider", "synthetic"), ("--mode=verify",), ("--provider", "file")],
                         ids=["synthetic", "verify", "file"])
def test_a_corrupt_store_is_refused_before_anything_is_fetched_or_written(runtime, universe, tmp_path, extra):
    if "file" in extra:
        data_dir = vendor_csvs(tmp_path / "csv")
        args = [*extra, "--data-dir", data_dir]
        db = tmp_path / "desk.db"
        assert ingest(universe, db, *args).exit_code == 0
    else:
        args = list(extra)
        db = healthy_store(universe, tmp_path / "desk.db")
    damage_pages(db)
    before = digest(db)
    raw_before = sorted(p.name for p in (runtime.root / "raw").glob("*")) if (runtime.root / "raw").exists() else []
    t0 = time.perf_counter()
    result = ingest(universe, db, *args)
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 79, result.output
    assert ("quick_check failed" in result.stderr or "malformed" in result.stderr), result.stderr
    assert result.stderr.strip().endswith(CORRUPTION)
    assert elapsed < 10, elapsed            # refused at once: no vendor, no fetch
    assert digest(db) == before and companions_absent(db)
    raw_after = sorted(p.name for p in (runtime.root / "raw").glob("*")) if (runtime.root / "raw").exists() else []
    assert raw_after == raw_before           # no run archived a payload


def test_stage2_on_a_corrupt_store_writes_nothing(runtime, universe, tmp_path):
    db = healthy_store(universe, tmp_path / "desk.db")
    damage_pages(db)
    before = digest(db)
    result = invoke(main_cli.main, "--db", db, "--universe", universe, "--run-once", "--as-of", AS_OF)
    assert result.exit_code in (1, 79), result.output      # the read-only gate may meet the damage first
    assert "database error" in result.stderr and result.stderr.strip().endswith(CORRUPTION)
    assert digest(db) == before


# --------------------------------------------------------- missing: 66
@pytest.mark.parametrize("command, extra", [(main_cli.main, ("--run-once",)), (trading_daemon.main, ())],
                         ids=["main.py", "trading_daemon.py"])
def test_main_with_a_mistyped_db_is_66_and_no_halt(runtime, universe, tmp_path, command, extra):
    wrong = tmp_path / "institutional_tradng.db"
    result = invoke(command, "--db", wrong, "--universe", universe, *extra, "--as-of", AS_OF)
    assert result.exit_code == 66, result.output
    assert str(wrong) in result.stderr and "database not found" in result.stderr
    assert "DATA_GOVERNANCE" not in result.output
    assert not runtime.governance_halt_log.exists() or "DATA_GOVERNANCE" not in \
        runtime.governance_halt_log.read_text()
    assert not wrong.exists()


def test_verify_tools_with_a_missing_db_are_66(runtime, tmp_path):
    wrong = tmp_path / "nope" / "x.db"
    for command in (verify_db_status.main, verify_backfill.main):
        result = invoke(command, "--db", wrong)
        assert result.exit_code == 66 and "database not found" in result.stderr
    assert not wrong.parent.exists()


# ------------------------------------------- read-only mount, full disk
def in_namespace(script: str, runtime) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUNTIME_DIR": str(runtime.root), "LOGS_DIR": str(runtime.logs), "ALERT_DRY_RUN": "1"}
    env.pop("ALERT_URLS", None)
    return subprocess.run(["unshare", "-m", "sh", "-ec", script], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@needs_root_mounts
def test_read_only_tools_read_a_healthy_wal_store_on_a_read_only_mount(runtime, universe, tmp_path):
    store = tmp_path / "backup"
    store.mkdir()
    db = healthy_store(universe, store / "desk.db")
    assert db.read_bytes()[18:20] == b"\x02\x02"               # a WAL store
    before = digest(db)
    py = sys.executable
    proc = in_namespace(
        f"mount --bind {store} {store}; mount -o remount,ro,bind {store}\n"
        f"! touch {store}/probe 2>/dev/null\n"
        f"{py} verify_db_status.py --db {db} --universe {universe} --as-of {AS_OF} --json > {tmp_path}/status.json"
        f" || echo status=$? >&2\n"
        f"{py} verify_backfill.py --db {db} --universe {universe} --as-of {AS_OF} --strict --json"
        f" > {tmp_path}/backfill.json\n"
        f"{py} ingest_history.py --db {db} --universe {universe} --as-of {AS_OF} --provider synthetic"
        f" || echo ingest=$? >&2\n", runtime)
    assert proc.returncode == 0, proc.stderr
    assert "not a readable SQLite database" not in proc.stderr
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["integrity"]["status"] == "PASS", status["integrity"]
    assert json.loads((tmp_path / "backfill.json").read_text())["compliance_pct"] == 100.0
    assert "ingest=73" in proc.stderr and "read-only filesystem" in proc.stderr
    assert "'Database: read-only filesystem'" in proc.stderr and CORRUPTION not in proc.stderr
    assert digest(db) == before and companions_absent(db)


@needs_root_mounts
def test_ingest_on_a_full_disk_is_disk_full_not_corruption(runtime, universe, tmp_path):
    seed = healthy_store(universe, tmp_path / "seed.db")
    disk = tmp_path / "disk"
    disk.mkdir()
    py = sys.executable
    proc = in_namespace(
        f"mount -t tmpfs -o size=4m tmpfs {disk}; cp {seed} {disk}/desk.db\n"
        f"dd if=/dev/zero of={disk}/filler bs=64k 2>/dev/null || true\n"
        f"{py} ingest_history.py --db {disk}/desk.db --universe {universe} --as-of {AS_OF} --provider synthetic"
        f" || echo ingest=$? >&2\n"
        f"cmp {seed} {disk}/desk.db && echo unchanged\n", runtime)
    assert proc.returncode == 0, proc.stderr
    assert "ingest=74" in proc.stderr, proc.stderr
    assert "disk full" in proc.stderr and "'Database: disk full'" in proc.stderr
    assert CORRUPTION not in proc.stderr
    assert "unchanged" in proc.stdout

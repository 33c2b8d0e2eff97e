"""Interrupted and dead runs are visible (issue 9, failure 5).

Real ingest subprocesses, real signals, real (tiny, private) filesystems:
SIGINT and SIGTERM stop a run within about a second and record it ABORTED;
a SIGKILLed run is shown ABORTED and closed by the next run; a run that
fails on a full or read-only raw archive ends FAILED with its error; the
last-ingest check fails on each until a later run succeeds; a repair that
leaves its symbol not ACTIVE exits 2.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import repair_db
import verify_db_status
from tests.fakes.vendor_server import VendorServer, sample_frame

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-19"


def universe(tmp_path: Path, n: int) -> Path:
    from bench.backfill import symbol_names
    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": s} for s in symbol_names(n)]}))
    return path


def desk_env(runtime: Path, **extra: str) -> dict[str, str]:
    """The test's own RUNTIME_DIR/LOGS_DIR, small transactions (many commit
    points for a signal to fall between)."""
    settings = runtime / "settings.toml"
    settings.write_text("[ingest]\nsymbols_per_transaction = 10\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FILE_PROVIDER_DIR", "PROVIDER_PRIORITY")}
    return {**env, "RUNTIME_DIR": str(runtime), "LOGS_DIR": str(runtime / "logs"),
            "SETTINGS_FILE": str(settings), **extra}


def ingest_cmd(uni: Path, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "ingest_history.py"), "--as-of", AS_OF, "--universe", str(uni), *args]


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def query(db: Path, sql: str, params=()) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:      # schema not created yet
        return []
    finally:
        conn.close()


def run_rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM ingestion_audit_runs ORDER BY rowid")]
    finally:
        conn.close()


def wait_until(predicate, proc: subprocess.Popen, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"ingest exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop_with(proc: subprocess.Popen, signum: int) -> tuple[int, float, str]:
    """Send ``signum``; (exit code, seconds to exit, stderr)."""
    t0 = time.monotonic()
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no exit within 10 s of {signal.Signals(signum).name}: {err}")
    return proc.returncode, time.monotonic() - t0, err


def status(db: Path, uni: Path, *flags: str):
    result = CliRunner().invoke(verify_db_status.main, ["--db", str(db), "--universe", str(uni), "--as-of", AS_OF,
                                                        *flags], catch_exceptions=False)
    return result


def last_ingest(db: Path, uni: Path) -> tuple[int, dict]:
    result = status(db, uni, "--last-ingest", "--json")
    return result.exit_code, json.loads(result.stdout)["last_ingest"]


def test_sigint_mid_run_stops_promptly_records_aborted_and_fails_the_check_until_a_later_run(tmp_path, runtime):
    uni, db = universe(tmp_path, 80), tmp_path / "desk.db"
    env = desk_env(runtime.root)
    proc = start(ingest_cmd(uni, "--provider", "synthetic", "--db", str(db)), env)
    wait_until(lambda: (query(db, "SELECT COUNT(*) FROM ingestion_audit") or [(0,)])[0][0] >= 20, proc,
               what="20 symbols written")
    code, seconds, err = stop_with(proc, signal.SIGINT)

    assert code == 130, err
    assert seconds < 2.5, f"took {seconds:.1f}s to act on SIGINT"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted by SIGINT" in lines[0] and "ABORTED" in lines[0], err
    assert "Aborted." not in err and "Traceback" not in err
    (run,) = run_rows(db)
    assert run["status"] == "ABORTED" and run["finished_at"] and run["error"] == "interrupted by SIGINT"
    assert run["owner_pid"] == proc.pid and run["owner_host"] and run["run_id"] in lines[0]
    # Nothing half-done: every committed symbol has its audit row, and the run's counts say what was kept.
    symbols_with_bars = query(db, "SELECT COUNT(DISTINCT symbol) FROM price_history")[0][0]
    audited = query(db, "SELECT COUNT(*) FROM ingestion_audit WHERE outcome = 'SUCCESS'")[0][0]
    assert 20 <= audited == symbols_with_bars == run["symbols_succeeded"] < 80

    full = status(db, uni)
    assert full.exit_code == 2 and "All checks passed" not in full.output
    assert "last_ingest" in full.output.splitlines()[-1] and run["run_id"] in full.output
    code, check = last_ingest(db, uni)
    assert code == 2 and check["status"] == "FAIL" and check["run_id"] == run["run_id"]
    assert check["run_status"] == "ABORTED" and check["error"] == "interrupted by SIGINT"

    # The same command again finishes and passes: that clears it.
    later = subprocess.run(ingest_cmd(uni, "--provider", "synthetic", "--db", str(db)),
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert later.returncode == 0, later.stderr
    code, check = last_ingest(db, uni)
    assert code == 0 and check["status"] == "PASS" and check["run_id"] != run["run_id"]


@pytest.fixture
def slow_vendor(runtime, monkeypatch):
    """A loopback Yahoo that takes 4 s per answer (longer than the client's
    deadline: every request is retried), for a run with fetches in flight."""
    with VendorServer(latency=4.0) as server:
        for i, symbol in enumerate(("AAPL", "MSFT", "JPM", "SPY")):
            server.register(symbol, sample_frame(seed=i + 1))
        yield server


def test_sigterm_with_vendor_calls_in_flight_exits_at_once_and_a_live_run_stays_running(tmp_path, runtime,
                                                                                          slow_vendor):
    uni = tmp_path / "universe.json"
    uni.write_text(json.dumps({"symbols": [{"symbol": s} for s in ("AAPL", "MSFT", "JPM", "SPY")]}))
    db = tmp_path / "desk.db"
    env = desk_env(runtime.root, YAHOO_BASE_URL=slow_vendor.url, YAHOO_ENABLED="true")
    proc = start(ingest_cmd(uni, "--provider", "yahoo", "--db", str(db)), env)
    wait_until(lambda: query(db, "SELECT run_id FROM ingestion_audit_runs"), proc, what="the run's row")
    time.sleep(0.5)       # the fetches are in flight: no answer comes before 4 s

    # Alive: another process's check shows it RUNNING (WARN), and another run on the store leaves it so.
    code, check = last_ingest(db, uni)
    assert check["status"] == "WARN" and check["run_status"] == "RUNNING" and f"pid {proc.pid}" in check["owner"]
    verify = subprocess.run(ingest_cmd(uni, "--mode=verify", "--db", str(db)), env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 2, verify.stderr          # nothing stored yet: verification fails
    assert [r["status"] for r in run_rows(db)] == ["RUNNING", "FAILED"]

    code, seconds, err = stop_with(proc, signal.SIGTERM)
    assert code == 143, err
    assert seconds < 2.0, f"took {seconds:.1f}s with vendor calls in flight"
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    first = run_rows(db)[0]
    assert (first["status"], first["error"]) == ("ABORTED", "interrupted by SIGTERM") and first["finished_at"]


def test_sigkill_leaves_a_dead_running_row_shown_aborted_and_closed_by_the_next_run(tmp_path, runtime):
    uni, db = universe(tmp_path, 80), tmp_path / "desk.db"
    env = desk_env(runtime.root)
    proc = start(ingest_cmd(uni, "--provider", "synthetic", "--db", str(db)), env)
    wait_until(lambda: (query(db, "SELECT COUNT(*) FROM ingestion_audit") or [(0,)])[0][0] >= 10, proc,
               what="10 symbols written")
    proc.send_signal(signal.SIGKILL)
    # communicate() reads to EOF: its fetch workers must not outlive it holding the pipes.
    proc.communicate(timeout=10)
    (row,) = run_rows(db)
    assert row["status"] == "RUNNING" and row["finished_at"] is None

    result = status(db, uni, "--last-ingest")
    assert result.exit_code == 2 and "All checks passed" not in result.output
    assert "ABORTED; recorded RUNNING" in result.output and f"pid {proc.pid}" in result.output
    code, check = last_ingest(db, uni)
    assert code == 2 and check["run_status"] == "ABORTED" and check["recorded_status"] == "RUNNING"

    nxt = subprocess.run(ingest_cmd(uni, "--mode=verify", "--db", str(db)), env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert nxt.returncode == 2                       # most symbols were never written
    killed, verify_run = run_rows(db)
    assert killed["status"] == "ABORTED" and killed["finished_at"]
    assert f"pid {proc.pid}" in killed["error"] and verify_run["run_id"] in killed["error"]
    assert killed["symbols_succeeded"] == query(db, "SELECT COUNT(DISTINCT symbol) FROM price_history")[0][0] >= 10
    assert not query(db, "SELECT 1 FROM ingestion_audit_runs WHERE status = 'RUNNING'")


def _can_mount_privately() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mount_ns = pytest.mark.skipif(not _can_mount_privately(),
                                    reason="needs a private mount namespace (unshare -m, root)")


@needs_mount_ns
@pytest.mark.parametrize("mount_options, cause", [("size=64k", "No space left on device"),
                                                  ("ro,size=64k", "Read-only file system")],
                         ids=["full-disk", "read-only"])
def test_a_raw_archive_on_a_full_or_read_only_filesystem_ends_the_run_failed(tmp_path, runtime, mount_options,
                                                                            cause):
    uni, db = universe(tmp_path, 40), tmp_path / "desk.db"
    raw = runtime.root / "raw"
    raw.mkdir()
    # Only the ingest sees the tiny filesystem, in its own mount namespace.
    script = f'mount -t tmpfs -o {mount_options} tmpfs "$RAW" && exec "$@"'
    cmd = ["unshare", "-m", "sh", "-c", script, "sh",
           *ingest_cmd(uni, "--provider", "synthetic", "--db", str(db))]
    done = subprocess.run(cmd, env=desk_env(runtime.root, RAW=str(raw)), cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: raw archive ") and cause in lines[0], done.stderr
    (run,) = run_rows(db)
    assert run["status"] == "FAILED" and run["finished_at"] and cause in run["error"]
    assert run["error"].startswith("RawArchiveError: raw archive ")
    code, check = last_ingest(db, uni)
    assert code == 2 and check["run_status"] == "FAILED" and cause in check["error"]


def test_a_repair_that_leaves_the_symbol_not_active_exits_2(tmp_path, runtime):
    uni = tmp_path / "universe.json"
    uni.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    env = desk_env(runtime.root)
    # A short history: AAPL is QUARANTINED (fewer than 1,000 rows), and a repair cannot change that.
    short = subprocess.run(ingest_cmd(uni, "--provider", "synthetic", "--start", "2026-01-02", "--end", AS_OF),
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert short.returncode == 2, short.stderr
    result = CliRunner().invoke(repair_db.main, ["--universe", str(uni), "--symbol", "AAPL", "--from", "2026-03-02",
                                                 "--to", "2026-03-31", "--provider", "synthetic", "--as-of", AS_OF],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "AAPL is QUARANTINED (INSUFFICIENT_HISTORY), not ACTIVE" in result.output
    doc = json.loads(CliRunner().invoke(repair_db.main, [
        "--universe", str(uni), "--symbol", "AAPL", "--from", "2026-03-02", "--to", "2026-03-31",
        "--provider", "synthetic", "--as-of", AS_OF, "--json"], catch_exceptions=False).stdout)
    assert doc["exit_code"] == 2 and doc["state_after"] == "QUARANTINED"


def test_an_owner_is_gone_only_when_this_host_can_tell(tmp_path):
    from core.process import ProcessIdentity, owner_gone   # here: the rest of the file runs on older code too
    me = ProcessIdentity.current()
    assert owner_gone(me.pid, me.host, me.started) is None
    # A recorded owner whose pid now belongs to another process (ours): pid reuse is not liveness.
    assert "another process" in owner_gone(me.pid, me.host, "boot:1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert owner_gone(int(dead.stdout), me.host, None) == f"pid {int(dead.stdout)} on host {me.host} is gone"
    assert owner_gone(int(dead.stdout), "another-host.example", None) is None
    assert owner_gone(None, None, None) is None


def test_closing_an_unfinished_run_never_overwrites_a_finished_one(fresh_db):
    # The reconciling run and a slow owner can race: the owner's own outcome wins.
    fresh_db.runs.begin("r1", "deep_backfill", AS_OF, {}, "2026-11-19T00:00:00Z", 3,
                        owner={"pid": 1, "host": "h", "started": "b:1"})
    fresh_db.runs.finish("r1", status="SUCCESS", symbols_succeeded=3, symbols_failed=0, rows_written=9,
                         providers_used={"synthetic": 3}, verification="PASSED")
    assert fresh_db.runs.close_unfinished("r1", status="ABORTED", error="pid 1 on host h is gone") is False
    (row,) = fresh_db.runs.recent(1)
    assert (row["status"], row["error"], row["owner_pid"], row["owner_host"]) == ("SUCCESS", None, 1, "h")
    fresh_db.runs.begin("r2", "incremental", AS_OF, {}, "2026-11-19T00:01:00Z", 3)
    assert [r["run_id"] for r in fresh_db.runs.running()] == ["r2"]
    assert fresh_db.runs.close_unfinished("r2", status="FAILED", error="StoreAccessError: disk full") is True
    assert fresh_db.runs.recent(1)[0]["finished_at"] and fresh_db.runs.running() == []

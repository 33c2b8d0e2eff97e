"""Every failure path alerts through the one policy (issue 9, failure 8),
through the real commands: the ingest's verification, "all providers
failed", a command's non-zero exit (critical, audited), a damaged store, a
crash outside the error tree, the mute file.  On the code before the policy
only the ingest's verification alerted, once per run, never critical; a
command's exit and a damaged store left no audit line and no alert."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import ingest_history
import verify_backfill
from cli.command import OperatorCommand
from core.alert_ledger import AlertLedger

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-19"


@pytest.fixture
def desk(runtime, tmp_path, monkeypatch):
    """A runtime dir, dry-run alerts, a two-symbol universe."""
    monkeypatch.setenv("ALERT_DRY_RUN", "1")
    monkeypatch.delenv("ALERT_URLS", raising=False)
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "MSFT"}]}))
    return runtime, universe


def ingest(universe, *extra):
    result = CliRunner().invoke(ingest_history.main, ["--universe", str(universe), "--provider", "synthetic",
                                                      "--as-of", AS_OF, "--json", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def artifacts(runtime, key=None):
    # In the order they were written: two runs in one second have run ids
    # that sort by their random part, not by time.
    found = sorted((json.loads(p.read_text()) for p in runtime.alerts_dir.glob("*/*.json")), key=lambda a: a["ts"])
    return [a for a in found if key is None or a["key"] == key]


def decided(runtime, key):
    return [e["outcome"] for e in AlertLedger(runtime.alerts_dir).entries() if e["key"] == key]


def audit(runtime):
    path = runtime.audit_jsonl
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def subprocess_env(runtime):
    env = {k: v for k, v in os.environ.items() if k not in ("SETTINGS_FILE", "SYNTHETIC_DEFECTS", "ALERT_URLS")}
    return {**env, "RUNTIME_DIR": str(runtime.root), "LOGS_DIR": str(runtime.logs), "ALERT_DRY_RUN": "1"}


def test_a_verification_failing_three_runs_alerts_once_then_one_recovery(desk, monkeypatch):
    runtime, universe = desk
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:short_history=1100")
    for _ in range(3):
        code, report = ingest(universe)
        assert code == 2 and report["governance"]["verification"] == "FAILED"
    assert decided(runtime, "ingest.verification_failed") == ["DRY_RUN", "DUPLICATE", "DUPLICATE"]
    assert decided(runtime, "job.ingest_history.exit") == ["DRY_RUN", "DUPLICATE", "DUPLICATE"]
    [job] = artifacts(runtime, "job.ingest_history.exit")
    assert job["severity"] == "critical" and job["title"] == "ingest_history exited 2"

    monkeypatch.delenv("SYNTHETIC_DEFECTS")      # the vendor sends the full history again
    code, report = ingest(universe)
    assert code == 0
    recovered = [a for a in artifacts(runtime) if a["recovery"]]
    assert sorted(a["key"] for a in recovered) == ["ingest.verification_failed", "job.ingest_history.exit"]
    assert all(a["severity"] == "info" for a in recovered)
    assert [a["outcome"] for a in report["governance"]["alerts"]] == ["DRY_RUN"]
    code, report = ingest(universe)              # healthy again: nothing more to say
    assert len(artifacts(runtime)) == 4


def test_all_providers_failed_is_critical(desk, monkeypatch):
    runtime, universe = desk
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "AAPL:unavailable;MSFT:unavailable")
    code, _ = ingest(universe)
    assert code == 1
    [alert] = artifacts(runtime, "providers.all_failed")
    assert alert["severity"] == "critical" and "--provider synthetic" in alert["body"]
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:unavailable")    # one provider answer is back
    ingest(universe)
    assert [a["recovery"] for a in artifacts(runtime, "providers.all_failed")] == [False, True]


def test_verify_backfill_strict_failing_is_a_critical_alert_and_an_audit_line_in_a_subprocess(desk, monkeypatch):
    runtime, universe = desk
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:short_history=1100")
    ingest(universe)
    before_alerts = len(artifacts(runtime))
    digest = hashlib.sha256(Path(runtime.db).read_bytes()).hexdigest()
    proc = subprocess.run([sys.executable, str(REPO / "verify_backfill.py"), "--strict", "--universe", str(universe),
                           "--as-of", AS_OF], env=subprocess_env(runtime), cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    [alert] = artifacts(runtime, "job.verify_backfill.exit")
    assert alert["severity"] == "critical" and alert["title"] == "verify_backfill exited 2"
    assert len(artifacts(runtime)) == before_alerts + 1
    [line] = [e for e in audit(runtime) if e["event"] == "job_exit" and e.get("job") == "verify_backfill"]
    assert line["exit_code"] == 2 and line["level"] == "ERROR"
    assert hashlib.sha256(Path(runtime.db).read_bytes()).hexdigest() == digest   # verify still writes no store


@pytest.mark.parametrize("script, code", [("ingest_history.py", 79), ("verify_db_status.py", 79)])
def test_a_damaged_store_exits_non_zero_with_an_audit_line_and_a_critical_alert(desk, script, code):
    runtime, universe = desk
    Path(runtime.db).write_bytes(bytes((i * 131 + 7) % 256 for i in range(8192)))    # junk: corruption
    args = ["--universe", str(universe), "--as-of", AS_OF] + (["--provider", "synthetic"]
                                                              if script == "ingest_history.py" else [])
    proc = subprocess.run([sys.executable, str(REPO / script), *args], env=subprocess_env(runtime), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "file is not a database" in proc.stderr
    job = Path(script).stem
    [alert] = artifacts(runtime, f"job.{job}.exit")
    assert alert["severity"] == "critical" and "file is not a database" in alert["body"]
    [line] = [e for e in audit(runtime) if e["event"] == "job_exit"]
    assert line["exit_code"] == code and "file is not a database" in line["error"]
    # The scheduler tries again an hour later: the same failure is not alerted twice.
    subprocess.run([sys.executable, str(REPO / script), *args], env=subprocess_env(runtime), cwd=REPO,
                   capture_output=True, timeout=120)
    assert decided(runtime, f"job.{job}.exit") == ["DRY_RUN", "DUPLICATE"]


def test_a_crash_outside_the_error_tree_is_alerted_and_its_traceback_kept(desk):
    runtime, _ = desk

    @click.command(cls=OperatorCommand, job="nightly_report")
    def nightly_report():
        raise ZeroDivisionError("division by zero")

    result = CliRunner().invoke(nightly_report, [])
    assert isinstance(result.exception, ZeroDivisionError)      # not swallowed: Python prints the traceback
    [alert] = artifacts(runtime, "job.nightly_report.exit")
    assert alert["severity"] == "critical" and "ZeroDivisionError: division by zero" in alert["body"]
    [line] = [e for e in audit(runtime) if e["event"] == "job_exit"]
    assert line["crash"] is True and line["exit_code"] == 1


def test_a_mute_file_holds_every_alert_of_a_failing_run(desk, monkeypatch):
    runtime, universe = desk
    runtime.alerts_muted.write_text("until: 2999-01-01T00:00Z\nreason: vendor maintenance\n")
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "AAPL:unavailable;MSFT:unavailable")
    code, report = ingest(universe)
    assert code == 1
    assert artifacts(runtime) == []
    assert decided(runtime, "providers.all_failed") == ["MUTED"]
    assert decided(runtime, "job.ingest_history.exit") == ["MUTED"]
    assert {a["outcome"] for a in report["governance"]["alerts"]} == {"MUTED"}
    # Unmuted, the problem still holds: it alerts now (what was muted was never delivered).
    runtime.alerts_muted.unlink()
    ingest(universe)
    assert [a["key"] for a in artifacts(runtime) if a["severity"] == "critical"] == \
        ["providers.all_failed", "job.ingest_history.exit"]


def test_a_usage_error_writes_nothing(desk):
    runtime, _ = desk
    result = CliRunner().invoke(verify_backfill.main, ["--as-of", "yesterday"])
    assert result.exit_code == 64
    assert not runtime.alerts_dir.exists() and not runtime.audit_jsonl.exists()

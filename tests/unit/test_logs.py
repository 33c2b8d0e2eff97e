"""The one logging setup (core/logs.py): the runbook's four files each get
their records, in the form they have always had, no secret reaches any of
them, and two logs in one process never share a file or leave anything
behind."""
from __future__ import annotations

import io
import json
import logging
import re
import secrets
from pathlib import Path

import pytest
from rich.console import Console

from cli.console import LogConsole
from core.logs import LIBRARY_EVENT, AuditTrail, OperatorLog
from core.redaction import MASK, register_secret
from core.runtime import RuntimePaths

FIXED = ["ts", "level", "module", "run_id", "event"]
MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LIBRARY = "data.providers.test_logs"   # a library module's stdlib logger


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def paths(tmp_path, monkeypatch) -> RuntimePaths:
    monkeypatch.setenv("RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    return RuntimePaths.resolve()


def _files(paths: RuntimePaths) -> dict[str, Path]:
    return {"live_trading.log": paths.logs / "live_trading.log", "live.jsonl": paths.logs / "live.jsonl",
            "errors.jsonl": paths.logs / "errors.jsonl", "audit.jsonl": paths.audit_jsonl}


def test_a_registered_secret_reaches_none_of_the_four_files(paths):
    secret = "reg-" + secrets.token_hex(8)
    register_secret(secret)
    console = io.StringIO()
    # env={}: the registration alone makes it a secret.
    with OperatorLog(paths.logs, run_id="stage2-s", env={}) as log, \
            AuditTrail(paths.audit_jsonl, module="ingestion", run_id="run-s", env={}) as trail:
        log.attach(LogConsole(Console(file=console, width=300)))
        log.capture()
        log.info("CONFIG", message=f"using key {secret}", detail={secret: [f"x{secret}y", paths.root / secret]})
        log.info("PLAIN", url=f"https://vendor/?apiKey={secret}")
        try:
            try:
                raise ConnectionError(f"401 for key {secret}")
            except ConnectionError as cause:
                raise RuntimeError("auth failed") from cause
        except RuntimeError as exc:
            log.error("AUTH", exc=exc)
            logging.getLogger(LIBRARY).exception("vendor said %s", secret)
        trail.append("provider_failed", level="WARNING", error=f"HTTP 403: unknown API key {secret}")
        trail.append("run_started", priority=[secret], raw=paths.root / "raw" / secret)
    written = {name: path.read_text() for name, path in _files(paths).items()}
    assert all(written.values()), "every file must have been written for the test to bite"
    for name, text in {**written, "console": console.getvalue()}.items():
        assert secret not in text, name
        assert MASK in text, name
    assert "ConnectionError: 401 for key ***" in written["errors.jsonl"]


def test_each_file_gets_its_records(paths):
    with OperatorLog(paths.logs, run_id="stage2-r", module="trading") as log, \
            AuditTrail(paths.audit_jsonl, module="ingestion", run_id="run-r") as trail:
        log.log("DEBUG", "TICK", tick=1)
        log.info("ORDER", module="trading.agent", symbol="AAA", quantity=3)
        log.warning("KILL_SWITCH_HALT", message="halted")
        try:
            raise ValueError("bad thing")
        except ValueError as exc:
            log.error("LOOP_ERROR", exc=exc, tick=2)
        log.log("CRITICAL", "SAFE_MODE", reason="errors")
        trail.append("run_started", mode="incremental", symbols=2)
        trail.append("dead_letter", level="ERROR", symbol="BBB")
    files = _files(paths)
    live, errors, audit = (_jsonl(files[n]) for n in ("live.jsonl", "errors.jsonl", "audit.jsonl"))

    # live.jsonl: every Stage 2 record, every level, nothing of the trail.
    assert [(r["level"], r["event"]) for r in live] == [
        ("DEBUG", "TICK"), ("INFO", "ORDER"), ("WARNING", "KILL_SWITCH_HALT"), ("ERROR", "LOOP_ERROR"),
        ("CRITICAL", "SAFE_MODE")]
    assert all(list(r)[:5] == FIXED and r["run_id"] == "stage2-r" and MICROS.match(r["ts"]) for r in live)
    assert live[1]["module"] == "trading.agent" and live[2]["module"] == "trading"
    assert live[1]["symbol"] == "AAA" and live[1]["quantity"] == 3
    # errors.jsonl: ERROR and CRITICAL only, the exception with its stack trace.
    assert [r["event"] for r in errors] == ["LOOP_ERROR", "SAFE_MODE"]
    assert errors[0]["error_type"] == "ValueError" and errors[0]["error"] == "bad thing"
    assert errors[0]["traceback"].startswith("Traceback") and "ValueError: bad thing" in errors[0]["traceback"]
    assert "traceback" not in errors[1]
    assert not any("traceback" in r for r in live if r["level"] not in ("ERROR", "CRITICAL"))
    # live_trading.log: one human line per record, the stack trace after its line.
    human = files["live_trading.log"].read_text().splitlines()
    assert re.match(r"^\S+Z INFO     trading\.agent    ORDER symbol=AAA quantity=3$", human[1])
    assert human[2].endswith("trading          halted")
    at = next(i for i, line in enumerate(human) if "LOOP_ERROR" in line)
    assert human[at + 1] == "Traceback (most recent call last):"
    assert sum(line.startswith("20") for line in human) == 5
    # audit.jsonl: the trail's events only, its module and run, milliseconds.
    assert [(r["level"], r["event"]) for r in audit] == [("INFO", "run_started"), ("ERROR", "dead_letter")]
    assert all(list(r)[:5] == FIXED and r["module"] == "ingestion" and r["run_id"] == "run-r"
               and MILLIS.match(r["ts"]) for r in audit)


def test_two_logs_in_one_process_keep_to_their_own_files(tmp_path):
    first, second = OperatorLog(tmp_path / "a", run_id="a"), OperatorLog(tmp_path / "b", run_id="b")
    first.info("ONE")
    second.info("TWO")
    first.close()
    second.close()
    assert [r["event"] for r in _jsonl(tmp_path / "a" / "live.jsonl")] == ["ONE"]
    assert [r["event"] for r in _jsonl(tmp_path / "b" / "live.jsonl")] == ["TWO"]


def test_library_records_are_captured_until_close(tmp_path):
    library = logging.getLogger(LIBRARY)
    handlers_before = {name: list(logging.getLogger(name).handlers) for name in ("core", "data", "trading")}
    log = OperatorLog(tmp_path, run_id="stage2-c")
    library.warning("before the capture")
    log.capture()
    library.warning("alert %r could not be recorded", "x")
    library.error("vendor crashed")
    log.close()
    library.warning("after close")
    live = _jsonl(tmp_path / "live.jsonl")
    assert [r["message"] for r in live] == ["alert 'x' could not be recorded", "vendor crashed"]
    assert all(r["event"] == LIBRARY_EVENT and r["module"] == LIBRARY and r["run_id"] == "stage2-c" for r in live)
    assert [r["message"] for r in _jsonl(tmp_path / "errors.jsonl")] == ["vendor crashed"]
    assert {name: logging.getLogger(name).handlers for name in handlers_before} == handlers_before


def test_a_failed_write_is_not_silent(tmp_path):
    (tmp_path / "audit.jsonl").mkdir()   # a directory where the file should be
    trail = AuditTrail(tmp_path / "audit.jsonl", module="ingestion")
    with pytest.raises(OSError):
        trail.append("run_started")


def test_an_unknown_level_is_refused(tmp_path):
    with OperatorLog(tmp_path, run_id="x") as log, pytest.raises(ValueError, match="unknown log level"):
        log.log("NOTICE", "X")

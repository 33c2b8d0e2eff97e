"""Stage 2's OperatorLog: the three files, their fields, and no secret anywhere."""
from __future__ import annotations

import io
import json

from rich.console import Console

from core.redaction import MASK, secret_values
from core.redaction import redact_value as redact
from cli.console import LogConsole
from core.logs import OperatorLog

CANARY = "canary-9f8e7d6c5b4a"


def test_records_fields_and_sinks(tmp_path):
    log = OperatorLog(tmp_path, run_id="r1", module="trading.test")
    log.info("ORDER", symbol="AAA", quantity=3)
    try:
        raise ValueError("bad thing")
    except ValueError as exc:
        log.error("LOOP_ERROR", exc=exc)
    live = [json.loads(x) for x in (tmp_path / "live.jsonl").read_text().splitlines()]
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert [r["event"] for r in live] == ["ORDER", "LOOP_ERROR"]
    assert all({"ts", "level", "module", "run_id", "event"} <= set(r) for r in live)
    assert live[0]["run_id"] == "r1" and live[0]["symbol"] == "AAA"
    assert len(errors) == 1 and "ValueError: bad thing" in errors[0]["traceback"]
    human = (tmp_path / "live_trading.log").read_text()
    assert "ORDER symbol=AAA quantity=3" in human and "Traceback" in human


def test_secrets_are_redacted_in_every_output(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPACA_SECRET_KEY", CANARY)
    monkeypatch.setenv("POLYGON_API_KEY", CANARY + "-poly")
    monkeypatch.setenv("SOME_TOKEN_VALUE", "tok-" + CANARY)
    monkeypatch.setenv("DB_PASSWORD", "pw-" + CANARY)
    out = io.StringIO()
    log = OperatorLog(tmp_path, run_id="r2")
    log.attach(LogConsole(Console(file=out)))
    log.info("CONFIG", message=f"using key {CANARY}", detail={"nested": [f"x{CANARY}-poly"]})
    try:
        raise RuntimeError(f"auth failed for tok-{CANARY}")
    except RuntimeError as exc:
        log.error("AUTH", exc=exc, url=f"https://x/?apiKey={CANARY}-poly")
    written = [p.read_text() for p in tmp_path.iterdir()] + [out.getvalue()]
    assert written and all(CANARY not in text for text in written)
    assert any(MASK in text for text in written)


def test_redact_prefers_the_longest_secret_and_ignores_short_values():
    env = {"A_KEY": "abcd", "B_KEY": "abcdef", "FLAG_KEY": "1", "NAME": "abcdef-not-secret-name"}
    secrets = secret_values(env)
    # Keys registered earlier in the process (providers register theirs) are
    # secrets too; of this env's values, only the credential-named, long ones.
    ours = [s for s in secrets if s in env.values()]
    assert ours == ["abcdef", "abcd"]
    assert "1" not in secrets and "abcdef-not-secret-name" not in secrets
    assert redact({"v": "xabcdefx abcd 1"}, secrets) == {"v": "x***x *** 1"}

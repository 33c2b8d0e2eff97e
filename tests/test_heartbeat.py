"""Runbook hardening suite: the heartbeat, every few seconds, to the console
and live.jsonl, in the runbook's format."""
from __future__ import annotations

import io
import json
import re

from rich.console import Console

from cli.console import LogConsole
from core.logs import OperatorLog
from tests.trading.agent_builder import DaemonThread, wait_for
from tests.trading.conftest import desk, live_broker_explodes, no_network, seeded  # noqa: F401  (shared fixtures)
from tests.trading.scripted_models import ScriptedForecaster
from trading.daemon import heartbeat_line

HEARTBEAT_RE = re.compile(r"^HEARTBEAT \| uptime=\d+s \| symbols=\d+ \| cycles=\d+ \| model_errors=\d+ \| arima_fb=\d+$")


def test_format_is_the_runbooks():
    assert heartbeat_line(360.7, 225, 10, 0, 5) == \
        "HEARTBEAT | uptime=360s | symbols=225 | cycles=10 | model_errors=0 | arima_fb=5"


def test_daemon_beats_to_console_and_live_jsonl(seeded):
    out = io.StringIO()
    log = OperatorLog(seeded.paths.logs, run_id="hb-test")
    log.attach(LogConsole(Console(file=out, width=200)))
    live = seeded.paths.logs / "live.jsonl"

    def beats():
        if not live.exists():
            return []
        return [r for r in map(json.loads, live.read_text().splitlines()) if r["event"] == "HEARTBEAT"]

    with DaemonThread(seeded, forecaster=ScriptedForecaster({}), heartbeat_seconds=0.05,
                      data_refresh_minutes=60, log=log):
        wait_for(lambda: len(beats()) >= 4 and beats()[-1]["cycles"] >= 2, what="heartbeats")
    records = beats()
    for r in records:
        assert HEARTBEAT_RE.match(r["message"]), r["message"]
        assert {"ts", "level", "module", "run_id", "event"} <= set(r)
        assert r["symbols"] == 3
    assert records[-1]["cycles"] >= records[0]["cycles"]
    # Not a terminal: one plain line per record, "<UTC timestamp> <LEVEL> <text>".
    console_lines = [line for line in out.getvalue().splitlines() if " HEARTBEAT | " in line]
    assert len(console_lines) >= 4
    for line in console_lines:
        stamp, level, text = line.split(None, 2)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", stamp) and level == "INFO", line
        assert HEARTBEAT_RE.match(text), line
    human = (seeded.paths.logs / "live_trading.log").read_text()
    assert "HEARTBEAT | uptime=" in human

"""The production path: ``ingest_history.py --mode=deep_backfill`` through the
real Yahoo, Polygon and Alpaca clients, pointed at the loopback vendor server
by the operator's own environment variables, with faults injected.  Checks
the fallback the router takes, what the audit and provider health record,
and that no planted key reaches any output."""
import datetime as dt
import gzip
import json
import sqlite3

from click.testing import CliRunner

import ingest_history
from core.calendar import backfill_window
from data.providers.base import FetchRequest
from data.providers.synthetic import SyntheticDataProvider
from database.manager import Database
from tests.providers.vendor_setup import CANARIES, FAST

AS_OF = dt.date(2026, 11, 19)
SYMBOLS = {"AAPL": ("stocks", "XNYS"), "MSFT": ("stocks", "XNYS"), "EURUSD=X": ("fx", "24/5"),
           "GC=F": ("commodities", "CMES")}


def register_windows(server):
    synthetic = SyntheticDataProvider(defects={})
    for symbol, (asset_class, calendar) in SYMBOLS.items():
        window = backfill_window(calendar, AS_OF, 1260)
        frame = synthetic.fetch_one(FetchRequest(symbol, asset_class, window.start, window.end, calendar)).frame
        server.register(symbol, frame)


def fast_settings_file(tmp_path):
    """The vendor quirks an operator would set in settings.toml, short for tests."""
    lines = []
    for vendor in ("yahoo", "polygon", "alpaca"):
        lines.append(f"[providers.{vendor}]")
        for key, value in FAST.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "settings.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ingest(tmp_path, monkeypatch, server, point_env_at):
    point_env_at(server)
    monkeypatch.setenv("SETTINGS_FILE", str(fast_settings_file(tmp_path)))
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": s} for s in SYMBOLS]}))
    result = CliRunner().invoke(ingest_history.main, ["--universe", str(universe), "--as-of", str(AS_OF), "--json"],
                                catch_exceptions=False)
    return result, json.loads(result.stdout)


def test_deep_backfill_through_yahoo_with_fallback_to_polygon(vendor_runtime, tmp_path, monkeypatch, server,
                                                              point_env_at):
    register_windows(server)
    server.fault("yahoo", "MSFT", "500", times=None)        # Yahoo keeps failing MSFT
    server.fault("yahoo", "EURUSD=X", "429", times=2)         # a short 429 storm: slows, loses nothing
    result, report = run_ingest(tmp_path, monkeypatch, server, point_env_at)
    assert result.exit_code == 0, result.stderr
    served = {s["symbol"]: (s["outcome"], s["provider"]) for s in report["symbols"]}
    assert served == {"AAPL": ("SUCCESS", "yahoo"), "MSFT": ("SUCCESS", "polygon"),
                      "EURUSD=X": ("SUCCESS", "yahoo"), "GC=F": ("SUCCESS", "yahoo")}
    db = Database(vendor_runtime / "institutional_trading.db")
    audit = {a["symbol"]: a for a in db.runs.audit_rows(report["run_id"])}
    tried = json.loads(audit["MSFT"]["providers_tried"])
    assert [(t["provider"], t.get("error_code")) for t in tried] == [("yahoo", "PROVIDER_UNAVAILABLE"),
                                                                      ("polygon", None)]
    assert audit["MSFT"]["adjustment"] == "unadjusted"          # Polygon gives no adjusted series
    assert audit["AAPL"]["rows_written"] == 1260
    assert all(v["rows"] == 1260 for v in db.bars.history_summary(list(SYMBOLS)).values())
    health = {h["provider"]: h for h in db.runs.provider_health(report["run_id"])}
    assert health["yahoo"]["failures"] == {"PROVIDER_UNAVAILABLE": 1}
    assert health["yahoo"]["detail"]["rate_limited"] >= 2 and health["polygon"]["successes"] == 1
    assert server.count("alpaca") == 0                      # never asked for 1,260 sessions (> 730 days)
    db.close()


def test_bad_keys_cost_one_request_and_no_output_holds_a_key(vendor_runtime, tmp_path, monkeypatch, server,
                                                             point_env_at):
    register_windows(server)
    server.fault("yahoo", "AAPL", "503", times=None)
    server.fault("yahoo", "MSFT", "503", times=None)
    server.fault("polygon", "AAPL", "401", times=None)
    server.fault("polygon", "MSFT", "401", times=None)
    result, report = run_ingest(tmp_path, monkeypatch, server, point_env_at)
    assert result.exit_code == 1
    outcomes = {s["symbol"]: (s["outcome"], s["error_code"]) for s in report["symbols"]}
    assert outcomes["AAPL"][0] == "FAILED" and outcomes["MSFT"][0] == "FAILED"
    assert outcomes["EURUSD=X"] == ("SUCCESS", None) and outcomes["GC=F"] == ("SUCCESS", None)
    assert server.count("polygon") == 1                     # 401: exactly one request, no retry, no second symbol
    with Database(vendor_runtime / "institutional_trading.db") as db:
        assert {h["provider"]: h["entitled"] for h in db.runs.provider_health(report["run_id"])}["polygon"] == 0

    outputs = [result.stdout, result.stderr]
    outputs += [p.read_text() for p in vendor_runtime.rglob("*.jsonl")]
    outputs += [gzip.decompress(p.read_bytes()).decode("utf-8", "replace") for p in vendor_runtime.rglob("*.gz")]
    raw = sqlite3.connect(vendor_runtime / "institutional_trading.db")
    for (table,) in raw.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        outputs.append(repr(raw.execute(f"SELECT * FROM {table}").fetchall()))
    raw.close()
    assert len(outputs) > 10
    for canary in CANARIES:
        assert not any(canary in text for text in outputs), canary

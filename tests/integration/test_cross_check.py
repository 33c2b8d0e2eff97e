"""Cross-source drift: with --cross-check, a symbol whose secondary vendor's
closes drift 3% on some sessions ends DEGRADED with CROSS_SOURCE_DRIFT; one
that agrees stays ACTIVE.  Two file directories play the two vendors."""
import datetime as dt
import json

from cli.ingest import exit_code
from core.calendar import backfill_window
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import IngestOptions, run_ingestion
from data.providers.base import FetchRequest
from data.providers.file import FileDataProvider, write_yahoo_csv
from data.providers.synthetic import SyntheticDataProvider
from core.universe import load_universe
from database.manager import Database

AS_OF = dt.date(2026, 11, 19)
ENTITLED = {"POLYGON_ENABLED": "true", "POLYGON_API_KEY": "test-key-not-secret"}


def vendor_dirs(tmp_path, symbols, drift_symbol, drift_sessions):
    primary, secondary = tmp_path / "primary", tmp_path / "secondary"
    primary.mkdir()
    secondary.mkdir()
    window = backfill_window("XNYS", AS_OF, 1260)
    synthetic = SyntheticDataProvider(defects={})
    for symbol in symbols:
        frame = synthetic.fetch_one(FetchRequest(symbol, "stocks", window.start, window.end, "XNYS")).frame
        frame = frame.drop(columns=["dividend", "split_ratio"])
        write_yahoo_csv(primary / f"{symbol}.csv", frame)
        if symbol == drift_symbol:
            frame = frame.copy()
            rows = frame.index[-drift_sessions:]
            for col in ("open", "high", "low", "close", "adj_close"):
                frame.loc[rows, col] = frame.loc[rows, col] * 1.03
        write_yahoo_csv(secondary / f"{symbol}.csv", frame)
    return primary, secondary


def test_secondary_drift_of_3pct_degrades_the_symbol(runtime, settings, tmp_path, monkeypatch):
    universe_path = tmp_path / "universe.json"
    universe_path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "MSFT"}]}))
    primary, secondary = vendor_dirs(tmp_path, ["AAPL", "MSFT"], "AAPL", drift_sessions=5)
    router = DataRouter(settings, env=ENTITLED, factories={"yahoo": lambda: FileDataProvider(primary),
                                                          "polygon": lambda: FileDataProvider(secondary)})
    with Database(runtime.db) as db:
        report = run_ingestion(db, load_universe(universe_path), settings, runtime,
                               IngestOptions(as_of=AS_OF, cross_check=True), router=router)
        states = db.governance.states()
        quality = db.governance.latest_quality()
    # every symbol fetched; the drift fails verification: the gate's code, not 0 nor the fetch failure's 1
    assert not report.failed and report.verification.verification == "FAILED"
    assert exit_code(report) == 2
    assert report.providers_used == {"yahoo": 2}
    assert (states["AAPL"]["state"], states["AAPL"]["reason"]) == ("DEGRADED", "CROSS_SOURCE_DRIFT")
    assert (states["MSFT"]["state"], states["MSFT"]["reason"]) == ("ACTIVE", "OK")
    aapl = report.cross_check["AAPL"]
    assert (aapl["primary"], aapl["secondary"], aapl["level"]) == ("yahoo", "polygon", "error")
    assert aapl["sessions_over_error"] == 5 and abs(aapl["max_pct"] - 3.0) < 0.01
    assert report.cross_check["MSFT"]["level"] is None and report.cross_check["MSFT"]["max_pct"] < 1e-9
    codes = [f["code"] for f in quality["AAPL"]["findings"]]
    assert "CROSS_SOURCE_DRIFT" in codes


def test_without_the_flag_nothing_is_compared(runtime, settings, tmp_path):
    universe_path = tmp_path / "universe.json"
    universe_path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    primary, secondary = vendor_dirs(tmp_path, ["AAPL"], "AAPL", drift_sessions=5)
    router = DataRouter(settings, env=ENTITLED, factories={"yahoo": lambda: FileDataProvider(primary),
                                                          "polygon": lambda: FileDataProvider(secondary)})
    with Database(runtime.db) as db:
        report = run_ingestion(db, load_universe(universe_path), settings, runtime, IngestOptions(as_of=AS_OF),
                               router=router)
        assert db.governance.states()["AAPL"]["state"] == "ACTIVE"
    assert report.cross_check == {}

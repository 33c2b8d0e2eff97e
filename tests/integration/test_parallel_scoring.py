"""Scoring stored windows in worker processes gives exactly what the
in-process path gives (states, reasons, every component)."""
import datetime as dt
import json

from data.collectors.ingestion import IngestOptions, run_ingestion
from data.governance.governance_agent import govern_symbols
from core.universe import load_universe
from database.manager import Database

AS_OF = dt.date(2026, 11, 19)


def test_parallel_and_serial_scoring_agree(runtime, settings, tmp_path, monkeypatch):
    path = tmp_path / "universe.json"
    symbols = ["AAPL", "MSFT", "SPY", "BTC-USD", "EURUSD=X", "GC=F"]
    path.write_text(json.dumps({"symbols": [{"symbol": s} for s in symbols]}))
    monkeypatch.setenv("SYNTHETIC_DEFECTS", "MSFT:spike;SPY:missing_sessions=200;GC=F:ohlc_inversion")
    universe = load_universe(path)
    with Database(runtime.db) as db:
        run_ingestion(db, universe, settings, runtime, IngestOptions(as_of=AS_OF, provider="synthetic"))
        serial_cfg = settings.with_overrides({"governance": {"parallel_from_symbols": 10_000}})
        parallel_cfg = settings.with_overrides({"governance": {"parallel_from_symbols": 1, "score_workers": 2}})
        serial = govern_symbols(db, universe_entries=universe.entries, run_id="serial", as_of=AS_OF,
                                settings=serial_cfg)
        parallel = govern_symbols(db, universe_entries=universe.entries, run_id="parallel", as_of=AS_OF,
                                  settings=parallel_cfg)
    as_rows = lambda report: {v.symbol: (v.state, v.reason, v.rows, v.quality_score, v.components,
                                         [f.code for f in v.findings]) for v in report.verdicts}
    assert as_rows(parallel) == as_rows(serial)
    states = {v.symbol: v.state for v in serial.verdicts}
    assert states["GC=F"] == "QUARANTINED" and states["SPY"] == "DEGRADED" and states["AAPL"] == "ACTIVE"

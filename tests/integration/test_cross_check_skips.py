"""--cross-check is never silently nothing (issue 10, failure 14).

Under ``--provider X`` only X may be asked: the check is skipped for every
symbol at once, nothing sent to any other vendor (it used to spend 25 s on
Yahoo), and the report, its JSON and the human summary say so.  Without
``--provider``, a symbol that no second provider can serve, or whose second
provider fails, is reported skipped with the reason."""
from __future__ import annotations

import datetime as dt
import json
import time

from click.testing import CliRunner

import ingest_history
from core.universe import load_universe
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import IngestOptions, run_ingestion
from data.providers.file import FileDataProvider
from database.manager import Database
from tests.fakes.vendor_server import VendorServer
from tests.integration.test_cross_check import ENTITLED, vendor_dirs

AS_OF = dt.date(2026, 11, 19)
SKIP = "--provider synthetic allows no second provider; nothing fetched"


def test_cross_check_under_provider_synthetic_is_skipped_at_once_and_says_so(runtime, tmp_path, monkeypatch):
    universe_path = tmp_path / "universe.json"
    universe_path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}, {"symbol": "MSFT"}]}))
    with VendorServer() as server:    # every vendor points here: any request would be seen
        for var in ("YAHOO_BASE_URL", "POLYGON_BASE_URL", "ALPACA_DATA_URL"):
            monkeypatch.setenv(var, server.url)
        args = ["--provider", "synthetic", "--cross-check", "--as-of", str(AS_OF), "--universe", str(universe_path),
                "--db", str(tmp_path / "desk.db")]
        t0 = time.monotonic()
        human = CliRunner().invoke(ingest_history.main, args)
        as_json = CliRunner().invoke(ingest_history.main, [*args, "--json"])
        elapsed = time.monotonic() - t0
        assert server.count() == 0
    assert human.exit_code in (0, 2) and as_json.exit_code in (0, 2), human.output + as_json.output
    assert elapsed < 20
    assert f"cross-check: 0 compared, 2 skipped ({SKIP})" in human.output.splitlines()
    document = json.loads(as_json.output)
    assert document["cross_check"] == {}
    assert document["cross_check_skipped"] == {"AAPL": SKIP, "MSFT": SKIP}


def test_a_symbol_no_second_provider_can_serve_is_reported_skipped_with_the_reason(runtime, settings, tmp_path):
    universe_path = tmp_path / "universe.json"
    universe_path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    primary, _ = vendor_dirs(tmp_path, ["AAPL"], "AAPL", drift_sessions=0)
    # Only yahoo is usable: polygon and alpaca are not entitled (no keys).
    router = DataRouter(settings, env={}, factories={"yahoo": lambda: FileDataProvider(primary)})
    with Database(runtime.db) as db:
        report = run_ingestion(db, load_universe(universe_path), settings, runtime,
                               IngestOptions(as_of=AS_OF, cross_check=True), router=router)
    assert not report.failed and report.cross_check == {}
    why = report.cross_check_skipped["AAPL"]
    assert why.startswith("no second provider (") and "polygon: not entitled" in why, why
    assert report.to_dict()["cross_check_skipped"] == {"AAPL": why}


def test_a_second_provider_that_fails_is_reported_skipped_with_its_error(runtime, settings, tmp_path):
    universe_path = tmp_path / "universe.json"
    universe_path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    primary, _ = vendor_dirs(tmp_path, ["AAPL"], "AAPL", drift_sessions=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    router = DataRouter(settings, env=ENTITLED, factories={"yahoo": lambda: FileDataProvider(primary),
                                                          "polygon": lambda: FileDataProvider(empty)})
    with Database(runtime.db) as db:
        report = run_ingestion(db, load_universe(universe_path), settings, runtime,
                               IngestOptions(as_of=AS_OF, cross_check=True), router=router)
    assert not report.failed and report.cross_check == {}
    why = report.cross_check_skipped["AAPL"]
    assert why.startswith("second provider failed (NO_DATA: "), why

"""Governance: govern_symbols over a seeded store (the state rule itself:
test_governance_rules.py)."""
from __future__ import annotations

import json

import pytest

from data.governance import governance_agent as G
from data.governance.governance_agent import govern_symbols
from data.governance.rules import ACTIVE, DEGRADED, QUARANTINED
from data.quality import findings as F
from data.quality.findings import Finding
from core.universe import UniverseEntry
from database.manager import Database
from core.settings import Settings
from tests import bar_frames as B
from tests.store_seed import seed_store
from tests import store_reads

SESSIONS = B.window_sessions()
AS_OF = B.AS_OF


def finding(code, severity, count=1):
    return Finding(code, severity, code.lower(), count)


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    store = Database(tmp_path / "runtime" / "store.db")
    yield store
    store.close()


def universe(*symbols, asset_class="stocks"):
    return [UniverseEntry(s, asset_class) for s in symbols]


def defects_store(db):
    clean = B.clean_bars(SESSIONS, seed=1)
    frames = {
        "CLEAN": clean,
        "GAPS": B.without_sessions(B.clean_bars(SESSIONS, seed=2), range(300, 330)),
        "SPIKE": B.with_price_level_shift(B.clean_bars(SESSIONS, seed=3), 700, 1.9),
        "NEG": B.with_negative_price(B.clean_bars(SESSIONS, seed=4), 200),
        "INVERT": B.with_ohlc_inversion(B.clean_bars(SESSIONS, seed=5), 400),
        "H1100": B.last_sessions(B.clean_bars(SESSIONS, seed=6), 1100),
        "H900": B.last_sessions(B.clean_bars(SESSIONS, seed=7), 900),
        "SPLIT": B.with_split(B.clean_bars(SESSIONS, seed=8), 600, 2.0, adjusted=True),
        "SPLITCOL": B.with_split(B.clean_bars(SESSIONS, seed=9), 650, 2.0, adjusted=False, column=True),
        "SPECIAL": B.with_special_dividend(B.clean_bars(SESSIONS, seed=10), 1200, 0.45),
        "POOR": B.with_negative_price(B.with_price_level_shift(B.clean_bars(SESSIONS, seed=11), 900, 2.0), 100),
        "NULLS": B.with_null_prices(B.clean_bars(SESSIONS, seed=12)),
        "LATE": B.clean_bars(SESSIONS, seed=13).iloc[:-8],
    }
    seed_store(db, frames, run_id="run-1")
    return frames


EXPECTED = {
    "CLEAN": (ACTIVE, "OK"),
    "GAPS": (DEGRADED, "PARTIAL_HISTORY"),
    "SPIKE": (ACTIVE, "EXTREME_SPIKE"),
    "NEG": (ACTIVE, "ZERO_NEGATIVE_PRICE"),
    "INVERT": (QUARANTINED, "OHLC_INCONSISTENT"),
    "H1100": (DEGRADED, "PARTIAL_HISTORY"),
    "H900": (QUARANTINED, "INSUFFICIENT_HISTORY"),
    "SPLIT": (ACTIVE, "OK"),
    "SPLITCOL": (ACTIVE, "OK"),
    "SPECIAL": (ACTIVE, "OK"),
    "POOR": (DEGRADED, "LOW_QUALITY"),
    "NULLS": (QUARANTINED, "ALL_NULL"),
    "LATE": (DEGRADED, "STALE"),
    "GONE": (QUARANTINED, "NO_VALID_PROVIDER"),
}


def test_each_defect_lands_in_the_state_the_rules_give(db):
    defects_store(db)
    report = govern_symbols(db, universe_entries=universe(*EXPECTED), run_id="run-1", as_of=AS_OF,
                            settings=Settings(), critical={"GONE": "NO_VALID_PROVIDER"})
    got = {v.symbol: (v.state, v.reason) for v in report.verdicts}
    assert got == EXPECTED
    stored = db.governance.states()
    assert {s: (r["state"], r["reason"]) for s, r in stored.items()} == EXPECTED
    assert stored["H1100"]["rows"] == 1100
    assert stored["SPIKE"]["quality_score"] == pytest.approx(0.7)
    assert report.counts == {ACTIVE: 6, DEGRADED: 4, QUARANTINED: 4}


def test_data_quality_row_per_symbol_with_every_component(db):
    defects_store(db)
    govern_symbols(db, universe_entries=universe("SPIKE", "GAPS"), run_id="run-1", as_of=AS_OF,
                   settings=Settings())
    rows = {r["symbol"]: r for r in store_reads.quality_rows(db, "run-1")}
    assert set(rows) == {"SPIKE", "GAPS"}
    spike = rows["SPIKE"]
    assert (spike["missing_dates_pct"], spike["duplicate_pct"], spike["zero_negative_flag"],
            spike["extreme_spike_flag"]) == (0.0, 0.0, 0.0, 1.0)
    assert spike["quality_score"] == pytest.approx(0.7)
    assert [f["code"] for f in spike["findings"]][0] == F.EXTREME_SPIKE
    assert rows["GAPS"]["missing_dates_pct"] == pytest.approx(30 / 1260)
    assert rows["GAPS"]["rows"] == 1230 and rows["GAPS"]["expected_rows"] == 1260


def test_events_are_appended_only_on_change(db):
    frames = defects_store(db)
    entries = universe("CLEAN", "H1100")
    first = govern_symbols(db, universe_entries=entries, run_id="run-1", as_of=AS_OF, settings=Settings())
    assert {c["symbol"] for c in first.changes} == {"CLEAN", "H1100"}
    events = db.governance.events(event="STATE_CHANGE")
    assert len(events) == 2 and all(e["before_state"] is None for e in events)

    again = govern_symbols(db, universe_entries=entries, run_id="verify-1", as_of=AS_OF, settings=Settings())
    assert again.changes == []
    assert len(db.governance.events(event="STATE_CHANGE")) == 2

    # The missing history arrives: H1100 becomes ACTIVE, one event says so.
    seed_store(db, {"H1100": B.clean_bars(SESSIONS, seed=6)}, run_id="run-2")
    third = govern_symbols(db, universe_entries=entries, run_id="run-2", as_of=AS_OF, settings=Settings())
    assert third.changes == [{"symbol": "H1100", "before_state": DEGRADED, "after_state": ACTIVE, "reason": "OK"}]
    latest = db.governance.events(event="STATE_CHANGE", symbol="H1100")[0]
    assert (latest["before_state"], latest["after_state"], latest["run_id"]) == (DEGRADED, ACTIVE, "run-2")
    assert json.loads(latest["detail"])["rows"] == 1260
    assert frames  # the store was seeded from these frames


def test_payload_duplicates_are_carried_into_a_verify_run(db):
    seed_store(db, {"DUP": B.clean_bars(SESSIONS, seed=3)}, run_id="run-1", duplicates={"DUP": 140})
    entries = universe("DUP")
    first = govern_symbols(db, universe_entries=entries, run_id="run-1", as_of=AS_OF, settings=Settings(),
                           payload_duplicates={"DUP": 140})
    assert first.verdicts[0].components["duplicate_pct"] == pytest.approx(140 / 1400)
    verify = govern_symbols(db, universe_entries=entries, run_id="verify-1", as_of=AS_OF, settings=Settings())
    assert verify.verdicts[0].components["duplicate_pct"] == pytest.approx(140 / 1400)
    clean_payload = govern_symbols(db, universe_entries=entries, run_id="run-2", as_of=AS_OF,
                                   settings=Settings(), payload_duplicates={"DUP": 0})
    assert clean_payload.verdicts[0].components["duplicate_pct"] == 0.0


def test_stored_split_explains_an_unadjusted_split(db):
    frame = B.with_split(B.clean_bars(SESSIONS, seed=4), 640, 2.0, adjusted=False, column=True)
    seed_store(db, {"SPL": frame}, run_id="run-1")
    assert len(db.bars.corporate_actions(["SPL"])["SPL"]) == 1
    report = govern_symbols(db, universe_entries=universe("SPL"), run_id="run-1", as_of=AS_OF, settings=Settings())
    assert (report.verdicts[0].state, report.verdicts[0].reason) == (ACTIVE, "OK")
    assert report.verdicts[0].components["extreme_spike_flag"] == 0.0


def test_only_the_named_symbols_are_governed(db):
    defects_store(db)
    report = govern_symbols(db, universe_entries=universe("CLEAN", "H900", "SPIKE"), run_id="run-1",
                            as_of=AS_OF, settings=Settings(), symbols=["H900"])
    assert [v.symbol for v in report.verdicts] == ["H900"]
    assert set(db.governance.states()) == {"H900"}


def test_symbols_outside_the_universe_are_refused(db):
    defects_store(db)
    with pytest.raises(G.GovernanceError, match="NOPE"):
        govern_symbols(db, universe_entries=universe("CLEAN"), run_id="r", as_of=AS_OF, settings=Settings(),
                       symbols=["CLEAN", "NOPE"])
    disabled = [UniverseEntry("CLEAN", "stocks", enabled=False)]
    with pytest.raises(G.GovernanceError):
        govern_symbols(db, universe_entries=disabled, run_id="r", as_of=AS_OF, settings=Settings(),
                       critical={"CLEAN": "NO_VALID_PROVIDER"})
    assert db.governance.states() == {}


def test_rejections_over_five_percent_raise_an_alert(db):
    defects_store(db)
    names = ["CLEAN", "SPLIT", "SPECIAL", "INVERT", "POOR"]
    report = govern_symbols(db, universe_entries=universe(*names), run_id="run-1", as_of=AS_OF,
                            settings=Settings())
    assert {v.symbol for v in report.rejected} == {"INVERT", "POOR"}
    assert report.rejection_pct == pytest.approx(40.0)
    assert report.rejection_alert and report.has_error_findings
    alerts = {m.key: m for m in report.alert_messages()}
    assert alerts["ingest.quality_rejections"].severity == "error"
    assert "INVERT: OHLC_INCONSISTENT" in alerts["ingest.quality_rejections"].body
    assert "INVERT" in alerts["governance.quarantined"].body


def test_a_clean_universe_raises_no_alert(db):
    defects_store(db)
    report = govern_symbols(db, universe_entries=universe("CLEAN", "SPLIT", "SPECIAL"), run_id="run-1",
                            as_of=AS_OF, settings=Settings())
    assert report.rejected == [] and not report.rejection_alert and not report.has_error_findings
    assert report.alert_messages() == []
    json.dumps(report.to_dict())  # JSON-able for --json output


def test_calendar_of_the_entry_sets_the_window(db):
    sessions = B.window_sessions("24/7")
    seed_store(db, {"BTC-USD": B.clean_bars(sessions, daily_vol=0.03)}, run_id="run-1")
    report = govern_symbols(db, universe_entries=universe("BTC-USD", asset_class="crypto"), run_id="run-1",
                            as_of=AS_OF, settings=Settings())
    verdict = report.verdicts[0]
    assert (verdict.state, verdict.rows, verdict.expected_rows) == (ACTIVE, 1260, 1260)
    assert verdict.first_date == str(sessions[0].date())

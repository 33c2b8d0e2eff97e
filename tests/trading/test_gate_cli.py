"""main.py before and after Stage 1: the governance halt, the kill switch."""
from __future__ import annotations

from click.testing import CliRunner

from database.manager import Database
from tests.trading.market_frames import SEEDED_AS_OF, seed_store, write_settings
from tests import store_reads

import main as main_cli

RUNBOOK_BLOCK = """[DATA_GOVERNANCE]
Missing historical data detected
Symbols affected: {n}
Required rows per symbol: 1260
Action required: Run ingest_history.py
System halted intentionally"""


STALE_BLOCK = """[DATA_GOVERNANCE]
Stale historical data detected
Symbols affected: 3
Last complete session: 2024-03-18 (XNYS) (as of 2024-03-18)
Action required: Run ingest_history.py --mode=incremental
System halted intentionally"""
SIXTEEN_SESSIONS_LATER = "2024-03-18"     # 16 XNYS sessions after the seed's last bar, 2024-02-23


def run(*args, as_of=SEEDED_AS_OF):
    return CliRunner().invoke(main_cli.main, [*args, *(("--as-of", as_of) if as_of else ())])


def test_before_stage1_prints_runbook_block_and_exits_3(desk, monkeypatch):
    monkeypatch.setenv("SETTINGS_FILE", str(write_settings(desk.root.parent / "full.toml", required_sessions=1260)))
    result = run("--mode=paper")
    assert result.exit_code == 3
    assert RUNBOOK_BLOCK.format(n=3) in result.output
    log = desk.paths.governance_halt_log.read_text()
    assert RUNBOOK_BLOCK.format(n=3) in log
    assert not desk.paths.db.exists(), "a halted Stage 2 must not create the store"


def test_block_counts_only_symbols_lacking_history(desk, monkeypatch):
    monkeypatch.setenv("SETTINGS_FILE", str(write_settings(desk.root.parent / "full.toml", required_sessions=1260)))
    seed_store(desk.paths.db, ["AAA"], rows=1260)
    seed_store(desk.paths.db, ["BBB", "CCC"], rows=300)
    result = run("--mode=paper", "--run-once")
    assert result.exit_code == 3
    assert RUNBOOK_BLOCK.format(n=2) in result.output


def test_symbol_without_governance_row_lacks_history(desk):
    seed_store(desk.paths.db, ["AAA", "BBB"], rows=300)
    seed_store(desk.paths.db, ["CCC"], rows=300, states={})
    with Database(desk.paths.db) as db:
        assert "CCC" not in db.governance.states()
    result = run("--run-once")
    assert result.exit_code == 3
    assert "Symbols affected: 1" in result.output
    with Database(desk.paths.db) as db:
        assert store_reads.orders(db) == []


def test_a_store_16_sessions_behind_is_refused_with_the_fix_named(seeded):
    """The seeded store passes at its own date; 16 sessions later (and by the
    wall clock, the default) Stage 2 refuses it, exit 3, no order."""
    result = run("--run-once", as_of=SIXTEEN_SESSIONS_LATER)
    assert result.exit_code == 3
    assert STALE_BLOCK in result.output
    assert STALE_BLOCK in seeded.paths.governance_halt_log.read_text()
    assert "stale_history" in seeded.paths.governance_halt_log.read_text()
    by_clock = run("--run-once", as_of=None)
    assert by_clock.exit_code == 3
    assert "Action required: Run ingest_history.py --mode=incremental" in by_clock.output
    with Database(seeded.paths.db) as db:
        assert store_reads.orders(db) == []
    assert run("--run-once").exit_code == 0


def test_each_halt_is_appended(desk):
    run("--run-once")
    run("--run-once")
    assert desk.paths.governance_halt_log.read_text().count("[DATA_GOVERNANCE]") == 2


def test_kill_switch_present_refuses_with_exit_3(seeded):
    seeded.paths.kill_switch.touch()
    result = run("--run-once", "--mode=paper")
    assert result.exit_code == 3
    assert "KILL_SWITCH" in result.output
    assert "KILL_SWITCH" in seeded.paths.governance_halt_log.read_text()
    with Database(seeded.paths.db) as db:
        assert store_reads.orders(db) == []


def test_after_stage1_orders_only_for_active_symbols(desk):
    # Strong upward drifts so the real ARIMA wants to buy every symbol.
    seed_store(desk.paths.db, desk.symbols, rows=300, drifts={s: 0.004 for s in desk.symbols}, vol=0.006,
               states={"AAA": "ACTIVE", "BBB": "DEGRADED", "CCC": "QUARANTINED"})
    result = run("--run-once", "--mode=paper", "--json")
    assert result.exit_code == 0, result.output
    with Database(desk.paths.db) as db:
        orders = store_reads.orders(db)
    assert orders, "the ACTIVE symbol should have been bought"
    assert {o["symbol"] for o in orders} == {"AAA"}


def test_unknown_ticker_is_an_input_error(seeded):
    result = run("--run-once", "--tickers=ZZZ")
    assert result.exit_code == 64
    assert "--tickers" in result.output and "ZZZ" in result.output


def test_malformed_universe_is_a_data_error(seeded):
    seeded.universe.write_text('{"symbols": [{"symbol": "AAA", "colour": "red"}]}')
    result = run("--run-once")
    assert result.exit_code == 65
    assert "colour" in result.output


def test_tickers_limit_trading_to_the_named_symbols(desk):
    seed_store(desk.paths.db, desk.symbols, rows=300, drifts={s: 0.004 for s in desk.symbols}, vol=0.006)
    result = run("--run-once", "--tickers=BBB")
    assert result.exit_code == 0, result.output
    with Database(desk.paths.db) as db:
        assert {o["symbol"] for o in store_reads.orders(db)} == {"BBB"}

"""ACTIVE trades; DEGRADED may only reduce; QUARANTINED gets no orders."""
from __future__ import annotations

import pytest

from database.manager import Database
from tests.trading.agent_builder import build_agent
from tests.trading.market_frames import set_states
from tests.trading.scripted_models import ScriptedForecaster
from tests import store_reads
from data.governance.rules import governed_quantity


@pytest.mark.parametrize("state,target,held,expected", [
    ("ACTIVE", 10, 0, (10, "open")),
    ("ACTIVE", 15, 10, (15, "add")),
    ("ACTIVE", 0, 10, (0, "close")),
    ("DEGRADED", 10, 0, (0, "blocked")),        # never open
    ("DEGRADED", 15, 10, (10, "blocked")),      # never add
    ("DEGRADED", 4, 10, (4, "reduce")),         # shrink
    ("DEGRADED", 0, 10, (0, "close")),          # close
    ("DEGRADED", -5, 10, (0, "close")),         # never flip through zero
    ("DEGRADED", -15, -10, (-10, "blocked")),   # a short is not added to either
    ("DEGRADED", -4, -10, (-4, "reduce")),
    ("QUARANTINED", 0, 10, (10, "blocked")),    # no order at all, not even a close
    ("QUARANTINED", 20, 0, (0, "blocked")),
    (None, 20, 5, (5, "blocked")),              # no governance row: like QUARANTINED
])
def test_governed_quantity(state, target, held, expected):
    assert governed_quantity(state, target, held) == expected


def _orders_by_symbol(db):
    out = {}
    for o in store_reads.orders(db):
        out.setdefault(o["symbol"], []).append(o)
    return out


def test_fresh_book_orders_only_active(seeded):
    with Database(seeded.paths.db) as db:
        set_states(db, {"AAA": "ACTIVE", "BBB": "DEGRADED", "CCC": "QUARANTINED"})
        agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002))
        report = agent.run_cycle()
        assert {r.symbol for r in report.results} == {"AAA"}
        assert set(_orders_by_symbol(db)) == {"AAA"}
        plan = {i.symbol: i for i in report.decision.plan}
        assert plan["BBB"].action == "blocked" and plan["BBB"].side is None
        assert plan["CCC"].action == "blocked" and plan["CCC"].side is None


@pytest.fixture
def held_book(seeded):
    """All three symbols bought while ACTIVE (each capped at 10%)."""
    db = Database(seeded.paths.db)
    agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002))
    agent.run_cycle()
    held = {s: p["quantity"] for s, p in db.broker.positions().items()}
    assert set(held) == {"AAA", "BBB", "CCC"}
    yield seeded, db, held
    db.close()


def _cycle_all(desk, db, view):
    return build_agent(desk, db, forecaster=ScriptedForecaster({}, default=view)).run_cycle()


def _cycle(desk, db, expected, **kw):
    agent = build_agent(desk, db, forecaster=ScriptedForecaster(expected, default=0.002), **kw)
    return agent.run_cycle()


def test_demoted_symbols_get_no_adding_orders(held_book):
    desk, db, held = held_book
    set_states(db, {"BBB": "DEGRADED", "CCC": "QUARANTINED"})
    before = len(store_reads.orders(db))
    # A larger cap asks every symbol to add: only AAA may.
    report = _cycle(desk, db, {}, max_symbol_weight=0.3)
    assert {r.symbol for r in report.results} == {"AAA"}
    assert all(r.side == "BUY" for r in report.results)
    positions = db.broker.positions()
    assert positions["BBB"]["quantity"] == held["BBB"]
    assert positions["CCC"]["quantity"] == held["CCC"]
    assert len(store_reads.orders(db)) == before + 1


def test_degraded_symbol_is_reduced_but_quarantined_is_left_alone(held_book):
    desk, db, held = held_book
    set_states(db, {"BBB": "DEGRADED", "CCC": "QUARANTINED"})
    # Every view turns negative: ACTIVE and DEGRADED close, QUARANTINED holds.
    report = _cycle_all(desk, db, -0.002)
    sides = {(r.symbol, r.side) for r in report.results}
    assert sides == {("AAA", "SELL"), ("BBB", "SELL")}
    positions = db.broker.positions()
    assert "AAA" not in positions and "BBB" not in positions     # closed, never short
    assert positions["CCC"]["quantity"] == held["CCC"]


def test_degraded_symbol_shrinks_to_a_smaller_target(held_book):
    desk, db, held = held_book
    set_states(db, {"BBB": "DEGRADED"})
    report = _cycle(desk, db, {}, max_symbol_weight=0.05)
    bbb = [r for r in report.results if r.symbol == "BBB"]
    assert len(bbb) == 1 and bbb[0].side == "SELL"
    left = db.broker.positions()["BBB"]["quantity"]
    assert 0 < left < held["BBB"]


def test_quarantined_symbol_is_not_closed_even_when_signal_says_so(held_book):
    desk, db, held = held_book
    set_states(db, {"CCC": "QUARANTINED"})
    report = _cycle(desk, db, {"CCC": -0.01})
    assert all(r.symbol != "CCC" for r in report.results)
    assert db.broker.positions()["CCC"]["quantity"] == held["CCC"]

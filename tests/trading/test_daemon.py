"""The daemon loop: kill switch, safe mode, mid-day demotion, refresh cadence, logs."""
from __future__ import annotations

import json
import random
import re
import time

import pytest

from core.clock import record_stamp
from database.manager import Database
from tests.trading.agent_builder import DaemonThread, build_agent, daemon_until_a_cycle_then_sigterm, wait_for
from tests.trading.market_frames import SEEDED_AS_OF, set_states
from tests.trading.scripted_models import FlippingForecaster, ScriptedForecaster
from tests import store_reads
from trading.brokers import PaperBroker
from trading.daemon import TradingDaemon


def _orders(desk):
    with Database(desk.paths.db) as db:
        return store_reads.orders(db)


def _records(desk, name="live.jsonl"):
    path = desk.paths.logs / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _halt_ticks(desk) -> list[int]:
    if not desk.paths.governance_halt_log.exists():
        return []
    return [int(m) for m in re.findall(r"KILL_SWITCH tick=(\d+)", desk.paths.governance_halt_log.read_text())]


def test_kill_switch_at_random_moments(seeded):
    rng = random.Random(20240117)
    orders_before_touch = 0
    for trial in range(6):
        halts_so_far = len(_halt_ticks(seeded))
        with DaemonThread(seeded, forecaster=FlippingForecaster()) as run:
            time.sleep(rng.uniform(0.03, 0.4))
            seeded.paths.kill_switch.touch()
            touched_at = record_stamp()         # taken after the file exists
            tick_at_touch = run.daemon.ticks
            orders_before_touch += sum(1 for o in _orders(seeded) if o["created_at"] <= touched_at)
            new_halts = wait_for(lambda: _halt_ticks(seeded)[halts_so_far:], what="halt log line")
            # Recorded once, in the tick the file appeared in or the next one.
            assert len(new_halts) == 1 and new_halts[0] <= tick_at_touch + 1, (trial, new_halts, tick_at_touch)
            run.wait_ticks(5)
            late = [o for o in _orders(seeded) if o["created_at"] > touched_at]
            assert late == [], f"trial {trial}: order(s) after the kill switch appeared: {late}"
            assert run.daemon.halted and len(_halt_ticks(seeded)) == halts_so_far + 1
            # Removing the file resumes trading.
            seeded.paths.kill_switch.unlink()
            removed_at = record_stamp()
            wait_for(lambda: any(o["created_at"] > removed_at for o in _orders(seeded)), what="orders to resume")
            assert not run.daemon.halted
    assert orders_before_touch > 0, "the trials never traded before the touch; the test proved nothing"
    events = [r["event"] for r in _records(seeded)]
    assert events.count("KILL_SWITCH_HALT") == 6 and events.count("KILL_SWITCH_CLEARED") == 6


class FlakyBroker(PaperBroker):
    """A paper broker whose account read fails the first ``failures`` times
    (a broker/network outage as the loop sees it)."""

    def __init__(self, db, config, failures: int):
        super().__init__(db, config)
        self.failures = failures

    def book(self):
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker unreachable (injected)")
        return super().book()


def test_injected_loop_errors_enter_safe_mode_and_it_recovers(seeded):
    with Database(seeded.paths.db) as db:
        config_overrides = dict(safe_mode_error_threshold=5, safe_mode_recovery_cycles=3)
        agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002),
                            broker_factory=lambda d, c: FlakyBroker(d, c, failures=6), **config_overrides)
        daemon = TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60)
        agent.refresh_snapshot()                # the fits the daemon would run on its worker thread
        scales = []
        for _ in range(12):
            daemon.tick()
            scales.append(agent.safe_mode.exposure_scale)
        assert scales == [1.0] * 5 + [0.1] * 3 + [1.0] * 4
        orders = store_reads.orders(db)
        events = db.governance.events(event="SAFE_MODE_ENTER") + db.governance.events(event="SAFE_MODE_EXIT")
        assert db.broker.trading_state("safe_mode")["active"] is False
    # Tick 7 traded at 0.1x (each symbol's 10% cap -> 1%); tick 10 topped up to 10%.
    safe_batch, normal_batch = orders[:3], orders[3:]
    assert [o["target_weight"] for o in safe_batch] == pytest.approx([0.01] * 3)
    assert [o["target_weight"] for o in normal_batch] == pytest.approx([0.1] * 3)
    assert len(events) == 2
    logged = [r["event"] for r in _records(seeded)]
    assert logged.index("SAFE_MODE_ENTER") < logged.index("SAFE_MODE_EXIT")
    errors = _records(seeded, "errors.jsonl")
    assert len(errors) == 6 and all(e["event"] == "LOOP_ERROR" for e in errors)
    assert "ConnectionError: broker unreachable" in errors[0]["traceback"]
    assert {"ts", "level", "module", "run_id", "event"} <= set(errors[0])


def test_critical_data_gap_enters_safe_mode(seeded):
    with Database(seeded.paths.db) as db:
        # CCC's last bars vanish from what the agent reads: a stale symbol.
        agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002), max_stale_days=6)
        snapshot = agent.refresh_snapshot()
        snapshot.last_dates["CCC"] = "2023-06-01"
        report = agent.run_cycle()
        assert agent.safe_mode.active and "CCC" in agent.safe_mode.state.reason
        assert "CCC" in report.decision.data_gaps
        assert all(r.symbol != "CCC" for r in report.results)
        assert all(o.target_weight == pytest.approx(0.01) for o in report.decision.orders)


@pytest.mark.parametrize("demoted_to", ["QUARANTINED", "DEGRADED"])
def test_symbol_demoted_mid_day_stops_trading_on_next_tick(seeded, demoted_to):
    demoted = {}

    def refresh(db, started):
        # The daemon's refresh hook stands in for incremental ingest + re-governance.
        refresh.calls = getattr(refresh, "calls", 0) + 1
        if refresh.calls == 6 and not demoted:
            with Database(seeded.paths.db) as db:
                held = db.broker.positions().get("BBB", {}).get("quantity", 0.0)
                set_states(db, {"BBB": demoted_to})
            demoted["at"], demoted["held"] = record_stamp(), held

    with DaemonThread(seeded, forecaster=FlippingForecaster(), refresh=refresh) as run:
        wait_for(lambda: demoted, what="demotion")
        # The refresh runs on the worker thread: a cycle that read the states
        # just before the demotion committed may still finish its orders; the
        # next tick reads the new state.
        run.wait_ticks(2)
        settled = record_stamp()
        run.wait_ticks(6)
    orders = _orders(seeded)
    before = [o for o in orders if o["symbol"] == "BBB" and o["created_at"] <= demoted["at"]]
    after = [o for o in orders if o["symbol"] == "BBB" and o["created_at"] > settled]
    assert len(before) >= 2, "BBB should have traded before the demotion"
    assert any(o["symbol"] == "AAA" and o["created_at"] > demoted["at"] for o in orders), "AAA keeps trading"
    if demoted_to == "QUARANTINED":
        assert after == []
    else:
        # DEGRADED: at most the one SELL that closes what was held, never a buy.
        assert all(o["side"] == "SELL" for o in after) and len(after) <= 1
        assert sum(o["quantity"] for o in after) <= demoted["held"] + 1e-9


def test_forecasts_are_refreshed_with_the_data_not_every_tick(seeded):
    forecaster = ScriptedForecaster({}, default=0.002)
    calls = []

    def refresh(db, started):
        calls.append(1)

    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db, forecaster=forecaster)
        daemon = TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60,
                               refresh=refresh)
        daemon.tick()                                            # no snapshot yet: the worker fits the models
        daemon.wait_for_refresh()
        for _ in range(10):
            daemon.tick()
        assert forecaster.calls == 3 and calls == []           # one snapshot, three symbols
        daemon.refresh_seconds = 0.0                             # every tick is now a refresh tick
        for _ in range(2):
            daemon.tick()                                        # starts the refresh (trades on the old snapshot)
            daemon.wait_for_refresh()
        assert forecaster.calls == 9 and len(calls) == 2
        assert agent.counters.cycles == 12


def test_sigterm_stops_the_daemon_gracefully(seeded, tmp_path):
    code, out, err = daemon_until_a_cycle_then_sigterm(seeded, _records, cwd=tmp_path)
    assert code == 0, err
    assert "HEARTBEAT | uptime=" in out
    events = [r["event"] for r in _records(seeded)]
    assert events[-1] == "DAEMON_STOP"
    assert "LOOP_ERROR" not in events

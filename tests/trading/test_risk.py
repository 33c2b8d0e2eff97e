"""Target weights with caps, historical VaR/CVaR, the safe-mode machine."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trading.risk import SafeMode, exposure, historical_var_cvar, target_weights


def test_weights_follow_score_over_vol_and_respect_caps():
    w = target_weights({"A": 0.002, "B": 0.001, "C": -0.001}, {"A": 0.02, "B": 0.02, "C": 0.02},
                       max_symbol_weight=0.5, max_gross_exposure=1.0)
    assert w["C"] == 0.0                                   # long-only: a negative view is flat
    assert w["A"] == pytest.approx(0.5)                    # 2/3 of gross, capped at 0.5
    assert w["B"] == pytest.approx(1 / 3)
    assert exposure(w)["gross"] <= 1.0


def test_per_symbol_cap_binds():
    w = target_weights({s: 0.001 for s in "ABCD"}, {s: 0.01 for s in "ABCD"},
                       max_symbol_weight=0.1, max_gross_exposure=1.0)
    assert all(v == pytest.approx(0.1) for v in w.values())
    assert exposure(w)["gross"] == pytest.approx(0.4)


def test_gross_cap_binds_and_shorts_allowed():
    w = target_weights({"A": 0.001, "B": -0.003}, {"A": 0.01, "B": 0.01}, max_symbol_weight=1.0,
                       max_gross_exposure=0.8, allow_short=True)
    assert w["A"] == pytest.approx(0.2) and w["B"] == pytest.approx(-0.6)
    assert exposure(w) == pytest.approx({"gross": 0.8, "net": -0.4, "long": 0.2, "short": 0.6})


def test_safe_mode_scale_multiplies_exposure():
    kw = dict(max_symbol_weight=0.1, max_gross_exposure=1.0)
    normal = target_weights({"A": 0.001, "B": 0.002}, {"A": 0.01, "B": 0.01}, **kw)
    safe = target_weights({"A": 0.001, "B": 0.002}, {"A": 0.01, "B": 0.01}, exposure_scale=0.1, **kw)
    assert {k: v * 0.1 for k, v in normal.items()} == pytest.approx(safe)


def test_unusable_inputs_give_zero_weight():
    w = target_weights({"A": float("nan"), "B": 0.001, "C": 0.001}, {"A": 0.01, "B": 0.0, "C": 0.01},
                       max_symbol_weight=1.0, max_gross_exposure=1.0)
    assert w == {"A": 0.0, "B": 0.0, "C": 1.0}


def test_var_cvar_match_a_hand_computation():
    # Twenty days: portfolio returns are 0.5*A + 0.5*B.
    a = np.linspace(-0.05, 0.045, 20)
    b = np.full(20, 0.01)
    returns = pd.DataFrame({"A": a, "B": b, "C": np.nan})
    var, cvar = historical_var_cvar({"A": 0.5, "B": 0.5, "C": 0.0}, returns, 0.95)
    pnl = 0.5 * a + 0.5 * b
    q = np.quantile(pnl, 0.05)
    assert var == pytest.approx(-q)
    assert cvar == pytest.approx(-pnl[pnl <= q].mean())
    assert cvar >= var > 0


def test_var_of_flat_book_is_zero():
    assert historical_var_cvar({}, pd.DataFrame({"A": [0.01, -0.02]})) == (0.0, 0.0)
    assert historical_var_cvar({"A": 0.0}, pd.DataFrame({"A": [0.01, -0.02]})) == (0.0, 0.0)


def test_missing_days_of_held_symbols_are_dropped_not_zeroed():
    returns = pd.DataFrame({"A": [-0.10, np.nan, 0.01, 0.02], "B": [0.0, -0.5, 0.0, 0.0]})
    var, _ = historical_var_cvar({"A": 1.0}, returns, 0.95)
    assert var == pytest.approx(-np.quantile([-0.10, 0.01, 0.02], 0.05))


def test_safe_mode_needs_more_than_five_consecutive_errors():
    events = []
    sm = SafeMode(error_threshold=5, scale=0.1, recovery_cycles=3,
                  on_transition=lambda e, st, why: events.append((e, why)))
    for _ in range(5):
        sm.record_error("boom")
    assert not sm.active and sm.exposure_scale == 1.0
    sm.record_error("boom")
    assert sm.active and sm.exposure_scale == 0.1
    assert events[0][0] == "SAFE_MODE_ENTER" and "6 consecutive loop errors" in events[0][1]


def test_a_clean_cycle_resets_the_error_run():
    sm = SafeMode(error_threshold=5)
    for _ in range(5):
        sm.record_error("x")
    sm.record_clean_cycle()
    for _ in range(5):
        sm.record_error("x")
    assert not sm.active


def test_safe_mode_recovers_after_clean_cycles_and_logs_both_transitions():
    events = []
    sm = SafeMode(error_threshold=1, recovery_cycles=3, on_transition=lambda e, st, why: events.append(e))
    sm.record_error("a")
    sm.record_error("b")
    assert sm.active
    sm.record_clean_cycle()
    sm.record_clean_cycle()
    sm.record_error("c")              # an error restarts the recovery count
    sm.record_clean_cycle()
    sm.record_clean_cycle()
    assert sm.active
    sm.record_clean_cycle()
    assert not sm.active and sm.exposure_scale == 1.0
    assert events == ["SAFE_MODE_ENTER", "SAFE_MODE_EXIT"]


def test_critical_data_gap_enters_at_once():
    sm = SafeMode()
    sm.record_data_gap("AAA: last bar 10 days old")
    assert sm.active and "critical data gap" in sm.state.reason


def test_state_round_trips():
    sm = SafeMode(error_threshold=0)
    sm.record_error("x")
    restored = SafeMode()
    restored.load(sm.to_dict())
    assert restored.active and restored.state.reason == sm.state.reason

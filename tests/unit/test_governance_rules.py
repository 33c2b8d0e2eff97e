"""The governance rules page (data/governance/rules.py).

* The state rule, reason by reason, with the runbook's numbers.
* Every number changed through a real settings file moves the rule with it
  (Hypothesis draws the numbers).
* Stage 1 passed: rows, state and freshness against the calendar's last
  complete session, not the store's newest bar.
* One place per rule: the state names and the runbook's numbers appear in
  no application or domain module but the rules page and the settings
  defaults.
"""
from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from core.settings import load_settings
from data.governance import rules as R
from data.governance.rules import ACTIVE, DEGRADED, QUARANTINED, GovernanceRules, SymbolStanding, judge_stage1
from data.quality import findings as F
from data.quality.findings import Finding

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = GovernanceRules.from_settings(load_settings())


def finding(code, severity, count=1):
    return Finding(code, severity, code.lower(), count)


def test_the_defaults_are_the_runbooks_numbers():
    assert (RUNBOOK.required_rows, RUNBOOK.degraded_min_rows, RUNBOOK.accept_threshold) == (1260, 1000, 0.6)
    assert dict(RUNBOOK.weights) == {"missing_dates_pct": 0.3, "duplicate_pct": 0.2,
                                     "zero_negative_flag": 0.2, "extreme_spike_flag": 0.3}
    assert RUNBOOK.reject_alert_pct == 5.0
    assert [s.value for s in R.STATES] == ["ACTIVE", "DEGRADED", "QUARANTINED"]


@pytest.mark.parametrize("rows, score, findings, critical, expected", [
    (1260, 1.0, (), None, (ACTIVE, "OK")),
    (1300, 0.6, (), None, (ACTIVE, "OK")),                                  # the threshold accepts
    (1260, 0.599, (), None, (DEGRADED, "LOW_QUALITY")),
    (1259, 1.0, (), None, (DEGRADED, "PARTIAL_HISTORY")),
    (1000, 1.0, (), None, (DEGRADED, "PARTIAL_HISTORY")),
    (999, 1.0, (), None, (QUARANTINED, "INSUFFICIENT_HISTORY")),
    (0, 0.7, (), None, (QUARANTINED, "NO_DATA")),
    (1100, 0.5, (), None, (DEGRADED, "PARTIAL_HISTORY")),                   # history names it first
    (900, 0.5, (), None, (QUARANTINED, "INSUFFICIENT_HISTORY")),
    (1260, 1.0, (finding(F.OHLC_INCONSISTENT, F.CRITICAL),), None, (QUARANTINED, "OHLC_INCONSISTENT")),
    (1260, 0.7, (finding(F.ALL_NULL, F.CRITICAL), finding(F.OHLC_INCONSISTENT, F.CRITICAL)), None,
     (QUARANTINED, "ALL_NULL")),
    (1260, 1.0, (), "NO_VALID_PROVIDER", (QUARANTINED, "NO_VALID_PROVIDER")),
    (1260, 1.0, (), "WRONG_SYMBOL", (QUARANTINED, "WRONG_SYMBOL")),
    (1260, 0.7, (finding(F.EXTREME_SPIKE, F.ERROR),), None, (ACTIVE, "EXTREME_SPIKE")),
    (1260, 1.0, (finding(F.FALSE_TICK, F.WARNING),), None, (ACTIVE, "OK")),
    (1250, 1.0, (finding(F.STALE, F.ERROR, 10),), None, (DEGRADED, "STALE")),
    (990, 1.0, (finding(F.STALE, F.ERROR, 270),), None, (QUARANTINED, "STALE")),
    (1200, 1.0, (finding(F.STALE, F.ERROR, 10),), None, (DEGRADED, "PARTIAL_HISTORY")),  # stale explains 10 of 60
    (1258, 1.0, (finding(F.STALE, F.WARNING, 2),), None, (DEGRADED, "STALE")),
    (1257, 1.0, (finding(F.STALE, F.WARNING, 2),), None, (DEGRADED, "PARTIAL_HISTORY")),
])
def test_decide_state(rows, score, findings, critical, expected):
    assert RUNBOOK.decide_state(rows, score, findings, critical) == expected


def test_drift_demotes_only_an_active_symbol():
    drift = finding("CROSS_SOURCE_DRIFT", F.ERROR)
    assert RUNBOOK.demote_for_outside_findings(ACTIVE, "OK", [drift]) == (DEGRADED, "CROSS_SOURCE_DRIFT")
    assert RUNBOOK.demote_for_outside_findings(ACTIVE, "OK", [finding("X", F.WARNING)]) == (ACTIVE, "OK")
    assert RUNBOOK.demote_for_outside_findings(QUARANTINED, "NO_DATA", [drift]) == (QUARANTINED, "NO_DATA")


def _settings_file(tmp_path: Path, required: int, degraded_min: int, threshold: float, weights: dict,
                   alert_pct: float, yellow: int, red: int):
    path = tmp_path / "settings.toml"
    w = ", ".join(f"{k} = {v!r}" for k, v in weights.items())
    path.write_text(f"[history]\nrequired_sessions = {required}\ndegraded_min_rows = {degraded_min}\n"
                    f"[quality]\naccept_threshold = {threshold!r}\nuniverse_reject_alert_pct = {alert_pct!r}\n"
                    f"weights = {{ {w} }}\n"
                    f"[health]\nfreshness_yellow_sessions = {yellow}\nfreshness_red_sessions = {red}\n")
    return load_settings(path)


numbers = st.fixed_dictionaries({
    "required": st.integers(10, 3000),
    "gap": st.integers(1, 500),
    "threshold": st.floats(0.05, 0.95, allow_nan=False).map(lambda x: round(x, 3)),
    "weights": st.fixed_dictionaries({k: st.floats(0.0, 1.0).map(lambda x: round(x, 3))
                                      for k in R.SCORE_COMPONENTS}),
    "alert_pct": st.floats(0.0, 50.0).map(lambda x: round(x, 2)),
    "yellow": st.integers(1, 10),
    "red_extra": st.integers(0, 20),
})


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=numbers)
def test_every_number_moves_the_rule_when_changed_through_settings(tmp_path, n):
    degraded_min = max(1, n["required"] - n["gap"])
    loaded = _settings_file(tmp_path, n["required"], degraded_min, n["threshold"], n["weights"],
                            n["alert_pct"], n["yellow"], n["yellow"] + n["red_extra"])
    rules = GovernanceRules.from_settings(loaded)
    req, thr = n["required"], n["threshold"]
    # history: the boundaries sit exactly at the configured numbers
    assert rules.decide_state(req, 1.0) == (ACTIVE, "OK")
    assert rules.decide_state(req - 1, 1.0)[0] == (DEGRADED if req - 1 >= degraded_min else QUARANTINED)
    assert rules.decide_state(degraded_min, 1.0)[0] == (DEGRADED if degraded_min < req else ACTIVE)
    assert rules.decide_state(degraded_min - 1, 1.0)[0] == QUARANTINED
    # quality: the threshold accepts, just below rejects
    assert rules.decide_state(req, thr) == (ACTIVE, "OK")
    assert rules.decide_state(req, thr - 1e-9) == (DEGRADED, "LOW_QUALITY")
    # the score uses the configured weights, term by term
    comps = {"missing_dates_pct": 0.25, "duplicate_pct": 0.5, "zero_negative_flag": 1.0, "extreme_spike_flag": 1.0}
    expected = 1.0 - sum(comps[k] * n["weights"][k] for k in R.SCORE_COMPONENTS)
    assert rules.quality_score(comps) == pytest.approx(expected, abs=1e-12)
    # the rejection alert: more than the configured share
    universe = 1000
    at_limit = int(n["alert_pct"] * universe / 100)
    assert not rules.rejection_alert(at_limit, universe)
    assert rules.rejection_alert(at_limit + 1, universe) == (100.0 * (at_limit + 1) / universe > n["alert_pct"])
    # freshness bands
    assert rules.price_health(n["yellow"] - 1) == R.GREEN
    assert rules.price_health(n["yellow"]) == R.YELLOW
    assert rules.price_health(n["yellow"] + n["red_extra"]) == R.YELLOW
    assert rules.price_health(n["yellow"] + n["red_extra"] + 1) == R.RED


# ------------------------------------------------------------------ Stage 1
def standing(symbol="AAPL", state="ACTIVE", rows=1260, last="2024-06-28", calendar="XNYS", governed=None):
    return SymbolStanding(symbol=symbol, calendar=calendar, state=state, reason="OK" if state == "ACTIVE" else "X",
                          governed_rows=rows if governed is None else governed, stored_rows=rows, last_date=last)


def test_stage1_passes_a_complete_fresh_active_store():
    verdict = judge_stage1(RUNBOOK, [standing(), standing("BTC-USD", calendar="24/7", last="2024-06-30")],
                           dt.date(2024, 7, 1), now=dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone.utc))
    # at noon on Monday 2024-07-01 the last complete XNYS session is Friday 06-28
    assert verdict.passed and verdict.stage2_may_start
    assert verdict.expected_last == {"XNYS": "2024-06-28", "24/7": "2024-06-30"}


def test_a_store_16_sessions_behind_the_calendar_fails_and_stops_stage2():
    # last bar 2024-06-28; 16 XNYS sessions later is 2024-07-23 (07-04 is a holiday)
    verdict = judge_stage1(RUNBOOK, [standing(), standing("MSFT")], dt.date(2024, 7, 23),
                           now=dt.datetime(2024, 7, 24, tzinfo=dt.timezone.utc))
    assert not verdict.passed and not verdict.stage2_may_start
    assert verdict.stale == {"AAPL": 16, "MSFT": 16}
    assert {f["reason"] for f in verdict.failing} == {"STALE"}
    assert not verdict.missing_history


@pytest.mark.parametrize("behind, fresh", [(0, True), (1, True), (2, False)])
def test_freshness_is_counted_in_sessions_of_the_symbols_calendar(behind, fresh):
    as_of = {0: dt.date(2024, 6, 28), 1: dt.date(2024, 7, 1), 2: dt.date(2024, 7, 2)}[behind]
    verdict = judge_stage1(RUNBOOK, [standing()], as_of, now=dt.datetime(2024, 7, 10, tzinfo=dt.timezone.utc))
    assert verdict.ages == {"AAPL": behind}
    assert verdict.passed is fresh


@pytest.mark.parametrize("s, reason, halts", [
    (standing(state=None, rows=0, last=None), "NOT_GOVERNED", True),
    (standing(state="DEGRADED"), "X", False),
    (standing(rows=1100, governed=1260), "ROWS_REMOVED_SINCE_GOVERNED", True),
])
def test_stage1_failures_name_their_reason(s, reason, halts):
    verdict = judge_stage1(RUNBOOK, [s], dt.date(2024, 6, 28), now=dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc))
    assert not verdict.passed
    assert verdict.failing[0]["reason"] == reason
    assert (not verdict.stage2_may_start) is halts


def test_an_empty_universe_never_passes():
    verdict = judge_stage1(RUNBOOK, [], dt.date(2024, 6, 28))
    assert not verdict.passed and not verdict.stage2_may_start


# ------------------------------------------------------- one place per rule
PRODUCT = ["core", "data", "database", "reports", "trading", "cli"]
ALLOWED = {"data/governance/rules.py", "core/settings.py"}
# Providers and the synthetic generator do not judge: their 0.6 or 1000 are
# statistics or milliseconds, not the rule.  State names are checked there too.
NUMBERS_NOT_CHECKED = ("data/providers/",)
STATE_NAMES = {"ACTIVE", "DEGRADED", "QUARANTINED"}
RULE_NUMBERS = {0.6, 1260, 1000}


def _literals(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            yield node


def test_state_names_and_rule_numbers_live_only_on_the_rules_page_and_the_settings_defaults():
    found = []
    for pkg in PRODUCT:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            if rel in ALLOWED:
                continue
            tree = ast.parse(path.read_text())
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                          if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                          and n.body and isinstance(n.body[0], ast.Expr)
                          and isinstance(n.body[0].value, ast.Constant)}
            for node in _literals(tree):
                if id(node) in docstrings:
                    continue
                value = node.value
                if isinstance(value, str) and value in STATE_NAMES:
                    found.append(f"{rel}:{node.lineno} {value!r}")
                elif (isinstance(value, (int, float)) and value in RULE_NUMBERS
                      and not rel.startswith(NUMBERS_NOT_CHECKED) and _is_rule_context(path, node)):
                    found.append(f"{rel}:{node.lineno} {value!r}")
    assert not found, "rule literals outside data/governance/rules.py: " + ", ".join(found)


def _is_rule_context(path: Path, node: ast.Constant) -> bool:
    """1000 also means milliseconds per second: those are not the rule."""
    if node.value != 1000:
        return True
    line = path.read_text().splitlines()[node.lineno - 1]
    return not ("* 1000" in line or "/ 1000" in line or "1000.0" in line)


def test_a_configured_trading_halt_is_not_staleness(tmp_path):
    """A symbol halted for the last sessions is not late, so one halted
    symbol does not stop Stage 2 for the whole desk; its peers are judged as
    before, and a calendar closure the calendar does not know is excused too."""
    path = tmp_path / "settings.toml"
    path.write_text('[quality]\nhalts = { "AAPL" = [["2024-07-01", "2024-07-09"]] }\n'
                    'allowed_missing_sessions = { XNYS = ["2024-07-10"] }\n')
    rules = GovernanceRules.from_settings(load_settings(path))
    now = dt.datetime(2024, 7, 12, tzinfo=dt.timezone.utc)
    verdict = judge_stage1(rules, [standing("AAPL"), standing("MSFT")], dt.date(2024, 7, 11), now=now)
    # 06-28 -> 07-11: 8 XNYS sessions; AAPL is excused 6 (halt) + 1 (closure), MSFT only the closure
    assert verdict.ages == {"AAPL": 1, "MSFT": 7}
    assert list(verdict.stale) == ["MSFT"]
    assert RUNBOOK.excused_sessions("AAPL", "XNYS") == frozenset()
    assert R.bars_behind("XNYS", "2024-06-28", dt.date(2024, 7, 11)) == 8

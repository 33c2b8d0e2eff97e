"""Defects injected through the synthetic provider, ingested by the CLI, land
each symbol in the state the runbook's rules give, with a reason code; an
explained split or special dividend is not a spike.  Invalid bars (high <
low, a negative price) never reach the store: the border rejects the
symbol's payload (MALFORMED_DATA, exit 1; docs/decisions.md D-B1), and the
symbol, holding nothing, is QUARANTINED NO_DATA."""
import json

import pytest
from click.testing import CliRunner

import ingest_history
from database.manager import Database

AS_OF = "2026-11-19"
DEFECTS = {
    "CLEAN": "",
    "OHLC": "ohlc_inversion",
    "SHORT1100": "short_history=1100",
    "SHORT900": "short_history=900",
    "GAPS": "missing_sessions=30",
    "SPIKE": "spike",
    "NEGPX": "negative_price",
    "SPLIT": "split=2",
    "SPECIAL": "special_dividend=0.25",
}


BORDER_REJECTED = {"OHLC", "NEGPX"}


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    root = tmp_path_factory.mktemp("defects")
    universe = root / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": s} for s in DEFECTS]}))
    spec = ";".join(f"{s}:{d}" for s, d in DEFECTS.items() if d)
    env = {"RUNTIME_DIR": str(root / "runtime"), "LOGS_DIR": str(root / "logs"), "SYNTHETIC_DEFECTS": spec,
           "SETTINGS_FILE": ""}
    result = CliRunner(env=env).invoke(ingest_history.main, ["--universe", str(universe), "--provider", "synthetic",
                                                             "--as-of", AS_OF, "--json"], catch_exceptions=False)
    # the invalid payloads are rejected at the border (a failed symbol: exit 1);
    # the rest are written and the defective ones fail verification
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["exit_code"] == 1 and doc["governance"]["verification"] == "FAILED"
    rejected = {s["symbol"]: s for s in doc["symbols"] if s["outcome"] == "FAILED"}
    assert set(rejected) == BORDER_REJECTED
    assert all(s["error_code"] == "MALFORMED_DATA" and "invalid bar" in s["error_message"] for s in rejected.values())
    with Database(root / "runtime" / "institutional_trading.db") as db:
        return db.governance.states(), db.governance.latest_quality()


def test_states_follow_the_runbook_rules(governed):
    states, quality = governed
    for symbol, row in states.items():
        if symbol in BORDER_REJECTED:
            assert (row["state"], row["reason"], row["rows"]) == ("QUARANTINED", "NO_DATA", 0), (symbol, row)
            continue
        rows, score = row["rows"], row["quality_score"]
        codes = {f["code"] for f in quality[symbol]["findings"] if f["severity"] == "critical"}
        if codes or rows < 1000:
            expected = "QUARANTINED"
        elif rows < 1260 or score < 0.6:
            expected = "DEGRADED"
        else:
            expected = "ACTIVE"
        assert row["state"] == expected, (symbol, row)


@pytest.mark.parametrize("symbol,state,reason", [
    ("CLEAN", "ACTIVE", "OK"),
    ("OHLC", "QUARANTINED", "NO_DATA"),        # rejected at the border, nothing stored
    ("NEGPX", "QUARANTINED", "NO_DATA"),
    ("SHORT1100", "DEGRADED", "PARTIAL_HISTORY"),
    ("SHORT900", "QUARANTINED", "INSUFFICIENT_HISTORY"),
    ("GAPS", "DEGRADED", "PARTIAL_HISTORY"),
    ("SPLIT", "ACTIVE", "OK"),
    ("SPECIAL", "ACTIVE", "OK"),
])
def test_each_defect_lands_in_its_state(governed, symbol, state, reason):
    states, _ = governed
    assert (states[symbol]["state"], states[symbol]["reason"]) == (state, reason)


def test_spike_is_scored_and_named_and_a_negative_price_never_stored(governed):
    # (stored negative prices are still scored: tests/unit/test_governance.py)
    states, quality = governed
    assert quality["SPIKE"]["extreme_spike_flag"] == 1.0
    assert states["SPIKE"]["reason"] == "EXTREME_SPIKE"
    assert states["NEGPX"]["state"] != "ACTIVE" and states["NEGPX"]["rows"] == 0
    for explained in ("SPLIT", "SPECIAL"):
        assert quality[explained]["extreme_spike_flag"] == 0.0
        assert "EXTREME_SPIKE" not in {f["code"] for f in quality[explained]["findings"]}


def test_an_ingest_whose_verification_failed_exits_2_and_a_clean_one_0(tmp_path):
    """Issue 9, failure 1: a run that fetched and wrote every symbol but whose
    verification FAILED (a low-quality symbol) printed `verification FAILED`
    and exited 0; a scheduler gating on the exit code ran the next job on it."""
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "CLEAN"}, {"symbol": "GAPS"}]}))
    env = {"RUNTIME_DIR": str(tmp_path / "runtime"), "LOGS_DIR": str(tmp_path / "logs"), "SETTINGS_FILE": "",
           "SYNTHETIC_DEFECTS": f"GAPS:{DEFECTS['GAPS']}"}
    args = ["--universe", str(universe), "--provider", "synthetic", "--as-of", AS_OF]
    failed = CliRunner(env=env).invoke(ingest_history.main, args, catch_exceptions=False)
    assert failed.exit_code == 2, failed.output
    assert "verification FAILED" in failed.output
    clean = CliRunner(env={**env, "SYNTHETIC_DEFECTS": ""}).invoke(
        ingest_history.main, [*args, "--db", str(tmp_path / "clean.db")], catch_exceptions=False)
    assert clean.exit_code == 0, clean.output
    assert "verification PASSED" in clean.output

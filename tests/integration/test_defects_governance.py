"""Defects injected through the synthetic provider, ingested by the CLI, land
each symbol in the state the runbook's rules give, with a reason code; an
explained split or special dividend is not a spike."""
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
    # every symbol is fetched and written; the defective ones fail verification:
    # one verdict, one exit code (2, the gate's), never 0 on a failed verification
    assert result.exit_code == 2, result.output
    doc = json.loads(result.output)
    assert doc["exit_code"] == 2 and doc["governance"]["verification"] == "FAILED"
    with Database(root / "runtime" / "institutional_trading.db") as db:
        return db.governance.states(), db.governance.latest_quality()


def test_states_follow_the_runbook_rules(governed):
    states, quality = governed
    for symbol, row in states.items():
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
    ("OHLC", "QUARANTINED", "OHLC_INCONSISTENT"),
    ("SHORT1100", "DEGRADED", "PARTIAL_HISTORY"),
    ("SHORT900", "QUARANTINED", "INSUFFICIENT_HISTORY"),
    ("GAPS", "DEGRADED", "PARTIAL_HISTORY"),
    ("SPLIT", "ACTIVE", "OK"),
    ("SPECIAL", "ACTIVE", "OK"),
])
def test_each_defect_lands_in_its_state(governed, symbol, state, reason):
    states, _ = governed
    assert (states[symbol]["state"], states[symbol]["reason"]) == (state, reason)


def test_spike_and_negative_price_are_scored_and_named(governed):
    states, quality = governed
    assert quality["SPIKE"]["extreme_spike_flag"] == 1.0
    assert states["SPIKE"]["reason"] == "EXTREME_SPIKE"
    assert quality["NEGPX"]["zero_negative_flag"] == 1.0
    assert states["NEGPX"]["state"] != "ACTIVE" or states["NEGPX"]["reason"] != "OK"
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

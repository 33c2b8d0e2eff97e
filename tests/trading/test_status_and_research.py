"""main.py --status, feature_refresher.py, scripts/train_ml_alpha.py."""
from __future__ import annotations

import importlib.util
import json

from click.testing import CliRunner

from core.settings import REPO_ROOT

import feature_refresher
import main as main_cli
from tests.trading.market_frames import SEEDED_AS_OF


def _train_cli():
    spec = importlib.util.spec_from_file_location("train_ml_alpha", REPO_ROOT / "scripts" / "train_ml_alpha.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def invoke(cmd, *args):
    if cmd is main_cli.main:
        args = (*args, "--as-of", SEEDED_AS_OF)
    return CliRunner().invoke(cmd, list(args))


def test_status_reports_positions_exposure_var_cvar_and_safe_mode(seeded):
    assert invoke(main_cli.main, "--run-once").exit_code == 0
    result = invoke(main_cli.main, "--status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["positions"], "the run bought something"
    assert set(status) >= {"positions", "exposure", "var_1d_95", "cvar_1d_95", "safe_mode", "equity", "cash"}
    assert 0 < status["exposure"]["gross"] <= 1.0
    assert status["cvar_1d_95"] >= status["var_1d_95"] > 0
    assert status["safe_mode"] == {"active": False, "scale": 1.0, "reason": None, "consecutive_errors": 0}
    human = invoke(main_cli.main, "--status")
    assert "VaR 1d 95%" in human.output and "safe mode     off" in human.output


def test_status_without_database_is_a_missing_input(desk):
    assert invoke(main_cli.main, "--status").exit_code == 66


def test_feature_refresh_is_a_no_op_when_the_data_is_unchanged(seeded):
    first = invoke(feature_refresher.main, "--json")
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body["rebuilt"] and body["symbols"] == 3 and body["rows"] > 0
    again = json.loads(invoke(feature_refresher.main, "--json").stdout)
    assert again["rebuilt"] is False and again["data_hash"] == body["data_hash"]
    assert (seeded.root / "features" / "features.parquet").exists()


def test_trained_model_is_used_by_the_next_run(seeded):
    result = invoke(_train_cli(), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"].startswith("ridge:") and summary["trained_rows"] > 100
    assert (seeded.paths.models_dir / "alpha_ridge.json").exists()
    run = invoke(main_cli.main, "--run-once", "--json")
    ticket = json.loads(run.stdout)["ticket"]
    assert ticket["data"]["alpha_model"] == summary["model"]
    assert all(i["alpha_model"] == summary["model"] for i in ticket["instructions"])


def test_corrupt_model_counts_an_error_and_trading_goes_on(seeded):
    seeded.paths.models_dir.mkdir(parents=True)
    (seeded.paths.models_dir / "alpha_ridge.json").write_text("garbage")
    run = invoke(main_cli.main, "--run-once", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["ticket"]["data"]["alpha_model"] is None
    live = [json.loads(x) for x in (seeded.paths.logs / "live.jsonl").read_text().splitlines()]
    assert any(r["event"] == "MODEL_LOAD_FAILED" for r in live)


def test_daemon_picks_up_a_retrained_model_at_the_next_data_refresh(seeded):
    from database.manager import Database
    from tests.trading.agent_builder import build_agent
    from trading.daemon import TradingDaemon

    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db)
        daemon = TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60)
        daemon.tick()
        daemon.wait_for_refresh()                            # the first snapshot, fitted off the tick loop
        assert agent.snapshot.alpha_model is None
        assert invoke(_train_cli(), "--json").exit_code == 0
        daemon.tick()
        assert agent.snapshot.alpha_model is None            # not before the data is refreshed
        daemon.refresh_seconds = 0.0
        daemon.tick()
        daemon.wait_for_refresh()
        assert agent.snapshot.alpha_model is not None and agent.snapshot.alpha_model.startswith("ridge:")

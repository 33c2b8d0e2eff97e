"""Stage 2 entry points behind ``main.py`` and ``trading_daemon.py``.

Start-up order (each step can end the run):

1. settings, universe, ``[trading]`` config (paper drops live credentials);
2. live gate - credentials and an explicit confirmation (no network, no DB);
3. history gate - every enabled universe symbol has its history and is
   fresh at the as-of date (data/governance/rules.py, rule 6), or the
   ``[DATA_GOVERNANCE]`` block, ``runtime/governance_halt.log``, exit 3;
4. kill switch - present: refuse, exit 3;
5. live only: Stage 1 verified;
6. one cycle (``--run-once``: decision, orders, ticket) or the daemon loop,
   whose data refresh fetches through a router given the history guard.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from core.universe import UniverseError
from database.manager import Database, StoreAccessError, StoreError
from core import exit_codes
from core.inputs import load_inputs
from cli.command import DataInputError, InputError, MissingInputError
from core.runtime import RuntimePaths
from core.settings import SettingsError, load_settings
from core.clock import run_id_stamp, utc_now
from core.logs import OperatorLog
from trading.agent import KillSwitchEngaged, TradingAgent
from trading.brokers import LiveAlpacaBroker, PaperBroker
from trading.config import ConfigError, load_trading_config
from trading.daemon import TradingDaemon, ingestion_refresh
from trading.gate import (append_halt_log, check_history, kill_switch_engaged, kill_switch_message,
                          live_refusals, stage1_verified)
from trading.guard import HistoryGuard
from trading.status import portfolio_status, render_status
from trading.ticket import build_ticket, render_json, write_ticket



@dataclass
class Stage2Options:
    mode: str = "paper"
    run_once: bool = False
    tickers: list[str] | None = None
    confirm_live: bool = False
    db_path: str | None = None
    universe_path: str | None = None
    as_json: bool = False
    tick_interval: float = 1.0
    data_refresh_minutes: float = 30.0
    heartbeat_seconds: float | None = None
    as_of: dt.date | None = None          # judge the store as of this date (default: today, UTC)


def parse_tickers(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip().upper() for t in text.split(",") if t.strip()]


def select_entries(universe, tickers: list[str] | None):
    """The universe entries to trade; a ticker not in (or disabled in) the
    universe is a bad ``--tickers`` value (exit 64), as in ingest_history.py."""
    try:
        return universe.select(tickers)
    except UniverseError as exc:
        raise InputError(f"--tickers: {exc}") from exc


def _say(opts: Stage2Options, text: str, payload: Mapping[str, Any] | None = None, *, err: bool = False) -> None:
    """Human text, or under --json one JSON object on stdout."""
    if opts.as_json:
        if payload is not None:
            print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(text, file=sys.stderr if err else sys.stdout)


def _load(opts: Stage2Options, env: Mapping[str, str]):
    universe, settings = load_inputs(opts.universe_path, env)
    entries = select_entries(universe, opts.tickers)
    try:
        config = load_trading_config(settings, opts.mode, env)
    except ConfigError as exc:
        raise DataInputError(str(exc)) from exc
    if opts.heartbeat_seconds is not None:
        config = replace(config, heartbeat_seconds=float(opts.heartbeat_seconds))
    return settings, universe, entries, config


def run_stage2(opts: Stage2Options, *, env: Mapping[str, str] | None = None,
               live_broker_factory: Callable[..., Any] | None = None,
               refresh: Callable[[], None] | None = None, daemon_hook: Callable[[TradingDaemon], None] | None = None,
               agent_kwargs: Mapping[str, Any] | None = None, console: logging.Handler | None = None) -> int:
    """Run Stage 2 as the CLI would; returns the exit code.  ``console``:
    the edge's handler that shows the run's log to the operator."""
    env = os.environ if env is None else env
    settings, universe, entries, config = _load(opts, env)
    paths = RuntimePaths.resolve(opts.db_path)

    if opts.mode == "live":
        reasons = live_refusals(config, confirm_flag=opts.confirm_live, env=env)
        if reasons:
            text = "live trading refused: " + "; ".join(reasons)
            _say(opts, text, {"status": "refused", "mode": "live", "reasons": reasons}, err=True)
            return exit_codes.GATE_FAILED

    as_of = opts.as_of or utc_now().date()
    gap = check_history(paths.db, universe.entries, settings, as_of)
    if not gap.ok:
        block = gap.block()
        append_halt_log(paths.governance_halt_log, block, reason=gap.reason)
        affected = gap.missing or gap.stale
        payload = {"status": "halted", "reason": gap.reason, "symbols_affected": len(affected),
                   "required_rows": gap.required, "symbols": affected, "message": block, "as_of": str(as_of)}
        if not gap.missing:
            payload.update(expected_last_session=gap.expected_last,
                           action="python ingest_history.py --mode=incremental")
        _say(opts, block, payload)
        return exit_codes.HALTED

    if kill_switch_engaged(paths.kill_switch):
        message = kill_switch_message(paths.kill_switch)
        append_halt_log(paths.governance_halt_log, f"KILL_SWITCH at start-up: {message}", reason="kill_switch")
        _say(opts, f"refused: {message}", {"status": "halted", "reason": "kill_switch", "message": message}, err=True)
        return exit_codes.HALTED

    try:
        db = Database(paths.db)
    except StoreAccessError:
        raise                           # a damaged store: the command names the runbook's procedure
    except StoreError as exc:
        raise InputError(str(exc)) from exc
    run_id = f"stage2-{run_id_stamp()}-{uuid.uuid4().hex[:6]}"
    log = OperatorLog(paths.logs, run_id=run_id, module="trading")
    if console is not None:
        log.attach(console)
    log.capture()
    try:
        if opts.mode == "live":
            ok, why = stage1_verified(db)
            if not ok:
                _say(opts, f"live trading refused: Stage 1 not verified: {why}",
                     {"status": "refused", "mode": "live", "reasons": [f"Stage 1 not verified: {why}"]}, err=True)
                return exit_codes.GATE_FAILED
            broker = (live_broker_factory or LiveAlpacaBroker)(config.live_credentials, db)
        else:
            broker = PaperBroker(db, config)
        agent = TradingAgent(db, config, broker, entries, paths, log=log, **dict(agent_kwargs or {}))
        if opts.run_once:
            return _run_once(opts, agent, paths, log)
        if refresh is None:
            refresh = ingestion_refresh(db, universe, settings, paths, log, HistoryGuard(config.guard_max_days))
        daemon = TradingDaemon(agent, paths, log, tick_interval=opts.tick_interval,
                               data_refresh_minutes=opts.data_refresh_minutes,
                               heartbeat_seconds=config.heartbeat_seconds, refresh=refresh)
        if daemon_hook is not None:
            daemon_hook(daemon)
        with _stop_on_signals(daemon):
            return daemon.run()
    finally:
        log.close()
        db.close()


@contextlib.contextmanager
def _stop_on_signals(daemon: TradingDaemon):
    """SIGTERM/SIGINT stop the daemon after its current tick (main thread
    only: Python delivers signals there); previous handlers are restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: daemon.stop())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_once(opts: Stage2Options, agent: TradingAgent, paths: RuntimePaths, log: OperatorLog) -> int:
    try:
        report = agent.run_cycle()
    except KillSwitchEngaged as exc:
        append_halt_log(paths.governance_halt_log, f"KILL_SWITCH during run: {exc}", reason="kill_switch")
        log.warning("KILL_SWITCH_HALT", module="trading.stage2", message=str(exc))
        _say(opts, f"halted: {exc}", {"status": "halted", "reason": "kill_switch", "message": str(exc)}, err=True)
        return exit_codes.HALTED
    except Exception as exc:
        agent.record_loop_error(exc)
        log.error("CYCLE_FAILED", module="trading.stage2", exc=exc)
        _say(opts, f"error: cycle failed: {type(exc).__name__}: {exc}",
             {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}, err=True)
        return exit_codes.FAILURE
    decision = report.decision
    ticket = build_ticket(decision, config_public=agent.config.public())
    md_path, json_path, _ = write_ticket(paths.tickets_dir, ticket)
    filled = sum(1 for r in report.results if r.status == "FILLED")
    log.info("RUN_ONCE_DONE", module="trading.stage2", session=decision.session, orders=len(report.results),
             filled=filled, ticket=str(json_path), safe_mode=agent.safe_mode.active)
    text = (f"session {decision.session}: {len(report.results)} order(s) sent, {filled} filled; "
            f"gross exposure {decision.exposure['gross']:.4f}, VaR95 {decision.var:.6f}, CVaR95 {decision.cvar:.6f}"
            f"{'; SAFE MODE x' + format(agent.safe_mode.exposure_scale, 'g') if agent.safe_mode.active else ''}\n"
            f"ticket: {md_path}")
    _say(opts, text, {"status": "ok", "session": decision.session, "orders": len(report.results),
                      "filled": filled, "ticket_md": str(md_path), "ticket_json": str(json_path),
                      "ticket": json.loads(render_json(ticket))})
    return exit_codes.OK


def show_status(opts: Stage2Options, *, env: Mapping[str, str] | None = None) -> int:
    """``main.py --status``: positions, exposure, VaR, CVaR, safe mode."""
    env = os.environ if env is None else env
    try:
        settings = load_settings()
        config = load_trading_config(settings, "paper", env)
    except (SettingsError, ConfigError) as exc:
        raise DataInputError(str(exc)) from exc
    paths = RuntimePaths.resolve(opts.db_path)
    if not paths.db.exists():
        raise MissingInputError(f"{paths.db}: database not found (run ingest_history.py first)")
    with Database(paths.db) as db:
        status = portfolio_status(db, config, paths)
    _say(opts, render_status(status), status)
    return exit_codes.OK

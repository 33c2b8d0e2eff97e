"""Stage 2's application: behind ``main.py`` and ``trading_daemon.py``.

Start-up order (each step can end the run):

1. settings, universe, ``[trading]`` config (paper drops live credentials);
2. live gate - credentials and an explicit confirmation (no network, no DB);
3. history gate - every enabled universe symbol has its history and is
   fresh at the as-of date (data/governance/rules.py, rule 6), or the
   ``[DATA_GOVERNANCE]`` block is appended to ``runtime/governance_halt.log``;
4. kill switch - present: refuse (recorded in the halt log);
5. live only: Stage 1 verified;
6. one cycle (``run_once``: decision, orders, ticket) or the daemon loop,
   whose data refresh fetches through a router given the history guard.

:func:`run_stage2` returns what happened as one typed outcome (or raises a
typed ``core.errors`` error for bad input); the edge, ``cli/stage2.py``,
renders it and maps it to an exit code.  Nothing here prints.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Union

from core.clock import run_id_stamp, utc_now
from core.errors import UsageError
from core.inputs import load_inputs
from core.logs import OperatorLog
from core.runtime import RuntimePaths
from core.universe import NotInUniverseError
from database.manager import Database, StoreAccessError, StoreError
from trading.agent import KillSwitchEngaged, TradingAgent
from trading.brokers import LiveAlpacaBroker, PaperBroker
from trading.config import load_trading_config
from trading.daemon import TradingDaemon, ingestion_refresh
from trading.gate import (HistoryGap, append_halt_log, check_history, kill_switch_engaged, kill_switch_message,
                          live_refusals, stage1_passed)
from trading.guard import HistoryGuard
from trading.ticket import build_ticket, write_ticket


@dataclass
class Stage2Options:
    """What the operator asked Stage 2 for."""

    mode: str = "paper"
    run_once: bool = False
    tickers: tuple[str, ...] = ()         # --tickers (normalised); empty: every enabled symbol
    confirm_live: bool = False
    db_path: str | None = None
    universe_path: str | None = None
    tick_interval: float = 1.0
    data_refresh_minutes: float = 30.0
    heartbeat_seconds: float | None = None
    as_of: dt.date | None = None          # judge the store as of this date (default: today, UTC)


# ------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class LiveRefused:
    """Live trading may not start (credentials, confirmation, Stage 1
    verification); nothing was sent."""

    reasons: list[str]


@dataclass(frozen=True)
class HistoryHalted:
    """The history gate stopped Stage 2: missing or stale history (the
    runbook's block, already appended to the halt log)."""

    gap: HistoryGap
    as_of: dt.date


@dataclass(frozen=True)
class KillSwitchRefused:
    """The kill switch was present at start-up (recorded in the halt log)."""

    message: str


@dataclass(frozen=True)
class CycleDone:
    """``run_once``: the cycle ran, its orders went out, the ticket is written."""

    session: str | None
    orders: int
    filled: int
    gross_exposure: float
    var: float
    cvar: float
    safe_mode: bool
    safe_mode_scale: float
    ticket: dict[str, Any]
    ticket_md: str
    ticket_json: str


@dataclass(frozen=True)
class CycleHalted:
    """``run_once``: the kill switch appeared during the cycle; no order after it."""

    message: str


@dataclass(frozen=True)
class CycleFailed:
    """``run_once``: the cycle raised (a loop error, in errors.jsonl)."""

    error: str                            # "ExceptionClass: message"


@dataclass(frozen=True)
class DaemonStopped:
    """The daemon loop ended (SIGTERM, Ctrl-C)."""

    ticks: int


Stage2Outcome = Union[LiveRefused, HistoryHalted, KillSwitchRefused, CycleDone, CycleHalted, CycleFailed,
                      DaemonStopped]


# -------------------------------------------------------------------- start
def select_entries(universe, tickers: tuple[str, ...] | list[str] | None):
    """The universe entries to trade; a ticker not in (or disabled in) the
    universe is a NotInUniverseError naming ``--tickers``."""
    try:
        return universe.select(list(tickers or ()) or None)
    except NotInUniverseError as exc:
        raise NotInUniverseError(f"--tickers: {exc}") from exc


def _load(opts: Stage2Options, env: Mapping[str, str]):
    universe, settings = load_inputs(opts.universe_path, env)
    entries = select_entries(universe, opts.tickers)
    config = load_trading_config(settings, opts.mode, env)
    if opts.heartbeat_seconds is not None:
        config = replace(config, heartbeat_seconds=float(opts.heartbeat_seconds))
    return settings, universe, entries, config


def _open_store(paths: RuntimePaths) -> Database:
    """The store, read-write.  One this code cannot use (a schema newer
    than the code) is refused as the ``--db`` given (a UsageError); a
    damaged or locked one stays a StoreAccessError."""
    try:
        return Database(paths.db)
    except StoreAccessError:
        raise                           # a damaged store: the edge names the runbook's procedure
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def run_stage2(opts: Stage2Options, *, env: Mapping[str, str] | None = None,
               live_broker_factory: Callable[..., Any] | None = None,
               console: logging.Handler | None = None) -> Stage2Outcome:
    """Run Stage 2 as asked: the gates, then one cycle or the daemon loop.

    ``console``: the edge's handler that shows the run's log to the
    operator.  Raises a ``core.errors.InputError`` for bad input, before
    anything is written."""
    env = os.environ if env is None else env
    settings, universe, entries, config = _load(opts, env)
    paths = RuntimePaths.resolve(opts.db_path)

    if opts.mode == "live":
        reasons = live_refusals(config, confirm_flag=opts.confirm_live, env=env)
        if reasons:
            return LiveRefused(reasons)

    as_of = opts.as_of or utc_now().date()
    gap = check_history(paths.db, universe.entries, settings, as_of)
    if not gap.ok:
        append_halt_log(paths.governance_halt_log, gap.block(), reason=gap.reason)
        return HistoryHalted(gap, as_of)

    if kill_switch_engaged(paths.kill_switch):
        message = kill_switch_message(paths.kill_switch)
        append_halt_log(paths.governance_halt_log, f"KILL_SWITCH at start-up: {message}", reason="kill_switch")
        return KillSwitchRefused(message)

    db = _open_store(paths)
    run_id = f"stage2-{run_id_stamp()}-{uuid.uuid4().hex[:6]}"
    log = OperatorLog(paths.logs, run_id=run_id, module="trading")
    if console is not None:
        log.attach(console)
    log.capture()
    try:
        if opts.mode == "live":
            ok, why = stage1_passed(db, universe.entries, settings, as_of)
            if not ok:
                return LiveRefused([f"Stage 1 not verified: {why}"])
            broker = (live_broker_factory or LiveAlpacaBroker)(config.live_credentials, db)
        else:
            broker = PaperBroker(db, config)
        agent = TradingAgent(db, config, broker, entries, paths, log=log)
        if opts.run_once:
            return _run_once(agent, paths, log)
        refresh = ingestion_refresh(db, universe, settings, paths, log, HistoryGuard(config.guard_max_days))
        daemon = TradingDaemon(agent, paths, log, tick_interval=opts.tick_interval,
                               data_refresh_minutes=opts.data_refresh_minutes,
                               heartbeat_seconds=config.heartbeat_seconds, refresh=refresh)
        with _stop_on_signals(daemon):
            daemon.run()
        return DaemonStopped(daemon.ticks)
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


def _run_once(agent: TradingAgent, paths: RuntimePaths, log: OperatorLog) -> CycleDone | CycleHalted | CycleFailed:
    """One cycle, its orders and the ticket; a failure is a loop error."""
    try:
        report = agent.run_cycle()
    except KillSwitchEngaged as exc:
        append_halt_log(paths.governance_halt_log, f"KILL_SWITCH during run: {exc}", reason="kill_switch")
        log.warning("KILL_SWITCH_HALT", module="trading.stage2", message=str(exc))
        return CycleHalted(str(exc))
    except Exception as exc:  # one cycle failing is an outcome of the run, as in the daemon loop
        agent.record_loop_error(exc)
        log.error("CYCLE_FAILED", module="trading.stage2", exc=exc)
        return CycleFailed(f"{type(exc).__name__}: {exc}")
    decision = report.decision
    ticket = build_ticket(decision, config_public=agent.config.public())
    md_path, json_path, _ = write_ticket(paths.tickets_dir, ticket)
    filled = sum(1 for r in report.results if r.status == "FILLED")
    log.info("RUN_ONCE_DONE", module="trading.stage2", session=decision.session, orders=len(report.results),
             filled=filled, ticket=str(json_path), safe_mode=agent.safe_mode.active)
    return CycleDone(session=decision.session, orders=len(report.results), filled=filled,
                     gross_exposure=decision.exposure["gross"], var=decision.var, cvar=decision.cvar,
                     safe_mode=agent.safe_mode.active, safe_mode_scale=agent.safe_mode.exposure_scale,
                     ticket=ticket, ticket_md=str(md_path), ticket_json=str(json_path))

"""Stage 2's application: behind ``main.py`` and ``trading_daemon.py``.

Start-up order (each step can end the run):

1. settings, universe, ``[trading]`` config (paper drops live credentials);
2. live gate - credentials and an explicit confirmation (no network, no DB);
3. history gate - every enabled universe symbol has its history and is
   fresh at the as-of date (data/governance/rules.py, rule 6), or the
   ``[DATA_GOVERNANCE]`` block is appended to ``runtime/governance_halt.log``;
4. kill switch - present: refuse (recorded in the halt log);
5. every sink a cycle writes (database, logs, tickets) takes a write
   (``trading.sinks``), or nothing is sent; a start that passes every gate
   after a recorded halt appends a resume to the halt log;
6. live only: Stage 1 verified;
7. one cycle (``run_once``: decision, orders, ticket) or the daemon loop,
   whose data refresh fetches through a router given the history guard.
   SIGTERM/SIGINT stop either within one tick: a cycle stops before its
   next model fit or order, the daemon before its next tick.

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
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Union

from core.alert_policy import AlertPolicy
from core.clock import run_id_stamp, utc_now
from core.errors import UsageError
from core.inputs import load_inputs
from core.logs import OperatorLog
from core.runtime import RuntimePaths
from core.universe import NotInUniverseError
from database import Store, StoreAccessError, StoreError, StoreMissing, open_store, store_exists
from trading.agent import KillSwitchEngaged, SnapshotProgress, StopRequested, TradingAgent
from trading.brokers import DUPLICATE, LiveAlpacaBroker, PaperBroker
from trading.config import load_trading_config
from trading.daemon import TradingDaemon, ingestion_refresh
from trading.gate import (HistoryGap, append_halt_log, append_resume_log, check_history, kill_switch_engaged,
                          kill_switch_message, live_refusals, open_halt, stage1_passed, staleness_check)
from trading.guard import HistoryGuard
from trading.sinks import check_sinks
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
    # Log records a file could not take during the cycle (path -> (count,
    # error)): the orders are recorded, the log is not whole - exit 1.
    log_failures: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CycleHalted:
    """``run_once``: the kill switch appeared during the cycle; no order after it."""

    message: str


@dataclass(frozen=True)
class CycleFailed:
    """``run_once``: the cycle raised (a loop error, in errors.jsonl)."""

    error: str                            # "ExceptionClass: message"


@dataclass(frozen=True)
class SinksUnavailable:
    """A sink a cycle must write (database, logs, tickets) cannot take a
    write: nothing was sent."""

    problems: list[str]


@dataclass(frozen=True)
class CycleInterrupted:
    """``run_once``: SIGTERM/SIGINT arrived during the cycle; it stopped
    before its next model fit or order (those sent are recorded)."""

    signal: str                           # SIGTERM / SIGINT
    message: str


@dataclass(frozen=True)
class DaemonStopped:
    """The daemon loop ended (SIGTERM, Ctrl-C)."""

    ticks: int
    # A refresh was still running (e.g. stuck on a vendor): its threads are
    # abandoned, and the process should exit without waiting for them.
    abandoned_refresh: bool = False


Stage2Outcome = Union[LiveRefused, HistoryHalted, KillSwitchRefused, SinksUnavailable, CycleDone, CycleHalted,
                      CycleFailed, CycleInterrupted, DaemonStopped]


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


def _open_store(paths: RuntimePaths) -> Store:
    """The store, read-write, after its pre-flight (``open_store(check=True)``).
    One this code cannot use (a schema newer than the code) is refused as
    the ``--db`` given (a UsageError); one that cannot be used stays its
    typed StoreAccessError (corrupt, read-only, disk full, ...)."""
    try:
        return open_store(paths.db, check=True)
    except StoreAccessError:
        raise                           # a damaged store: the edge names the runbook's procedure
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def run_stage2(opts: Stage2Options, *, env: Mapping[str, str] | None = None,
               live_broker_factory: Callable[..., Any] | None = None,
               console: logging.Handler | None = None, progress: SnapshotProgress | None = None) -> Stage2Outcome:
    """Run Stage 2 as asked: the gates, then one cycle or the daemon loop.

    ``console``: the edge's handler that shows the run's log to the
    operator; ``progress``: the edge's view of a cycle's model fits.
    Raises a ``core.errors.InputError`` for bad input, before anything is
    written."""
    env = os.environ if env is None else env
    settings, universe, entries, config = _load(opts, env)
    paths = RuntimePaths.resolve(opts.db_path)

    if opts.mode == "live":
        reasons = live_refusals(config, confirm_flag=opts.confirm_live, env=env)
        if reasons:
            return LiveRefused(reasons)

    as_of = opts.as_of or utc_now().date()
    if opts.db_path is not None and not store_exists(paths.db):
        # A mistyped --db is an input error (66), not missing history: no halt block, no halt record.
        raise StoreMissing(f"{paths.db}: database not found (--db names no file; check the path, or run "
                           f"ingest_history.py --db {paths.db} first)")
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
    stop = _StopFlag()
    try:
        problems = check_sinks(db, paths, log.files)
        if problems:
            _record_sink_problems(db, log, [str(p) for p in problems])
            return SinksUnavailable([str(p) for p in problems])
        if opts.mode == "live":
            ok, why = stage1_passed(db, universe.entries, settings, as_of)
            if not ok:
                return LiveRefused([f"Stage 1 not verified: {why}"])
        _record_resume(paths, log, run_id)          # every gate has passed
        if opts.mode == "live":
            broker = (live_broker_factory or LiveAlpacaBroker)(config.live_credentials, db)
        else:
            broker = PaperBroker(db, config)
        agent = TradingAgent(db, config, broker, entries, paths, log=log,
                             staleness=staleness_check(settings, entries, opts.as_of), stop_requested=stop.is_set)
        if opts.run_once:
            with _on_signals(stop.set):
                return _run_once(agent, paths, log, stop, progress)
        refresh = ingestion_refresh(universe, settings, paths, log, HistoryGuard(config.guard_max_days), opts.as_of)
        daemon = TradingDaemon(agent, paths, log, tick_interval=opts.tick_interval,
                               data_refresh_minutes=opts.data_refresh_minutes,
                               heartbeat_seconds=config.heartbeat_seconds, refresh=refresh,
                               alerts=lambda: AlertPolicy(source="trading_daemon", run_id=run_id, settings=settings,
                                                          store=db.alerts, paths=paths, env=env))

        def on_signal(name: str) -> None:
            stop.set(name)
            daemon.stop(name)

        with _on_signals(on_signal):
            daemon.run()
        return DaemonStopped(daemon.ticks, daemon.abandoned_refresh)
    finally:
        log.close()
        db.close()


def _record_sink_problems(db: Store, log: OperatorLog, problems: list[str]) -> None:
    """Say where it can be heard that nothing was sent: the log (whose
    console always shows it), and the store's governance events when the
    store is not the sink that failed."""
    message = "nothing is sent that cannot be recorded: " + "; ".join(problems)
    log.error("SINK_UNAVAILABLE", module="trading.sinks", message=message, sinks=problems)
    if not any(p.startswith("database ") for p in problems):
        try:
            db.governance.record_event("STAGE2_SINK_UNAVAILABLE", reason="SINK_UNAVAILABLE",
                                       detail={"sinks": problems})
        except StoreError:
            pass                          # the store refused too: the console and the exit code still say it


class _StopFlag:
    """Set by a signal handler: which signal asked Stage 2 to stop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: str | None = None

    def set(self, name: str) -> None:
        self.signal = self.signal or name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def _record_resume(paths: RuntimePaths, log: OperatorLog, run_id: str) -> None:
    """A start that passed every gate ends the halt the log last recorded."""
    halt = open_halt(paths.governance_halt_log)
    if halt is None:
        return
    text = f"Stage 2 started ({run_id}): every gate passed; the halt recorded as '{halt[4:]}' is over"
    if append_resume_log(paths.governance_halt_log, text):
        log.info("HALT_RESUMED", module="trading.stage2", message=text)
    else:
        log.error("HALT_LOG_NOT_WRITTEN", module="trading.stage2", message=f"{paths.governance_halt_log}: "
                  f"the resume record could not be written ({text})")


@contextlib.contextmanager
def _on_signals(handler: Callable[[str], None]):
    """SIGTERM/SIGINT call ``handler(name)`` (main thread only: Python
    delivers signals there); previous handlers are restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: handler(signal.Signals(signum).name))
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def _run_once(agent: TradingAgent, paths: RuntimePaths, log: OperatorLog, stop: _StopFlag,
              progress: SnapshotProgress | None) -> CycleDone | CycleHalted | CycleFailed | CycleInterrupted:
    """One cycle, its orders and the ticket; a failure is a loop error."""
    log.info("CYCLE_START", module="trading.stage2", symbols=len(agent.symbols),
             message=f"cycle: fitting {len(agent.symbols)} symbol(s), then orders and the ticket")
    try:
        report = agent.run_cycle(progress)
    except KillSwitchEngaged as exc:
        append_halt_log(paths.governance_halt_log, f"KILL_SWITCH during run: {exc}", reason="kill_switch")
        log.warning("KILL_SWITCH_HALT", module="trading.stage2", message=str(exc))
        return CycleHalted(str(exc))
    except StopRequested as exc:
        message = f"{stop.signal}: {exc}"
        log.warning("CYCLE_INTERRUPTED", module="trading.stage2", signal=stop.signal, message=message)
        return CycleInterrupted(stop.signal or "signal", message)
    except Exception as exc:  # one cycle failing is an outcome of the run, as in the daemon loop
        agent.record_loop_error(exc)
        log.error("CYCLE_FAILED", module="trading.stage2", exc=exc)
        return CycleFailed(f"{type(exc).__name__}: {exc}")
    decision = report.decision
    ticket = build_ticket(decision, config_public=agent.config.public())
    try:
        md_path, json_path, _ = write_ticket(paths.tickets_dir, ticket)
    except OSError as exc:
        # The orders are in the store already; the run still failed its job.
        log.error("TICKET_NOT_WRITTEN", module="trading.ticket", exc=exc, orders=len(report.results))
        return CycleFailed(f"ticket not written to {paths.tickets_dir} ({type(exc).__name__}: {exc}); "
                           f"the cycle's {len(report.results)} order(s) are recorded in the database")
    filled = sum(1 for r in report.results if r.status == "FILLED")
    # A DUPLICATE was recorded (and sent) by an earlier run: not sent again now.
    sent = [r for r in report.results if r.status != DUPLICATE]
    log.info("RUN_ONCE_DONE", module="trading.stage2", session=decision.session, orders=len(sent),
             filled=filled, ticket=str(json_path), safe_mode=agent.safe_mode.active)
    return CycleDone(session=decision.session, orders=len(sent), filled=filled,
                     gross_exposure=decision.exposure["gross"], var=decision.var, cvar=decision.cvar,
                     safe_mode=agent.safe_mode.active, safe_mode_scale=agent.safe_mode.exposure_scale,
                     ticket=ticket, ticket_md=str(md_path), ticket_json=str(json_path),
                     log_failures=log.sink_failures())

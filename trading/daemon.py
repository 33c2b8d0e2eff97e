"""The 24/7 loop: ticks, kill switch, heartbeat, data refresh, safe mode.

The tick loop never waits on slow work.  The data refresh (the incremental
ingest + re-governance) and the model fits that rebuild the snapshot run on
a worker thread (:class:`RefreshWorker`) with a store connection of its
own; the loop adopts the new snapshot at the first tick after it is ready,
and trades on the previous one meanwhile.  The kill switch, SIGTERM and
SIGINT are therefore honoured within one tick whatever the worker is doing;
a worker still running at stop is abandoned (its ingest run is marked
``ABORTED``).

Every tick:

1. a finished refresh is adopted (its failure is a loop error);
2. the kill switch is checked - present: no cycle runs, and the halt is
   appended to ``runtime/governance_halt.log`` the first tick it is seen
   (the agent also checks it before every order, so no order follows the
   file's appearance); removed: trading resumes, and the resume is logged
   and appended to the halt log too;
3. the heartbeat must be alive (if it stops, trading stops) and every sink
   a cycle writes must take a write (``trading.sinks``), else no cycle;
4. when the data-refresh interval has passed, the worker is started;
5. one decision cycle runs on the current snapshot; an exception is a loop
   error (stack trace to ``errors.jsonl``), and more than five in a row put
   the agent in safe mode.

A heartbeat thread logs ``HEARTBEAT | uptime=... | symbols=... | cycles=...
| model_errors=... | arima_fb=...`` every ``heartbeat_seconds``, to the
console and ``live.jsonl``, independent of ticks and refreshes.  A log file
that cannot be written never stops it: the line still reaches the console,
with ``| log_write_failures=N``.  ``stop()`` (SIGTERM in the CLI) ends the
loop within one tick.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, Callable

from core.alert_policy import AlertPolicy
from core.alerts import AlertMessage
from core.runtime import RuntimePaths
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import IngestOptions, new_run_id, run_ingestion
from database import Store, StoreError, open_store
from trading.agent import KillSwitchEngaged, Snapshot, StopRequested, TradingAgent
from trading.gate import append_halt_log, append_resume_log, kill_switch_engaged, kill_switch_message
from trading.guard import GuardViolation, HistoryGuard
from trading.sinks import SinkProblem, check_sinks
from trading.ticket import build_ticket, write_ticket


def heartbeat_line(uptime_s: float, symbols: int, cycles: int, model_errors: int, arima_fb: int,
                   log_write_failures: int = 0) -> str:
    """The runbook's heartbeat format (``log_write_failures`` appended only
    while a log file cannot be written)."""
    line = (f"HEARTBEAT | uptime={int(uptime_s)}s | symbols={symbols} | cycles={cycles} | "
            f"model_errors={model_errors} | arima_fb={arima_fb}")
    return line + (f" | log_write_failures={log_write_failures}" if log_write_failures else "")


# A refresh job: (the worker's store, started(run_id)) -> None.
RefreshJob = Callable[[Store, Callable[[str], None]], None]


def ingestion_refresh(universe, settings, paths: RuntimePaths, log: Any, guard: HistoryGuard,
                      as_of: dt.date | None = None) -> RefreshJob:
    """The daemon's refresh job: an incremental Stage 1 run on the store
    the worker thread opened, through a router built with the history
    guard, so every provider it builds - in a worker process too - refuses
    a long request.  ``as_of``: the date Stage 2 was started at (``--as-of``;
    None: today at each refresh).  ``started(run_id)`` is told the run's id before it
    begins (the daemon marks it ABORTED if it abandons the worker).

    Ingestion turns any provider exception into a per-symbol failure, so a
    GUARD VIOLATION would only show in the audit; the guard records each
    one and the job logs them and raises, naming the fix: a store too far
    behind for an incremental refresh needs a run of its own.  The run
    re-governs the symbols it fetched, as every ingest run does."""
    def refresh(db: Store, started: Callable[[str], None]) -> None:
        router = DataRouter(settings, guard=guard)
        run_id = new_run_id()
        started(run_id)
        guard.take_violations()
        try:
            report = run_ingestion(db, universe, settings, paths, IngestOptions(mode="incremental", as_of=as_of),
                                   router=router, run_id=run_id)
        finally:
            router.close()
        violations = guard.take_violations()
        for message in violations:
            log.error("GUARD_VIOLATION", module="trading.guard", message=message)
        if violations:
            raise GuardViolation(
                f"{violations[0]} ({len(violations)} violation(s) during the refresh); the store is too far "
                f"behind for the daemon's refresh: run python ingest_history.py --mode=incremental")
        log.info("DATA_REFRESH_INGEST", module="trading.daemon", ingest_run_id=report.run_id,
                 status=report.status, rows_written=report.rows_written)
    return refresh


# The problems the daemon owns in the alert policy (docs/runbook.md, 'Alerts').
DAEMON_ALERT_KEYS = ("daemon.loop_error", "daemon.refresh_failed", "daemon.safe_mode", "daemon.kill_switch",
                     "daemon.sinks", "daemon.heartbeat")


class RefreshWorker:
    """The data refresh and the snapshot rebuild, on a thread of their own.

    ``start()`` runs ``job(db, started)`` (when given) and then the agent's
    snapshot build on a fresh store connection (SQLite connections belong
    to the thread that made them); ``take()`` hands the finished result to
    the tick loop once.  The thread is a daemon thread: a stop never waits
    for it."""

    def __init__(self, agent: TradingAgent, store_location: str, job: RefreshJob | None, log: Any):
        self.agent, self.store_location, self.job, self.log = agent, store_location, job, log
        self._thread: threading.Thread | None = None
        self._result: tuple[Snapshot | None, BaseException | None] | None = None
        self._lock = threading.Lock()
        self.run_ids: list[str] = []        # ingest runs the worker started
        self.with_ingest = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, ingest: bool) -> bool:
        """Start a refresh (``ingest``: the job too, else only the
        snapshot); False when one is running already, or when the last
        one's result has not been taken yet (a failure must never be
        overwritten before the tick loop has counted it)."""
        if self.running:
            return False
        with self._lock:
            if self._result is not None:
                return False
        self.with_ingest = ingest and self.job is not None
        self._thread = threading.Thread(target=self._main, args=(self.with_ingest,), name="data-refresh",
                                        daemon=True)
        self._thread.start()
        return True

    def _main(self, ingest: bool) -> None:
        snapshot, error = None, None
        try:
            with open_store(self.store_location) as db:
                if ingest:
                    self.job(db, self.run_ids.append)
                # A model retrained since (scripts/train_ml_alpha.py) is picked up with the data.
                self.agent.predictor.reload()
                snapshot = self.agent.build_snapshot(db)
        except BaseException as exc:  # noqa: BLE001 - handed to the tick loop, which counts a loop error
            error = exc
        with self._lock:
            self._result = (snapshot, error)

    def take(self) -> tuple[Snapshot | None, BaseException | None] | None:
        """The finished refresh's (snapshot, error), once; None while running or idle."""
        with self._lock:
            result, self._result = self._result, None
        return result

    def wait(self, timeout: float) -> bool:
        """Wait for the running refresh; True when none is running any more."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


class TradingDaemon:
    """The tick loop (see the module docstring)."""

    def __init__(self, agent: TradingAgent, paths: RuntimePaths, log: Any, *, tick_interval: float = 1.0,
                 data_refresh_minutes: float = 30.0, heartbeat_seconds: float = 5.0,
                 refresh: RefreshJob | None = None, write_tickets: bool = True,
                 monotonic: Callable[[], float] = time.monotonic,
                 alerts: Callable[[], AlertPolicy] | None = None):
        self.agent = agent
        self.paths = paths
        self.log = log
        self.tick_interval = float(tick_interval)
        self.refresh_seconds = float(data_refresh_minutes) * 60.0
        self.heartbeat_seconds = float(heartbeat_seconds)
        self.write_tickets = write_tickets
        self.monotonic = monotonic
        # A fresh policy per alert: the policy's per-run cap must not count a
        # daemon's whole life (the nightly cap and dedupe are across runs).
        self.alerts = alerts
        # Keys this daemon may have left open (a previous run's too): the
        # first time each condition is seen clear, it is resolved.
        self._open_alerts: set[str] = set(DAEMON_ALERT_KEYS)
        self._raised: dict[str, tuple[str, str]] = {}   # key -> (severity, fingerprint) raised by this daemon
        self.ticks = 0
        self.halted = False
        self.sink_problems: list[SinkProblem] = []
        self.heartbeat_lost = False
        self.stop_reason: str | None = None
        self.abandoned_refresh = False      # a refresh was still running at stop
        self._stop = threading.Event()
        self._started = monotonic()
        self._last_refresh = self._started
        self._last_beat = self._started
        self._lost_at = self._started
        self._beat_thread: threading.Thread | None = None
        self.worker = RefreshWorker(agent, agent.db.location, refresh, log)

    # ------------------------------------------------------------ control
    def stop(self, reason: str | None = None) -> None:
        """End the loop within one tick (also safe from a signal handler);
        ``reason`` (e.g. the signal) is logged with DAEMON_STOP."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def heartbeat(self) -> str:
        c = self.agent.counters
        failures = sum(n for n, _ in self.log.sink_failures().values()) if hasattr(self.log, "sink_failures") else 0
        uptime = self.monotonic() - self._started
        line = heartbeat_line(uptime, len(self.agent.symbols), c.cycles, c.model_errors, c.arima_fb, failures)
        self.log.info("HEARTBEAT", module="trading.daemon", message=line, uptime_s=int(uptime),
                      symbols=len(self.agent.symbols), cycles=c.cycles, model_errors=c.model_errors,
                      arima_fb=c.arima_fb, safe_mode=self.agent.safe_mode.active, halted=self.halted,
                      refreshing=self.worker.running, log_write_failures=failures)
        self._last_beat = self.monotonic()
        return line

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001 - the heartbeat must outlive anything one beat does
                # The log itself never raises for a sink; anything else is
                # seen by the tick loop as a late beat, which stops trading.
                continue

    def heartbeat_alive(self) -> bool:
        """The heartbeat thread runs and its last beat is recent."""
        if self._beat_thread is None:
            return True                   # tick() driven directly (tests): no heartbeat thread
        late = self.monotonic() - self._last_beat > 2 * self.heartbeat_seconds + 1.0
        return self._beat_thread.is_alive() and not late

    def _restart_dead_heartbeat(self) -> None:
        if self._beat_thread is not None and not self._beat_thread.is_alive() and not self._stop.is_set():
            self._start_heartbeat()

    def _start_heartbeat(self) -> None:
        self._beat_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self._beat_thread.start()

    # ------------------------------------------------------------ loop
    def run(self, max_ticks: int | None = None) -> None:
        """Loop until stopped (or ``max_ticks``); ``ticks`` says how far it went."""
        self.log.info("DAEMON_START", module="trading.daemon", tick_interval=self.tick_interval,
                      data_refresh_s=self.refresh_seconds, symbols=len(self.agent.symbols), mode=self.agent.config.mode)
        self.heartbeat()
        self._start_heartbeat()
        if self.agent.snapshot is None:
            self.worker.start(ingest=False)   # the first snapshot's fits, off the tick loop
        try:
            while not self._stop.is_set():
                started = self.monotonic()
                self.tick()
                if max_ticks is not None and self.ticks >= max_ticks:
                    break
                self._stop.wait(max(0.0, self.tick_interval - (self.monotonic() - started)))
        finally:
            self._stop.set()
            self._abandon_refresh()
            if self._beat_thread is not None:
                self._beat_thread.join(timeout=1)
            self.log.info("DAEMON_STOP", module="trading.daemon", ticks=self.ticks,
                          cycles=self.agent.counters.cycles, reason=self.stop_reason,
                          message=f"daemon stopped after tick {self.ticks}"
                                  + (f" ({self.stop_reason})" if self.stop_reason else ""))

    def tick(self) -> None:
        self.ticks += 1
        self._adopt_refresh()
        if kill_switch_engaged(self.paths.kill_switch):
            self._halt()
            return
        if self.halted:
            self._resume()
        self._clear("daemon.kill_switch")      # also one a previous run left open
        if not self._may_trade():
            return
        if self.refresh_seconds >= 0 and self.monotonic() - self._last_refresh >= self.refresh_seconds:
            if self.worker.start(ingest=True):
                self._last_refresh = self.monotonic()
                self.log.info("DATA_REFRESH_START", module="trading.daemon", tick=self.ticks)
        if self.agent.snapshot is None:
            if not self.worker.running:
                self.worker.start(ingest=False)
            return                         # nothing to decide on until the first snapshot is built
        try:
            report = self.agent.run_cycle()
            self._clear("daemon.loop_error")
            self._alert_safe_mode()
            if self.write_tickets:
                ticket = build_ticket(report.decision, config_public=self.agent.config.public())
                _, json_path, changed = write_ticket(self.paths.tickets_dir, ticket)
                if changed:
                    self.log.info("TICKET_WRITTEN", module="trading.ticket", path=str(json_path),
                                  session=ticket["session"])
        except KillSwitchEngaged:
            self._halt()
        except StopRequested:
            return
        except Exception as exc:  # the loop survives any cycle failure; safe mode counts them
            self._loop_error(exc)

    def wait_for_refresh(self, timeout: float = 30.0) -> None:
        """Block until the running refresh finished and adopt it (for a
        caller driving ``tick()`` itself, e.g. a test)."""
        self.worker.wait(timeout)
        self._adopt_refresh()

    # ------------------------------------------------------------ parts
    def _loop_error(self, exc: BaseException, key: str = "daemon.loop_error") -> None:
        self.agent.record_loop_error(exc)
        self.log.error("LOOP_ERROR", module="trading.daemon", tick=self.ticks, exc=exc,
                       consecutive_errors=self.agent.safe_mode.state.consecutive_errors,
                       safe_mode=self.agent.safe_mode.active)
        self._alert(key, "error", "Stage 2 data refresh failed" if key == "daemon.refresh_failed"
                    else "Stage 2 loop error", f"{type(exc).__name__}: {exc}",
                    fingerprint=f"{type(exc).__name__}")
        self._alert_safe_mode()

    # ------------------------------------------------------------ alerts
    def _alert(self, key: str, severity: str, title: str, body: str, *, fingerprint: str | None = None) -> None:
        """Raise ``key`` through the alert policy (dedupe, cap, mute); an
        alert that cannot be sent never disturbs the loop."""
        if self.alerts is None:
            return
        same = (severity, fingerprint or f"{title}\n{body}")
        if self._raised.get(key) == same:
            return                        # raised already by this daemon, unchanged: no store write per tick
        try:
            self.alerts().raise_(key, AlertMessage(title=title, body=body, severity=severity,
                                                   fingerprint=fingerprint, details={"tick": self.ticks}))
            self._open_alerts.add(key)
            self._raised[key] = same
        except Exception as exc:  # noqa: BLE001 - the policy records its own failures; this is the last net
            self.log.warning("ALERT_NOT_SENT", module="trading.daemon", key=key, exc=exc)

    def _clear(self, key: str) -> None:
        if self.alerts is None or key not in self._open_alerts:
            return
        self._open_alerts.discard(key)
        self._raised.pop(key, None)
        try:
            self.alerts().resolve(key)
        except Exception as exc:  # noqa: BLE001 - as in _alert
            self.log.warning("ALERT_NOT_SENT", module="trading.daemon", key=key, exc=exc)

    def _alert_safe_mode(self) -> None:
        state = self.agent.safe_mode
        if state.active:
            self._alert("daemon.safe_mode", "error", "Stage 2 in safe mode",
                        f"exposure x{state.exposure_scale:g}: {state.state.reason}",
                        fingerprint=str(state.state.reason).split(":")[0])
        else:
            self._clear("daemon.safe_mode")

    def _may_trade(self) -> bool:
        """The heartbeat is alive and every sink a cycle writes takes a
        write; a change either way is said once.  Once lost, the heartbeat
        counts as back only after a beat that came after the loss."""
        if self.heartbeat_lost:
            if self._last_beat <= self._lost_at or not self.heartbeat_alive():
                self._restart_dead_heartbeat()
                return False
            self.heartbeat_lost = False
            self.log.warning("HEARTBEAT_BACK", module="trading.daemon", tick=self.ticks,
                             message="the heartbeat is back: trading resumes")
        elif not self.heartbeat_alive():
            self.heartbeat_lost, self._lost_at = True, self.monotonic()
            self.log.error("HEARTBEAT_LOST", module="trading.daemon", tick=self.ticks,
                           message="the heartbeat stopped: trading stopped until it beats again")
            self._alert("daemon.heartbeat", "critical", "Stage 2 heartbeat lost",
                        "the heartbeat stopped: no order is sent until it beats again")
            self._restart_dead_heartbeat()
            return False
        self._clear("daemon.heartbeat")        # a no-op unless it was raised (here, or by a previous run)
        try:
            problems = check_sinks(self.agent.db, self.paths, self.log.files if hasattr(self.log, "files") else [],
                                   tickets=self.write_tickets)
        except Exception as exc:  # noqa: BLE001 - a probe that cannot even run is a sink that cannot be trusted
            problems = [SinkProblem("runtime", str(self.paths.root), f"{type(exc).__name__}: {exc}")]
        if [str(p) for p in problems] != [str(p) for p in self.sink_problems]:
            if problems:
                self.log.error("SINK_UNAVAILABLE", module="trading.sinks", tick=self.ticks,
                               message="no order is sent that cannot be recorded: "
                                       + "; ".join(str(p) for p in problems),
                               sinks=[str(p) for p in problems])
                if not any(p.sink == "database" for p in problems):
                    try:
                        self.agent.db.governance.record_event("STAGE2_SINK_UNAVAILABLE", reason="SINK_UNAVAILABLE",
                                                              detail={"sinks": [str(p) for p in problems]})
                    except StoreError:
                        pass              # the store refused too: the console still says it
                self._alert("daemon.sinks", "critical", "Stage 2 cannot record orders: trading stopped",
                            "; ".join(str(p) for p in problems))
            else:
                self.log.warning("SINKS_BACK", module="trading.sinks", tick=self.ticks,
                                 message="every sink takes writes again: trading resumes")
        if not problems:
            self._clear("daemon.sinks")
        self.sink_problems = problems
        return not problems

    def _adopt_refresh(self) -> None:
        done = self.worker.take()
        if done is None:
            return
        snapshot, error = done
        if error is not None:
            self._loop_error(error, key="daemon.refresh_failed")
            return
        self._clear("daemon.refresh_failed")
        self.agent.snapshot = snapshot
        self.log.info("DATA_REFRESH_DONE", module="trading.daemon", tick=self.ticks,
                      as_of=snapshot.as_of, data_hash=snapshot.data_hash[:16])

    def _abandon_refresh(self) -> None:
        """A refresh still running at stop is left behind (its thread dies
        with the process); its ingest run is marked ABORTED."""
        # A refresh thread still running, or fetch threads an ingest left on
        # a vendor (the pool's threads are not daemon threads): the process
        # must not wait for them at exit.
        stuck = [t for t in threading.enumerate()
                 if t.is_alive() and not t.daemon and t not in (threading.main_thread(), threading.current_thread())]
        if stuck and not self.worker.running:
            self.abandoned_refresh = True
            self.log.warning("FETCH_THREADS_ABANDONED", module="trading.daemon", threads=len(stuck),
                             message=f"{len(stuck)} fetch thread(s) still waiting on a vendor are abandoned")
        if not self.worker.running:
            return
        self.abandoned_refresh = True
        runs = list(self.worker.run_ids) if self.worker.with_ingest else []
        self.log.warning("DATA_REFRESH_ABANDONED", module="trading.daemon", tick=self.ticks, ingest_runs=runs,
                         message="stopped during a data refresh: the refresh is abandoned")
        for run_id in runs[-1:]:
            try:
                self.agent.db.runs.close_unfinished(run_id, status="ABORTED",
                                                    error="interrupted: the daemon stopped during its data refresh")
            except StoreError as exc:   # the next run closes it: its owner (this process) will be gone
                self.log.warning("RUN_NOT_CLOSED", module="trading.daemon", ingest_run_id=run_id, exc=exc)

    def _halt(self) -> None:
        if self.halted:
            return
        self.halted = True
        message = kill_switch_message(self.paths.kill_switch)
        append_halt_log(self.paths.governance_halt_log, f"KILL_SWITCH tick={self.ticks} {message}",
                        reason="kill_switch")
        self.log.warning("KILL_SWITCH_HALT", module="trading.daemon", tick=self.ticks, message=message)
        self._alert("daemon.kill_switch", "warning", "Stage 2 halted by the kill switch", message)

    def _resume(self) -> None:
        self.halted = False
        message = f"KILL_SWITCH removed: trading resumes (tick {self.ticks})"
        append_resume_log(self.paths.governance_halt_log, f"KILL_SWITCH_CLEARED tick={self.ticks} {message}")
        self.log.warning("KILL_SWITCH_CLEARED", module="trading.daemon", tick=self.ticks, message=message)
        self._clear("daemon.kill_switch")

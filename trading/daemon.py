"""The 24/7 loop: ticks, kill switch, heartbeat, data refresh, safe mode.

Every tick:

1. the kill switch is checked - present: no cycle runs, and the halt is
   appended to ``runtime/governance_halt.log`` the first tick it is seen
   (the agent also checks it before every order, so no order follows the
   file's appearance); removed: trading resumes and that is logged;
2. when the data-refresh interval has passed, ``refresh()`` runs (the
   incremental ingest + re-governance) and the agent's snapshot is rebuilt;
3. one decision cycle runs; an exception is a loop error (stack trace to
   ``errors.jsonl``), and more than five in a row put the agent in safe mode.

A heartbeat thread logs ``HEARTBEAT | uptime=... | symbols=... | cycles=...
| model_errors=... | arima_fb=...`` every ``heartbeat_seconds``, to the
console and ``live.jsonl``, independent of how long a cycle takes.
``stop()`` (SIGTERM in the CLI) ends the loop after the current tick.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from core.runtime import RuntimePaths
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import IngestOptions, run_ingestion
from trading.agent import KillSwitchEngaged, TradingAgent
from trading.gate import append_halt_log, kill_switch_engaged, kill_switch_message
from trading.guard import GuardViolation, HistoryGuard
from trading.ticket import build_ticket, write_ticket


def heartbeat_line(uptime_s: float, symbols: int, cycles: int, model_errors: int, arima_fb: int) -> str:
    """The runbook's heartbeat format."""
    return (f"HEARTBEAT | uptime={int(uptime_s)}s | symbols={symbols} | cycles={cycles} | "
            f"model_errors={model_errors} | arima_fb={arima_fb}")


def ingestion_refresh(db, universe, settings, paths: RuntimePaths, log: Any, guard: HistoryGuard, *,
                      ingest: Callable[[], Any] | None = None) -> Callable[[], None]:
    """The daemon's refresh hook: an incremental Stage 1 run on the same
    store (``ingest`` overrides it) through a router built with the history
    guard, so every provider it builds - in a worker process too - refuses
    a long request.

    Ingestion turns any provider exception into a per-symbol failure, so a
    GUARD VIOLATION would only show in the audit; the guard records each
    one and this hook logs them and raises, making it a loop error.  The
    run re-governs the symbols it fetched, as every ingest run does."""
    def refresh() -> None:
        run = ingest
        if run is None:
            def run():
                router = DataRouter(settings, guard=guard)
                try:
                    return run_ingestion(db, universe, settings, paths, IngestOptions(mode="incremental"),
                                         router=router)
                finally:
                    router.close()
        guard.take_violations()
        report = run()
        violations = guard.take_violations()
        for message in violations:
            log.error("GUARD_VIOLATION", module="trading.guard", message=message)
        if violations:
            raise GuardViolation(f"{violations[0]} ({len(violations)} violation(s) during the refresh)")
        log.info("DATA_REFRESH_INGEST", module="trading.daemon", ingest_run_id=getattr(report, "run_id", None),
                 status=getattr(report, "status", None), rows_written=getattr(report, "rows_written", None))
    return refresh


class TradingDaemon:
    def __init__(self, agent: TradingAgent, paths: RuntimePaths, log: Any, *, tick_interval: float = 1.0,
                 data_refresh_minutes: float = 30.0, heartbeat_seconds: float = 5.0,
                 refresh: Callable[[], None] | None = None, write_tickets: bool = True,
                 monotonic: Callable[[], float] = time.monotonic):
        self.agent = agent
        self.paths = paths
        self.log = log
        self.tick_interval = float(tick_interval)
        self.refresh_seconds = float(data_refresh_minutes) * 60.0
        self.heartbeat_seconds = float(heartbeat_seconds)
        self.refresh = refresh
        self.write_tickets = write_tickets
        self.monotonic = monotonic
        self.ticks = 0
        self.halted = False
        self._stop = threading.Event()
        self._started = monotonic()
        self._last_refresh = self._started

    # ------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def heartbeat(self) -> str:
        c = self.agent.counters
        line = heartbeat_line(self.monotonic() - self._started, len(self.agent.symbols), c.cycles,
                              c.model_errors, c.arima_fb)
        self.log.info("HEARTBEAT", module="trading.daemon", message=line, uptime_s=int(self.monotonic() - self._started),
                      symbols=len(self.agent.symbols), cycles=c.cycles, model_errors=c.model_errors,
                      arima_fb=c.arima_fb, safe_mode=self.agent.safe_mode.active, halted=self.halted)
        return line

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.heartbeat()
            except Exception as exc:  # a full disk must not kill the heartbeat thread silently
                self.log.error("HEARTBEAT_FAILED", module="trading.daemon", exc=exc)

    # ------------------------------------------------------------ loop
    def run(self, max_ticks: int | None = None) -> None:
        """Loop until stopped (or ``max_ticks``); ``ticks`` says how far it went."""
        self.log.info("DAEMON_START", module="trading.daemon", tick_interval=self.tick_interval,
                      data_refresh_s=self.refresh_seconds, symbols=len(self.agent.symbols), mode=self.agent.config.mode)
        self.heartbeat()
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        try:
            while not self._stop.is_set():
                started = self.monotonic()
                self.tick()
                if max_ticks is not None and self.ticks >= max_ticks:
                    break
                self._stop.wait(max(0.0, self.tick_interval - (self.monotonic() - started)))
        finally:
            self._stop.set()
            beat.join(timeout=5)
            self.log.info("DAEMON_STOP", module="trading.daemon", ticks=self.ticks,
                          cycles=self.agent.counters.cycles)

    def tick(self) -> None:
        self.ticks += 1
        if kill_switch_engaged(self.paths.kill_switch):
            self._halt()
            return
        if self.halted:
            self.halted = False
            self.log.warning("KILL_SWITCH_CLEARED", module="trading.daemon", tick=self.ticks,
                             message=f"KILL_SWITCH removed: trading resumes (tick {self.ticks})")
        try:
            if self.refresh_seconds >= 0 and self.monotonic() - self._last_refresh >= self.refresh_seconds:
                self._last_refresh = self.monotonic()
                self._refresh()
            report = self.agent.run_cycle()
            if self.write_tickets:
                ticket = build_ticket(report.decision, config_public=self.agent.config.public())
                _, json_path, changed = write_ticket(self.paths.tickets_dir, ticket)
                if changed:
                    self.log.info("TICKET_WRITTEN", module="trading.ticket", path=str(json_path),
                                  session=ticket["session"])
        except KillSwitchEngaged:
            self._halt()
        except Exception as exc:  # the loop survives any cycle failure; safe mode counts them
            self.agent.record_loop_error(exc)
            self.log.error("LOOP_ERROR", module="trading.daemon", tick=self.ticks, exc=exc,
                           consecutive_errors=self.agent.safe_mode.state.consecutive_errors,
                           safe_mode=self.agent.safe_mode.active)

    def _refresh(self) -> None:
        if self.refresh is not None:
            self.log.info("DATA_REFRESH_START", module="trading.daemon", tick=self.ticks)
            self.refresh()
        # A model retrained since (scripts/train_ml_alpha.py) is picked up with the data.
        self.agent.predictor.reload()
        self.agent.refresh_snapshot()
        self.log.info("DATA_REFRESH_DONE", module="trading.daemon", tick=self.ticks,
                      as_of=self.agent.snapshot.as_of, data_hash=self.agent.snapshot.data_hash[:16])

    def _halt(self) -> None:
        if self.halted:
            return
        self.halted = True
        message = kill_switch_message(self.paths.kill_switch)
        append_halt_log(self.paths.governance_halt_log, f"KILL_SWITCH tick={self.ticks} {message}",
                        reason="kill_switch")
        self.log.warning("KILL_SWITCH_HALT", module="trading.daemon", tick=self.ticks, message=message)

"""Build a TradingAgent / TradingDaemon over a seeded desk the way stage2
does, with an injectable forecaster, broker and log; and run a daemon on a
thread of its own (SQLite connections belong to the thread that made them)."""
from __future__ import annotations

import threading
import time
from typing import Callable

from core.universe import load_universe
from database.manager import Database
from core.settings import load_settings
from core.logs import OperatorLog
from trading.agent import TradingAgent
from trading.brokers import PaperBroker
from trading.config import load_trading_config
from trading.daemon import TradingDaemon


def build_agent(desk, db: Database, *, forecaster=None, broker=None, mode: str = "paper", env=None, log=None,
                broker_factory: Callable | None = None, **overrides) -> TradingAgent:
    settings = load_settings()
    config = load_trading_config(settings, mode, env or {}, **overrides)
    if broker is None:
        broker = broker_factory(db, config) if broker_factory else PaperBroker(db, config)
    log = log or OperatorLog(desk.paths.logs, run_id="test-run")
    entries = load_universe(desk.universe).enabled
    return TradingAgent(db, config, broker, entries, desk.paths, log=log, forecaster=forecaster)


class DaemonThread:
    """A TradingDaemon running on a background thread."""

    def __init__(self, desk, *, forecaster, tick_interval: float = 0.02, data_refresh_minutes: float = 0.0,
                 heartbeat_seconds: float = 5.0, refresh=None, broker_factory=None, log=None):
        self.desk = desk
        self.kw = dict(tick_interval=tick_interval, data_refresh_minutes=data_refresh_minutes,
                       heartbeat_seconds=heartbeat_seconds, refresh=refresh)
        self.forecaster = forecaster
        self.broker_factory = broker_factory
        self.log = log
        self.daemon: TradingDaemon | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="daemon-under-test", daemon=True)

    def _main(self) -> None:
        try:
            with Database(self.desk.paths.db) as db:
                agent = build_agent(self.desk, db, forecaster=self.forecaster, broker_factory=self.broker_factory,
                                    log=self.log)
                self.daemon = TradingDaemon(agent, self.desk.paths, agent.log, **self.kw)
                self._ready.set()
                self.daemon.run()
        except BaseException as exc:  # surfaced to the test by stop()
            self.error = exc
            self._ready.set()

    def __enter__(self) -> "DaemonThread":
        self._thread.start()
        assert self._ready.wait(10), "daemon did not start"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self._thread.join(10)
        assert not self._thread.is_alive(), "daemon did not stop"
        if self.error:
            raise self.error

    def wait_ticks(self, n: int, timeout: float = 10.0) -> int:
        """Wait until the daemon has run ``n`` more ticks; returns the tick count."""
        target = self.daemon.ticks + n
        deadline = time.monotonic() + timeout
        while self.daemon.ticks < target:
            assert time.monotonic() < deadline, f"daemon stuck at tick {self.daemon.ticks}"
            time.sleep(0.005)
        return self.daemon.ticks


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def daemon_until_a_cycle_then_sigterm(desk, records, *args: str, cwd=None) -> tuple[int, str, str]:
    """Run ``trading_daemon.py --as-of <seeded> --tick-interval 0.05
    --heartbeat 0.2 --data-refresh 60 [args]`` as a real process until its
    heartbeat reports a completed cycle, then SIGTERM it; (exit code,
    stdout, stderr).  ``records(desk)`` reads the desk's live.jsonl."""
    import os
    import signal
    import subprocess
    import sys

    from core.settings import REPO_ROOT
    from tests.trading.market_frames import SEEDED_AS_OF

    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "trading_daemon.py"), *args, "--as-of", SEEDED_AS_OF,
                             "--tick-interval", "0.05", "--heartbeat", "0.2", "--data-refresh", "60"],
                            cwd=cwd or desk.root.parent, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(r["event"] == "HEARTBEAT" and r["cycles"] >= 1 for r in records(desk)),
                 timeout=60, what="a completed cycle")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err

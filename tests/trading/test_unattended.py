"""Issue 9: Stage 2 left running unattended - each numbered failure the
issue reproduced, on real files, real signals and real subprocesses.

2  stale data while the daemon runs: safe mode, the fix named
3  an unwritable log: nothing sent; a write that fails mid-cycle loses a
   line, never an order's record; a retry never doubles an order
4  the kill switch and SIGTERM within a tick while a refresh blocks
6  the heartbeat outlives a failing log sink; trading stops without it;
   timing flags refuse NaN, infinities and absurd values
10 the halt log records resumes
11 the console: timestamps, Rich on a terminal, JSON lines under --json
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import main as main_cli
import trading_daemon as daemon_cli
from core.settings import REPO_ROOT, load_settings
from core.universe import load_universe
from database.manager import Database
from tests import store_reads
from tests.fakes.vendor_server import VendorServer
from tests.trading.agent_builder import DaemonThread, build_agent, daemon_until_a_cycle_then_sigterm, wait_for
from tests.trading.market_frames import SEEDED_AS_OF, random_walk_bars
from tests.trading.scripted_models import FlippingForecaster, ScriptedForecaster
from trading.brokers import PaperBroker
from trading.gate import open_halt, staleness_check

AS_OF = dt.date.fromisoformat(SEEDED_AS_OF)
UNSHARE = shutil.which("unshare")


def _orders(desk):
    with Database(desk.paths.db) as db:
        return store_reads.orders(db)


def _records(desk, name="live.jsonl"):
    path = desk.paths.logs / name
    if not path.exists() or path.is_dir():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(args, desk, timeout=120, **kw):
    return subprocess.run([sys.executable, *args], cwd=desk.root.parent, env=dict(os.environ), capture_output=True,
                          text=True, timeout=timeout, **kw)


def _in_private_mount(script: str, desk, timeout=120):
    """``script`` (sh) in a private mount namespace: what it mounts is seen
    by it and its children only, and vanishes with them."""
    return subprocess.run([UNSHARE, "-m", "sh", "-ec", script], cwd=desk.root.parent, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


needs_unshare = pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0,
                                   reason="needs root and unshare for a private mount namespace")


# ----------------------------------------------------------------- 2
def test_2_a_store_that_goes_stale_while_the_daemon_runs_enters_safe_mode_naming_the_fix(seeded):
    """The agent measures staleness against the calendar (rule 4), not its
    own newest bar: the same store judged three weeks later is stale for
    every symbol, which blocks new positions and enters safe mode with the
    command that fixes it."""
    settings = load_settings()
    entries = load_universe(seeded.universe).enabled
    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002))
        agent.staleness = staleness_check(settings, entries, AS_OF)
        fresh = agent.run_cycle()
        assert fresh.decision.data_gaps == {} and fresh.results, "fresh at its own date: it trades"
        agent.staleness = staleness_check(settings, entries, AS_OF + dt.timedelta(days=21))
        stale = agent.run_cycle()
    assert set(stale.decision.data_gaps) == set(seeded.symbols)
    assert all("run python ingest_history.py --mode=incremental" in why for why in stale.decision.data_gaps.values())
    assert "sessions behind" in " ".join(stale.decision.data_gaps.values()) or \
        "session(s) behind" in " ".join(stale.decision.data_gaps.values())
    assert agent.safe_mode.active and "ingest_history.py --mode=incremental" in agent.safe_mode.state.reason
    assert all(r.side == "SELL" or r.status != "FILLED" for r in stale.results) or stale.results == []


# ----------------------------------------------------------------- 3
@needs_unshare
def test_3_a_read_only_logs_directory_sends_no_order_and_says_which_sink(seeded):
    logs = seeded.paths.logs
    logs.mkdir(parents=True, exist_ok=True)
    proc = _in_private_mount(
        f'mount --bind "{logs}" "{logs}" && mount -o remount,ro,bind "{logs}" && '
        f'exec "{sys.executable}" "{REPO_ROOT / "main.py"}" --run-once --as-of {SEEDED_AS_OF}', seeded)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "nothing sent" in proc.stderr and str(logs / "live.jsonl") in proc.stderr
    assert "Read-only file system" in proc.stderr
    assert _orders(seeded) == []


@needs_unshare
def test_3_a_full_log_disk_sends_no_order(seeded):
    """A tiny tmpfs filled to the last block: the daemon refuses at start
    (exit 1) naming the disk, no traceback, no order."""
    logs = seeded.paths.logs
    logs.mkdir(parents=True, exist_ok=True)
    proc = _in_private_mount(
        f'mount -t tmpfs -o size=256k tmpfs "{logs}" && '
        f'(dd if=/dev/zero of="{logs}/filler" bs=4k 2>/dev/null || true) && '
        f'exec "{sys.executable}" "{REPO_ROOT / "trading_daemon.py"}" --as-of {SEEDED_AS_OF} --tick-interval 0.05',
        seeded)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "disk full" in proc.stderr
    assert _orders(seeded) == []


def _put_a_directory_in_place_of(path):
    """Replace a log file by a directory while the daemon writes to it (a
    write may recreate the file between the two steps: try again)."""
    while not path.is_dir():
        try:
            path.unlink(missing_ok=True)
            path.mkdir()
        except FileExistsError:
            continue


class LogFileBreaker(ScriptedForecaster):
    """A forecaster that, while the cycle fits its models (after the sinks
    were checked), puts a directory where ``live.jsonl`` is: every later
    write to that file fails, as on a disk that just filled."""

    def __init__(self, live_jsonl, **kw):
        super().__init__({}, default=0.002, **kw)
        self.live_jsonl = live_jsonl

    def forecast(self, symbol, bars):
        if self.live_jsonl.is_file():
            self.live_jsonl.unlink()
            self.live_jsonl.mkdir()
        return super().forecast(symbol, bars)


def test_3_a_log_write_failing_mid_cycle_loses_a_line_never_an_order(seeded):
    """On today's code the first ORDER line's OSError aborted the cycle
    after the order was filled: unlogged, and each retry placed one more.
    Now every order is in the store, the cycle finishes, the lost lines are
    counted, the other files have every order, and a retry sends nothing twice."""
    live = seeded.paths.logs / "live.jsonl"
    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db, forecaster=LogFileBreaker(live))
        agent.log.info("CYCLE_START")       # the file exists and takes writes when the cycle starts
        report = agent.run_cycle()
        assert [r.status for r in report.results] == ["FILLED"] * 3
        failures = agent.log.sink_failures()
        assert list(failures) == [str(live)] and failures[str(live)][0] >= 3
        live.rmdir()                        # the disk is back
        agent.log.info("CYCLE_END")
    assert len(_orders(seeded)) == 3
    human = (seeded.paths.logs / "live_trading.log").read_text()
    assert human.count("ORDER BUY") == 3, "the other log files still have every order"
    missed = [r for r in _records(seeded) if r["event"] == "LOG_RECORDS_MISSED"]
    assert len(missed) == 1 and missed[0]["missed"] >= 3 and "IsADirectoryError" in missed[0]["error"]
    with Database(seeded.paths.db) as db:         # the operator retries the same cycle
        retry = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002)).run_cycle()
    assert retry.results == [] and len(_orders(seeded)) == 3, "the retry sent nothing twice"


def test_3_no_retry_doubles_an_order_two_deciders_one_session(seeded):
    """Two agents (a retried cycle, or a second daemon on the same store)
    decide the same session against the same book: the orders carry the
    same idempotency keys, and the store records - and so sends - each once.
    On today's code the ids were random and the book was bought twice."""
    with Database(seeded.paths.db) as db1, Database(seeded.paths.db) as db2:
        a = build_agent(seeded, db1, forecaster=ScriptedForecaster({}, default=0.002))
        b = build_agent(seeded, db2, forecaster=ScriptedForecaster({}, default=0.002))
        first, second = a.decide(), b.decide()
        assert [o.client_order_id for o in first.orders] == [o.client_order_id for o in second.orders]
        sent_a = a.execute(first)
        sent_b = b.execute(second)
    assert [r.status for r in sent_a] == ["FILLED"] * 3
    assert [r.status for r in sent_b] == ["DUPLICATE"] * 3
    orders = _orders(seeded)
    assert len(orders) == 3
    with Database(seeded.paths.db) as db:
        store_key = db.broker.trading_state("order_key_store")
    assert len(store_key) == 8
    assert [o["client_order_id"] for o in orders] == [f"gt-{store_key}-{SEEDED_AS_OF}-{s}-1" for s in seeded.symbols]


# ----------------------------------------------------------------- 4
def test_4_kill_switch_and_stop_within_two_ticks_while_a_refresh_blocks_for_60s(seeded):
    release = threading.Event()

    def blocking_refresh(db, started):
        release.wait(60)                  # a vendor that does not answer for a minute

    tick = 0.05
    with DaemonThread(seeded, forecaster=FlippingForecaster(), tick_interval=tick, data_refresh_minutes=0.0,
                      refresh=blocking_refresh, heartbeat_seconds=0.1) as run:
        wait_for(lambda: any(r["event"] == "DATA_REFRESH_START" for r in _records(seeded)), what="refresh start")
        wait_for(lambda: len(_orders(seeded)) > 0, what="orders during the refresh")
        tick_at_touch = run.daemon.ticks
        seeded.paths.kill_switch.touch()
        touched = time.monotonic()
        halt = wait_for(lambda: [r for r in _records(seeded) if r["event"] == "KILL_SWITCH_HALT"], timeout=5,
                        what="halt")
        assert halt[0]["tick"] <= tick_at_touch + 2 and time.monotonic() - touched < 10 * tick + 1
        orders_at_halt = len(_orders(seeded))
        beats_before = len([r for r in _records(seeded) if r["event"] == "HEARTBEAT"])
        run.wait_ticks(5)
        assert len(_orders(seeded)) == orders_at_halt, "an order followed the kill switch"
        assert len([r for r in _records(seeded) if r["event"] == "HEARTBEAT"]) > beats_before, \
            "heartbeats continue during the refresh"
        stop_tick = run.daemon.ticks
        stopped = time.monotonic()
        run.daemon.stop()
        run._thread.join(5)
        assert not run._thread.is_alive() and time.monotonic() - stopped < 2 * tick + 1
        assert run.daemon.ticks <= stop_tick + 2
    release.set()
    events = [r["event"] for r in _records(seeded)]
    assert "DATA_REFRESH_ABANDONED" in events and events[-1] == "DAEMON_STOP"


def _stalling_vendors(monkeypatch, server):
    for var in ("YAHOO_BASE_URL", "POLYGON_BASE_URL", "ALPACA_DATA_URL"):
        monkeypatch.setenv(var, server.url)


def test_4_sigterm_ends_the_daemon_within_two_ticks_while_its_refresh_waits_on_a_vendor(seeded, monkeypatch):
    """A real daemon process whose refresh is stuck in the real yfinance
    client on a vendor that stalls: SIGTERM ends it within two ticks, exit
    0, DAEMON_STOP logged, no traceback."""
    with VendorServer(stall_seconds=60) as server:
        for symbol in seeded.symbols:
            server.register(symbol, random_walk_bars(320, seed=1))
            for vendor in ("yahoo", "polygon", "alpaca"):
                server.fault(vendor, symbol, "stall", times=None, seconds=60)
        _stalling_vendors(monkeypatch, server)
        tick = 0.2
        # One session after the store's last bar: fresh enough to start, and the
        # refresh asks the vendors for that one session.
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "trading_daemon.py"), "--as-of", "2024-02-26",
                                 "--tick-interval", str(tick), "--data-refresh", "0", "--heartbeat", "0.2"],
                                cwd=seeded.root.parent, env=dict(os.environ), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: any(r["event"] == "DATA_REFRESH_START" for r in _records(seeded)), timeout=60,
                     what="the refresh to start")
            wait_for(lambda: server.log, timeout=30, what="the refresh to reach the vendor")
            time.sleep(2 * tick)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            elapsed = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert elapsed < 2 * tick + 1.5, f"SIGTERM took {elapsed:.2f}s"
    assert "Traceback" not in err + out
    stop = [r for r in _records(seeded) if r["event"] == "DAEMON_STOP"]
    assert stop and stop[-1]["reason"] == "SIGTERM"
    assert any(r["event"] == "DATA_REFRESH_ABANDONED" for r in _records(seeded))


def test_4_run_once_shows_progress_over_the_fits_and_pins_blas(seeded):
    """The cycle's model fits report progress (the CLI draws it on a
    terminal) and run with BLAS held to one thread."""
    from threadpoolctl import threadpool_info

    seen = []

    class Recording(ScriptedForecaster):
        def forecast(self, symbol, bars):
            seen.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
            return super().forecast(symbol, bars)

    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db, forecaster=Recording({}, default=0.002))
        steps = []
        agent.run_cycle(progress=lambda label, done, total: steps.append((label, done, total)))
    assert steps == [(s, i, 3) for i, s in enumerate(seeded.symbols, start=1)]
    assert seen and all(all(n == 1 for n in threads) for threads in seen)


# ----------------------------------------------------------------- 6
def test_6_the_heartbeat_outlives_a_failing_log_and_trading_waits_for_the_sink(seeded):
    import io

    from rich.console import Console

    from cli.console import LogConsole
    from core.logs import OperatorLog

    out = io.StringIO()
    log = OperatorLog(seeded.paths.logs, run_id="hb-sink")
    log.attach(LogConsole(Console(file=out, width=300)))
    live = seeded.paths.logs / "live.jsonl"
    with DaemonThread(seeded, forecaster=FlippingForecaster(), heartbeat_seconds=0.05, log=log) as run:
        wait_for(lambda: len(_orders(seeded)) > 0, what="trading")
        _put_a_directory_in_place_of(live)    # every write to live.jsonl fails from here on
        wait_for(lambda: "SINK_UNAVAILABLE" in out.getvalue() or "no order is sent" in out.getvalue(),
                 what="the sink problem on the console")
        frozen = len(_orders(seeded))
        wait_for(lambda: "log_write_failures=" in out.getvalue(), what="a heartbeat counting the failures")
        run.wait_ticks(5)
        assert len(_orders(seeded)) == frozen, "an order was sent while its log could not be written"
        live.rmdir()
        wait_for(lambda: len(_orders(seeded)) > frozen, what="trading to resume")
    beats = [line for line in out.getvalue().splitlines() if "HEARTBEAT |" in line]
    assert any("log_write_failures=" in b for b in beats)
    missed = [r for r in _records(seeded) if r["event"] == "LOG_RECORDS_MISSED"]
    assert missed and missed[0]["missed"] > 0


class DyingConsole(logging.Handler):
    """An operator console that kills whichever thread writes a heartbeat
    to it while ``dying`` is set (a BaseException, as a broken C extension
    or a thread-level exit would)."""

    def __init__(self):
        super().__init__()
        self.dying = threading.Event()

    def emit(self, record):
        if self.dying.is_set() and getattr(record, "structured", {}).get("event") == "HEARTBEAT" \
                and threading.current_thread().name == "heartbeat":
            raise SystemExit("heartbeat thread killed")


# The heartbeat thread's death is the fault this test injects.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_6_if_the_heartbeat_stops_trading_stops(seeded):
    from core.logs import OperatorLog

    log = OperatorLog(seeded.paths.logs, run_id="hb-dies")
    console = DyingConsole()
    log.attach(console)
    with DaemonThread(seeded, forecaster=FlippingForecaster(), heartbeat_seconds=0.05, log=log) as run:
        wait_for(lambda: len(_orders(seeded)) > 0, what="trading")
        console.dying.set()
        wait_for(lambda: any(r["event"] == "HEARTBEAT_LOST" for r in _records(seeded)), what="HEARTBEAT_LOST")
        frozen = len(_orders(seeded))
        run.wait_ticks(10)
        assert len(_orders(seeded)) == frozen, "traded without a heartbeat"
        console.dying.clear()
        wait_for(lambda: any(r["event"] == "HEARTBEAT_BACK" for r in _records(seeded)), what="HEARTBEAT_BACK")
        wait_for(lambda: len(_orders(seeded)) > frozen, what="trading to resume")


BAD_NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "+inf", "infinity", "1e309", "-1", "0", "1e12", "abc", "", "1,5"]),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (0.1 <= x <= 3600)).map(repr))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--tick-interval", "--heartbeat"]), value=BAD_NUMBERS)
def test_6_timing_flags_refuse_nan_infinities_and_absurd_values(desk, flag, value):
    if flag == "--tick-interval":
        try:
            if 0.01 <= float(value) <= 3600:
                return                    # a valid tick interval (0.01 to 0.1)
        except ValueError:
            pass
    result = CliRunner().invoke(daemon_cli.main, [flag, value, "--as-of", SEEDED_AS_OF])
    assert result.exit_code == 64, (flag, value, result.output)
    assert flag in result.output and "Traceback" not in result.output
    assert not desk.paths.db.exists() and not desk.paths.logs.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "100000"])
def test_6_data_refresh_refuses_nan_infinities_and_absurd_values(desk, value):
    result = CliRunner().invoke(daemon_cli.main, ["--data-refresh", value])
    assert result.exit_code == 64 and "--data-refresh" in result.output


# ----------------------------------------------------------------- 10
def test_10_the_halt_log_records_resumes(seeded):
    halt_log = seeded.paths.governance_halt_log
    seeded.paths.kill_switch.touch()
    refused = _run([str(REPO_ROOT / "main.py"), "--run-once", "--as-of", SEEDED_AS_OF], seeded)
    assert refused.returncode == 3 and open_halt(halt_log) is not None
    seeded.paths.kill_switch.unlink()
    ok = _run([str(REPO_ROOT / "main.py"), "--run-once", "--as-of", SEEDED_AS_OF], seeded)
    assert ok.returncode == 0, ok.stderr
    assert open_halt(halt_log) is None, "the runbook's 'Governance log shows no halts' is true again"
    text = halt_log.read_text()
    assert text.rstrip().splitlines()[-1].startswith("Stage 2 started") and " resume\n" in text
    # The daemon records its own halt and resume too.
    with DaemonThread(seeded, forecaster=FlippingForecaster()) as run:
        run.wait_ticks(2)
        seeded.paths.kill_switch.touch()
        wait_for(lambda: open_halt(halt_log) is not None, what="the daemon's halt")
        seeded.paths.kill_switch.unlink()
        wait_for(lambda: open_halt(halt_log) is None, what="the daemon's resume")
    assert "KILL_SWITCH_CLEARED tick=" in halt_log.read_text()


# ----------------------------------------------------------------- 11
def _read_pty(fd, until, timeout=60.0):
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and until not in out:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out.decode("utf-8", "replace")


def test_11_the_daemon_console_is_timestamped_rich_on_a_terminal(seeded):
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "trading_daemon.py"), "--as-of", SEEDED_AS_OF,
                             "--tick-interval", "0.05", "--heartbeat", "0.2", "--data-refresh", "60"],
                            cwd=seeded.root.parent, env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"},
                            stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    try:
        text = _read_pty(leader, b"cycles=1")
        proc.send_signal(signal.SIGTERM)
        text += _read_pty(leader, b"daemon stopped after", timeout=20)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert proc.returncode == 0
    assert "\x1b[" in text, "Rich styles on a terminal"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    beats = [line for line in plain.splitlines() if "HEARTBEAT |" in line]
    assert beats and all(re.match(r"^\d{2}:\d{2}:\d{2} INFO\s+HEARTBEAT \|", b.strip()) for b in beats), beats[:3]
    assert "Traceback" not in plain


def test_11_the_daemon_under_json_prints_json_lines(seeded):
    code, out, err = daemon_until_a_cycle_then_sigterm(seeded, _records, "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]   # every stdout line is one JSON document
    events = [r.get("event") for r in lines]
    assert "DAEMON_START" in events and "HEARTBEAT" in events and "ORDER" in events
    assert all({"ts", "level", "module", "run_id", "event"} <= set(r) for r in lines[:-1])
    assert lines[-1] == {"status": "stopped", "ticks": lines[-1]["ticks"]}


# ----------------------------------------------------------------- 8 (Stage 2's share)
def test_8_the_daemon_alerts_kill_switch_and_loop_errors_once_each_and_their_recovery(seeded, monkeypatch):
    """Through the one policy: a kill switch is a warning and its removal a
    recovery notice; six loop errors in a row are one error alert (dedupe)
    plus the safe mode alert, and both recover when the cycles are clean."""
    from core.alert_policy import AlertPolicy
    from core.settings import load_settings as settings_now
    from tests.trading.test_daemon import FlakyBroker
    from trading.daemon import TradingDaemon

    monkeypatch.setenv("ALERT_DRY_RUN", "1")
    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002),
                            broker_factory=lambda d, c: FlakyBroker(d, c, failures=6),
                            safe_mode_error_threshold=5, safe_mode_recovery_cycles=3)
        agent.refresh_snapshot()
        daemon = TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60,
                               alerts=lambda: AlertPolicy(source="trading_daemon", run_id="t", settings=settings_now(),
                                                          store=db.alerts, paths=seeded.paths))
        for _ in range(12):
            daemon.tick()
        seeded.paths.kill_switch.touch()
        daemon.tick()
        seeded.paths.kill_switch.unlink()
        daemon.tick()
    artifacts = sorted(p for p in (seeded.paths.alerts_dir).rglob("*.json") if p.parent.name != "alerts")
    sent = [json.loads(p.read_text()) for p in artifacts]
    titles = [(a["severity"], a["title"]) for a in sent]
    assert titles.count(("error", "Stage 2 loop error")) == 1, titles
    assert ("error", "Stage 2 in safe mode") in titles
    assert ("info", "Recovered: Stage 2 loop error") in titles
    assert ("info", "Recovered: Stage 2 in safe mode") in titles
    assert ("warning", "Stage 2 halted by the kill switch") in titles
    assert ("info", "Recovered: Stage 2 halted by the kill switch") in titles


# ----------------------------------------------------------------- review regressions
def test_a_halt_log_that_cannot_be_written_never_undoes_the_halt(seeded):
    """The kill switch on a full or read-only runtime disk: the daemon halts
    (no order, no traceback) and says the halt record is missing."""
    halt_log = seeded.paths.governance_halt_log
    halt_log.parent.mkdir(parents=True, exist_ok=True)
    halt_log.mkdir()                                   # every write to it fails
    with Database(seeded.paths.db) as db:
        from trading.daemon import TradingDaemon
        agent = build_agent(seeded, db, forecaster=FlippingForecaster())
        agent.refresh_snapshot()
        daemon = TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60)
        seeded.paths.kill_switch.touch()
        daemon.tick()
        assert daemon.halted and _orders(seeded) == []
        seeded.paths.kill_switch.unlink()
        daemon.tick()                                  # the resume record fails too: trading resumes
        assert not daemon.halted


def test_a_runtime_directory_gone_is_a_sink_problem_not_a_crash(seeded, tmp_path):
    with Database(seeded.paths.db) as db:
        from trading.daemon import TradingDaemon
        agent = build_agent(seeded, db, forecaster=FlippingForecaster())
        agent.refresh_snapshot()
        daemon = TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60)
        moved = tmp_path / "moved-runtime"
        seeded.root.rename(moved)                       # the runtime disk is unmounted under the daemon
        try:
            daemon.tick()
            assert daemon.sink_problems and "database" in str(daemon.sink_problems[0])
        finally:
            moved.rename(seeded.root)
        daemon.tick()
        assert daemon.sink_problems == []


def test_an_alert_a_previous_daemon_left_open_is_resolved_once_its_condition_is_clear(seeded, monkeypatch):
    from core.alert_policy import AlertPolicy
    from core.alerts import AlertMessage
    from core.settings import load_settings as settings_now
    from trading.daemon import TradingDaemon

    monkeypatch.setenv("ALERT_DRY_RUN", "1")
    with Database(seeded.paths.db) as db:
        def policy():
            return AlertPolicy(source="trading_daemon", run_id="t", settings=settings_now(), store=db.alerts,
                               paths=seeded.paths)
        policy().raise_("daemon.sinks", AlertMessage("Stage 2 cannot record orders: trading stopped", "tickets",
                                                     severity="critical"))   # the previous run stopped here
        agent = build_agent(seeded, db, forecaster=FlippingForecaster())
        agent.refresh_snapshot()
        TradingDaemon(agent, seeded.paths, agent.log, tick_interval=0.001, data_refresh_minutes=60,
                      alerts=policy).tick()
    sent = [json.loads(p.read_text()) for p in seeded.paths.alerts_dir.glob("*/*.json")]
    assert any(a["title"] == "Recovered: Stage 2 cannot record orders: trading stopped" for a in sent)


def test_a_refresh_failure_is_never_overwritten_before_the_loop_counts_it(seeded):
    from trading.daemon import RefreshWorker

    def failing(db, started):
        raise RuntimeError("vendor answered garbage")

    with Database(seeded.paths.db) as db:
        agent = build_agent(seeded, db, forecaster=ScriptedForecaster({}, default=0.002))
        worker = RefreshWorker(agent, db.location, failing, agent.log)
        assert worker.start(ingest=True)
        assert worker.wait(30)
        assert worker.start(ingest=True) is False, "the failure has not been taken yet"
        snapshot, error = worker.take()
        assert snapshot is None and "vendor answered garbage" in str(error)
        assert worker.start(ingest=True)
        worker.wait(30)

"""Stage 2's fault matrix: each injected failure x (exit code, orders sent,
orders recorded, unlogged orders, alert, audit) for ``main.py --run-once``
and ``trading_daemon.py``, run as the operator runs them (real processes,
real signals, real filesystems: a read-only bind mount and tiny tmpfs in a
private mount namespace, a second process holding the store's write lock,
a loopback vendor that stalls or a port that refuses).

``tests/trading/test_fault_matrix.py`` runs it and checks that no cell
reads "unlogged order", "silent" or "traceback", and that ``docs/stage2.md``
holds the table it renders; ``python -m tests.trading.fault_matrix --write``
rewrites that section.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.settings import REPO_ROOT
from tests.fakes.vendor_server import VendorServer
from tests.trading.market_frames import SEEDED_AS_OF, random_walk_bars, seed_store, write_settings, write_universe

DOC_PATH = REPO_ROOT / "docs" / "stage2.md"
BEGIN, END = "<!-- stage2-fault-matrix:begin -->", "<!-- stage2-fault-matrix:end -->"
SYMBOLS = ("AAA", "BBB", "CCC")
MANY = tuple(f"S{i:02d}" for i in range(30))      # enough ARIMA fits to signal a run mid-cycle
NEXT_SESSION = "2024-02-26"                         # one session after the seeded store's last bar
SENT = ("FILLED", "ACCEPTED", "NEW")
FORBIDDEN = ("unlogged order", "silent", "traceback")


@dataclass
class Desk:
    root: Path
    env: dict[str, str]

    @property
    def runtime(self) -> Path:
        return self.root / "runtime"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def db(self) -> Path:
        return self.runtime / "institutional_trading.db"


def make_desk(root: Path, symbols=SYMBOLS) -> Desk:
    """A seeded desk (its own runtime, logs, settings, universe), alerts dry-run."""
    (root / "runtime").mkdir(parents=True)
    (root / "logs").mkdir()
    seed_store(root / "runtime" / "institutional_trading.db", symbols, rows=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "POLYGON_", "YAHOO_", "ALERT_"))}
    env.update(RUNTIME_DIR=str(root / "runtime"), LOGS_DIR=str(root / "logs"),
               SETTINGS_FILE=str(write_settings(root / "settings.toml")),
               UNIVERSE_FILE=str(write_universe(root / "universe.json", symbols)), ALERT_DRY_RUN="1")
    return Desk(root, env)


@dataclass
class Cell:
    fault: str
    command: str
    exit_code: int | None
    orders_sent: int
    orders_recorded: int
    unlogged: int
    alert: str
    audit: str
    traceback: bool
    note: str = ""
    verdict: str = field(init=False)

    def __post_init__(self) -> None:
        if self.traceback:
            self.verdict = "traceback"
        elif self.unlogged:
            self.verdict = "unlogged order"
        elif self.audit == "-" and self.alert == "-":
            self.verdict = "silent"
        else:
            self.verdict = "contained"


# ------------------------------------------------------------ observation
def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def observe(desk: Desk, fault: str, command: str, code: int | None, output: str, note: str = "") -> Cell:
    con = sqlite3.connect(desk.db)
    try:
        orders = con.execute("SELECT client_order_id, status FROM orders").fetchall()
        alerts = con.execute("SELECT severity, title FROM alerts").fetchall()
        events = [e for (e,) in con.execute("SELECT DISTINCT event FROM governance_events WHERE event LIKE "
                                            "'STAGE2_%' OR event LIKE 'SAFE_MODE_%' ORDER BY event")]
    finally:
        con.close()
    logged = {r.get("client_order_id") for r in _jsonl(desk.logs / "live.jsonl") if r.get("event") == "ORDER"}
    human = (desk.logs / "live_trading.log").read_text() if (desk.logs / "live_trading.log").is_file() else ""
    unlogged = [k for k, _ in orders if k not in logged and f"[{k}]" not in human]
    alerts_dir = desk.runtime / "alerts"
    # The dry-run artifacts, one per alert that went out, under alerts/<run_id>/
    # (the policy's state.json and ledger sit beside them).
    artifacts = [json.loads(p.read_text()) for p in sorted(alerts_dir.glob("*/*.json"))] if alerts_dir.exists() else []
    severities = sorted({s for s, _ in alerts} | {a["severity"] for a in artifacts if "severity" in a})
    audit = ["governance_events " + ", ".join(events)] if events else []
    errors = [r["event"] for r in _jsonl(desk.logs / "errors.jsonl")]
    if errors:
        audit.append("errors.jsonl " + ", ".join(sorted(set(errors))))
    halt_log = desk.runtime / "governance_halt.log"
    if halt_log.exists():
        reasons = sorted({line.split()[-1] for line in halt_log.read_text().splitlines() if line.startswith("--- ")})
        audit.append("governance_halt.log " + ", ".join(reasons))
    warnings = sorted({r["event"] for r in _jsonl(desk.logs / "live.jsonl") if r.get("level") == "WARNING"
                       and r["event"] in ("KILL_SWITCH_HALT", "CYCLE_INTERRUPTED", "DATA_REFRESH_ABANDONED")})
    if warnings:
        audit.append("live.jsonl " + ", ".join(warnings))
    return Cell(fault, command, code, sum(1 for _, st in orders if st in SENT), len(orders), len(unlogged),
                ", ".join(severities) or "-", "; ".join(audit) or "-", "Traceback" in output, note)


# ------------------------------------------------------------ runners
def _python(script: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / script)]


def _run(desk: Desk, args: list[str], timeout: float = 120) -> tuple[int, str]:
    proc = subprocess.run(args, cwd=desk.root, env=desk.env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def _private_mount(desk: Desk, mount: str, args: list[str]) -> tuple[int, str]:
    cmd = " ".join(f"'{a}'" for a in args)
    return _run(desk, [shutil.which("unshare"), "-m", "sh", "-ec", f"{mount} && exec {cmd}"])


def _wait_event(desk: Desk, event: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(r.get("event") == event for r in _jsonl(desk.logs / "live.jsonl")):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event} in {desk.logs / 'live.jsonl'}")
        time.sleep(0.02)


def _signalled(desk: Desk, args: list[str], wait_event: str, act: Callable[[subprocess.Popen], None],
               settle: float = 0.0, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Start ``args``, wait for ``wait_event`` in live.jsonl, ``act`` on the
    process, then wait for it; (exit code, output, seconds from act to exit)."""
    proc = subprocess.Popen(args, cwd=desk.root, env=env or desk.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_event(desk, wait_event)
        time.sleep(settle)
        acted = time.monotonic()
        act(proc)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out + err, time.monotonic() - acted
    finally:
        if proc.poll() is None:
            proc.kill()


def _term(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)


def _daemon(*extra: str) -> list[str]:
    return _python("trading_daemon.py") + ["--tick-interval", "0.1", "--heartbeat", "0.5", *extra]


ONCE = _python("main.py") + ["--run-once", "--as-of", SEEDED_AS_OF]


# ------------------------------------------------------------ scenarios
def logs_read_only(root: Path) -> Cell:
    desk = make_desk(root)
    code, out = _private_mount(desk, f"mount --bind '{desk.logs}' '{desk.logs}' && "
                                     f"mount -o remount,ro,bind '{desk.logs}'", ONCE)
    return observe(desk, "logs directory read-only (bind mount)", "main.py --run-once", code, out)


def log_disk_full(root: Path) -> Cell:
    desk = make_desk(root)
    code, out = _private_mount(desk, f"mount -t tmpfs -o size=256k tmpfs '{desk.logs}' && "
                                     f"(dd if=/dev/zero of='{desk.logs}/filler' bs=4k 2>/dev/null || true)",
                               _daemon("--as-of", SEEDED_AS_OF))
    return observe(desk, "log disk full (256 KiB tmpfs)", "trading_daemon.py", code, out)


def ticket_disk_full(root: Path) -> Cell:
    desk = make_desk(root)
    tickets = desk.runtime / "tickets"
    tickets.mkdir()
    code, out = _private_mount(desk, f"mount -t tmpfs -o size=128k tmpfs '{tickets}' && "
                                     f"(dd if=/dev/zero of='{tickets}/filler' bs=4k 2>/dev/null || true)", ONCE)
    return observe(desk, "ticket disk full (128 KiB tmpfs)", "main.py --run-once", code, out)


def db_locked(root: Path) -> Cell:
    desk = make_desk(root)
    holder = sqlite3.connect(desk.db, isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")          # another writer holds the store
    try:
        code, out = _run(desk, ONCE)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    return observe(desk, "database locked by another writer", "main.py --run-once", code, out)


def stale_store(root: Path) -> Cell:
    desk = make_desk(root)
    code, out = _run(desk, _python("main.py") + ["--run-once", "--as-of", "2024-03-15"])
    return observe(desk, "store 15 sessions behind the calendar", "main.py --run-once", code, out)


def vendor_down(root: Path) -> Cell:
    desk = make_desk(root)
    with socket.socket() as s:                 # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = dict(desk.env, YAHOO_BASE_URL=dead, POLYGON_BASE_URL=dead, ALPACA_DATA_URL=dead)
    code, out, _ = _signalled(desk, _daemon("--as-of", NEXT_SESSION, "--data-refresh", "0"), "DATA_REFRESH_START",
                              _term, settle=3.0, env=env)
    return observe(desk, "vendors down during the refresh", "trading_daemon.py + SIGTERM", code, out,
                   "trades on the last snapshot while the refresh retries; abandoned at SIGTERM")


def slow_refresh(root: Path) -> Cell:
    desk = make_desk(root)
    with VendorServer(stall_seconds=60) as server:
        for symbol in SYMBOLS:
            server.register(symbol, random_walk_bars(320, seed=1))
            for vendor in ("yahoo", "polygon", "alpaca"):
                server.fault(vendor, symbol, "stall", times=None, seconds=60)
        env = dict(desk.env, YAHOO_BASE_URL=server.url, POLYGON_BASE_URL=server.url, ALPACA_DATA_URL=server.url)
        code, out, took = _signalled(desk, _daemon("--as-of", NEXT_SESSION, "--data-refresh", "0"),
                                     "DATA_REFRESH_START", _term, settle=1.0, env=env)
    return observe(desk, "refresh stalled 60 s on a vendor", "trading_daemon.py + SIGTERM", code, out,
                   f"stopped {took:.1f} s after SIGTERM; the refresh is abandoned")


def _mid_cycle(root: Path, fault: str, act: Callable[[subprocess.Popen, Desk], None], command: str) -> Cell:
    desk = make_desk(root, MANY)
    code, out, took = _signalled(desk, ONCE, "CYCLE_START", lambda p: act(p, desk), settle=0.3)
    return observe(desk, fault, command, code, out, f"stopped {took:.1f} s after it")


def sigterm_mid_cycle(root: Path) -> Cell:
    return _mid_cycle(root, "SIGTERM during the model fits", lambda p, d: p.send_signal(signal.SIGTERM),
                      "main.py --run-once")


def sigint_mid_cycle(root: Path) -> Cell:
    return _mid_cycle(root, "SIGINT (Ctrl-C) during the model fits", lambda p, d: p.send_signal(signal.SIGINT),
                      "main.py --run-once")


def kill_switch_mid_cycle(root: Path) -> Cell:
    return _mid_cycle(root, "kill switch touched during the cycle",
                      lambda p, d: (d.runtime / "KILL_SWITCH").touch(), "main.py --run-once")


SCENARIOS: tuple[Callable[[Path], Cell], ...] = (
    logs_read_only, log_disk_full, ticket_disk_full, db_locked, stale_store, vendor_down, slow_refresh,
    sigterm_mid_cycle, sigint_mid_cycle, kill_switch_mid_cycle)


def run_matrix(root: Path) -> list[Cell]:
    """Every scenario on a desk of its own under ``root``."""
    return [scenario(root / scenario.__name__) for scenario in SCENARIOS]


def render_markdown(cells: list[Cell]) -> str:
    """The table docs/stage2.md holds between its markers."""
    lines = [BEGIN, "",
             "| injected failure | command | exit | orders sent | orders recorded | unlogged | alert | audit "
             "| verdict | note |",
             "|---|---|---:|---:|---:|---:|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c.fault} | `{c.command}` | {c.exit_code} | {c.orders_sent} | {c.orders_recorded} | "
                     f"{c.unlogged} | {c.alert} | {c.audit} | {c.verdict} | {_stable(c.note)} |")
    lines += ["", END]
    return "\n".join(lines)


def _stable(note: str) -> str:
    """Notes without measured seconds, so the table is the same every run."""
    return re.sub(r"stopped \d+\.\d s after", "stopped within seconds of", note)


def doc_section(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


if __name__ == "__main__":
    if "--write" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            section = render_markdown(run_matrix(Path(tmp)))
        text = DOC_PATH.read_text()
        text = text.replace(doc_section(text), section) if BEGIN in text else text.rstrip() + "\n\n" + section + "\n"
        DOC_PATH.write_text(text)
        print(section)

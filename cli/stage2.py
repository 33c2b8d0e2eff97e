"""Stage 2's commands (``main.py``, ``trading_daemon.py``): their options,
the rendering of each outcome of ``trading.stage2.run_stage2`` (human text,
or under ``--json`` one JSON object on stdout) and its exit code.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Mapping

import click

from cli import exit_codes
from cli.command import OperatorCommand, exit_now
from cli.console import log_console, progress_bar
from cli.options import FiniteNumber, as_of_option, db_option, json_option, tickers_option, universe_option
from trading.stage2 import (CycleDone, CycleFailed, CycleHalted, CycleInterrupted, DaemonStopped, HistoryHalted,
                            KillSwitchRefused, LiveRefused, SinksUnavailable, Stage2Options, Stage2Outcome,
                            run_stage2)
from trading.status import read_status
from trading.ticket import render_json

# Outcome -> exit code (docs/error_codes.md).
OUTCOME_EXIT_CODES: dict[type, int] = {
    CycleDone: exit_codes.OK,
    DaemonStopped: exit_codes.OK,
    CycleFailed: exit_codes.FAILURE,
    LiveRefused: exit_codes.GATE_FAILED,
    HistoryHalted: exit_codes.HALTED,
    KillSwitchRefused: exit_codes.HALTED,
    CycleHalted: exit_codes.HALTED,
    SinksUnavailable: exit_codes.FAILURE,
}


def say(as_json: bool, text: str, payload: Mapping[str, Any] | None = None, *, err: bool = False) -> None:
    """Human text, or under --json one JSON object on stdout."""
    if as_json:
        if payload is not None:
            print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(text, file=sys.stderr if err else sys.stdout)


def run_command(opts: Stage2Options, *, as_json: bool = False, env: Mapping[str, str] | None = None,
                live_broker_factory: Callable[..., Any] | None = None, exit_when_abandoned: bool = False) -> int:
    """Run Stage 2, render what happened; the exit code.  ``exit_when_abandoned``
    (the commands): a daemon that abandoned a stuck refresh ends the process
    at once (:func:`exit_now_if_abandoned`)."""
    loop = not opts.run_once
    with progress_bar("fitting models", enabled=not as_json and not loop) as progress:
        outcome = run_stage2(opts, env=env, live_broker_factory=live_broker_factory,
                             console=log_console(as_json, stream=loop), progress=progress)
    render(outcome, as_json)
    if isinstance(outcome, CycleInterrupted):
        return exit_codes.SIGNAL_EXIT_CODES.get(outcome.signal, exit_codes.FAILURE)
    if isinstance(outcome, CycleDone) and outcome.log_failures:
        return exit_codes.FAILURE          # the orders are recorded; the log is not whole
    code = OUTCOME_EXIT_CODES[type(outcome)]
    return exit_now_if_abandoned(outcome, code) if exit_when_abandoned else code


def exit_now_if_abandoned(outcome: Stage2Outcome, code: int) -> int:
    """A daemon that stopped during a refresh stuck on a vendor exits now:
    the interpreter would otherwise wait at exit for the fetch pool's
    threads (not daemon threads) until the vendor answers.  Everything is
    recorded by then (the logs open their file per record, the store is
    closed), and the exit is reported first (``cli.command.exit_now``)."""
    if isinstance(outcome, DaemonStopped) and outcome.abandoned_refresh:
        exit_now(code)
    return code


def render(outcome: Stage2Outcome, as_json: bool) -> None:
    """The operator's view of one outcome (the texts the runbook quotes)."""
    if isinstance(outcome, LiveRefused):
        say(as_json, "live trading refused: " + "; ".join(outcome.reasons),
            {"status": "refused", "mode": "live", "reasons": outcome.reasons}, err=True)
    elif isinstance(outcome, HistoryHalted):
        gap, block = outcome.gap, outcome.gap.block()
        affected = gap.missing or gap.stale
        payload = {"status": "halted", "reason": gap.reason, "symbols_affected": len(affected),
                   "required_rows": gap.required, "symbols": affected, "message": block, "as_of": str(outcome.as_of)}
        if not gap.missing:
            payload.update(expected_last_session=gap.expected_last,
                           action="python ingest_history.py --mode=incremental")
        say(as_json, block, payload)
    elif isinstance(outcome, KillSwitchRefused):
        say(as_json, f"refused: {outcome.message}",
            {"status": "halted", "reason": "kill_switch", "message": outcome.message}, err=True)
    elif isinstance(outcome, CycleHalted):
        say(as_json, f"halted: {outcome.message}",
            {"status": "halted", "reason": "kill_switch", "message": outcome.message}, err=True)
    elif isinstance(outcome, SinksUnavailable):
        say(as_json, "error: nothing sent - a sink cannot be recorded to: " + "; ".join(outcome.problems),
            {"status": "failed", "reason": "sink_unavailable", "problems": outcome.problems}, err=True)
    elif isinstance(outcome, CycleInterrupted):
        say(as_json, f"interrupted: {outcome.message}",
            {"status": "interrupted", "signal": outcome.signal, "message": outcome.message}, err=True)
    elif isinstance(outcome, DaemonStopped):
        say(as_json, f"daemon stopped after {outcome.ticks} tick(s)", {"status": "stopped", "ticks": outcome.ticks})
    elif isinstance(outcome, CycleFailed):
        say(as_json, f"error: cycle failed: {outcome.error}", {"status": "failed", "error": outcome.error}, err=True)
    elif isinstance(outcome, CycleDone):
        o = outcome
        text = (f"session {o.session}: {o.orders} order(s) sent, {o.filled} filled; "
                f"gross exposure {o.gross_exposure:.4f}, VaR95 {o.var:.6f}, CVaR95 {o.cvar:.6f}"
                f"{'; SAFE MODE x' + format(o.safe_mode_scale, 'g') if o.safe_mode else ''}\n"
                f"ticket: {o.ticket_md}")
        lost = "; ".join(f"{path}: {n} record(s) not written ({error})" for path, (n, error)
                         in sorted(o.log_failures.items()))
        if lost:
            text += f"\nerror: the orders are recorded in the database, but the log is not whole: {lost}"
        say(as_json, text, {"status": "ok" if not lost else "log_incomplete", "session": o.session,
                            "orders": o.orders, "filled": o.filled, "ticket_md": o.ticket_md,
                            "ticket_json": o.ticket_json, "ticket": json.loads(render_json(o.ticket)),
                            "log_failures": {p: {"records": n, "error": e} for p, (n, e) in o.log_failures.items()}})


def render_status(status: dict[str, Any]) -> str:
    """``main.py --status`` as text."""
    e = status["exposure"]
    sm = status["safe_mode"]
    lines = [
        "Portfolio & Risk",
        f"  equity        {status['equity']:,.2f}   cash {status['cash']:,.2f}",
        f"  exposure      gross {e['gross']:.4f}  net {e['net']:.4f}  long {e['long']:.4f}  short {e['short']:.4f}",
        f"  VaR 1d 95%    {status['var_1d_95']:.6f}   CVaR 1d 95% {status['cvar_1d_95']:.6f}",
        f"  safe mode     {'ON (x' + format(sm['scale'], 'g') + ')' if sm['active'] else 'off'}"
        + (f"  reason: {sm['reason']}" if sm["reason"] else ""),
        f"  kill switch   {'PRESENT (halted)' if status['kill_switch'] else 'absent'}",
        f"  orders/fills  {status['orders']}/{status['fills']}   latest ticket {status['latest_ticket'] or '-'}",
        "",
        f"  {'symbol':<10} {'quantity':>14} {'avg price':>12} {'last close':>12} {'value':>14} {'weight':>8}",
    ]
    for p in status["positions"]:
        value = p["market_value"]
        lines.append(f"  {p['symbol']:<10} {p['quantity']:>14.4f} {p['avg_price']:>12.4f} {p['last_close']:>12.4f} "
                     f"{(value if value is not None else float('nan')):>14,.2f} {p['weight']:>8.4f}")
    if not status["positions"]:
        lines.append("  (no positions)")
    return "\n".join(lines)


# ------------------------------------------------------------------ commands
def _stage2_options(fn):
    """The options main.py and trading_daemon.py share."""
    for option in reversed((
        click.option("--mode", type=click.Choice(["paper", "live"]), default="paper", show_default=True,
                     help="paper: the store's paper book; live: Alpaca (credentials, --confirm-live, "
                          "Stage 1 verified)."),
        tickers_option(),
        click.option("--confirm-live", is_flag=True, help="Required for --mode=live (or LIVE_TRADING_CONFIRMED=yes)."),
        universe_option,
        as_of_option("Judge the store's freshness as of this date (default: today)."),
        db_option,
        json_option,
    )):
        fn = option(fn)
    return fn


@click.command(cls=OperatorCommand)
@click.option("--run-once", is_flag=True, help="One decision cycle, then write the daily ticket and exit.")
@click.option("--status", "status_only", is_flag=True, help="Portfolio & risk status, then exit.")
@_stage2_options
def trade(run_once, status_only, mode, tickers, confirm_live, universe_path, as_of, db_path, as_json):
    """Stage 2: trade the governed universe (ACTIVE symbols; DEGRADED may only
    reduce; QUARANTINED gets no order) from the database only.

    Refuses to start while any universe symbol lacks its required rows or its
    data is stale at --as-of (prints the [DATA_GOVERNANCE] block naming the
    fix, appends it to runtime/governance_halt.log) or while
    runtime/KILL_SWITCH exists. --run-once makes one cycle and writes
    runtime/tickets/<session>.md/.json. Live mode needs credentials,
    --confirm-live (or LIVE_TRADING_CONFIRMED=yes) and a verified Stage 1.

    Every sink a cycle writes (database, logs, tickets) is checked before
    the first order: one that cannot take a write sends nothing (exit 1,
    naming it). Each order is recorded in the database before it is logged
    or reported, under an idempotency key (session, symbol, ordinal), so a
    retried cycle never doubles an order. SIGTERM/SIGINT stop a cycle
    before its next model fit or order.

    Exit codes: 0 ok, 1 failure (a sink cannot be written, the cycle
    failed), 2 live-mode gate refused, 3 halted (missing or stale history,
    or kill switch), 64 bad flag, 65 malformed universe/settings, 66
    missing database or universe, 130/143 interrupted by SIGINT/SIGTERM.
    """
    if status_only:
        status = read_status(db_path)
        say(as_json, render_status(status), status)
        return exit_codes.OK
    return run_command(Stage2Options(mode=mode, run_once=run_once, tickers=tickers, confirm_live=confirm_live,
                                     db_path=db_path, universe_path=universe_path, as_of=as_of), as_json=as_json,
                       exit_when_abandoned=True)


@click.command(cls=OperatorCommand)
@click.option("--data-refresh", "data_refresh", type=FiniteNumber(0, 7 * 24 * 60, "minutes"), default=30.0,
              show_default=True, help="Minutes between incremental ingest + re-governance runs (0: every tick; "
                                      "a finite number up to a week).")
@click.option("--tick-interval", type=FiniteNumber(0.01, 3600, "seconds"), default=1.0, show_default=True,
              help="Seconds between ticks, 0.01 to 3600 (the kill switch and signals are honoured every tick).")
@click.option("--heartbeat", "heartbeat_seconds", type=FiniteNumber(0.1, 3600, "seconds"), default=None,
              help="Seconds between heartbeats, 0.1 to 3600 (default 5).")
@_stage2_options
def daemon(data_refresh, tick_interval, heartbeat_seconds, mode, tickers, confirm_live, universe_path, as_of,
           db_path, as_json):
    """The 24/7 Stage 2 loop: a decision cycle every tick, the kill switch
    checked every tick (no order after runtime/KILL_SWITCH appears; removing it
    resumes, and both are appended to runtime/governance_halt.log), a
    heartbeat every 5 s to the console and logs/live.jsonl, and an
    incremental ingest + re-governance every --data-refresh minutes on a
    worker thread (the ticks, the kill switch and the heartbeat never wait
    for it). SIGTERM/SIGINT stop it within one tick. No cycle runs while a
    sink (database, logs, tickets) cannot take a write or the heartbeat has
    stopped. Safe mode (x0.1 exposure) after more than 5 consecutive loop
    errors or a critical data gap (a stale symbol names the fix). The
    console is timestamped; --json makes it JSON lines on stdout.

    Exit codes: 0 stopped, 1 a sink cannot be written at start, 2 live-mode
    gate refused, 3 refused at start (missing or stale history, or the kill
    switch), 64 bad flag (a timing flag must be a finite number in its
    range), 65 malformed universe/settings, 66 missing database or universe.
    """
    return run_command(Stage2Options(mode=mode, tickers=tickers, confirm_live=confirm_live, db_path=db_path,
                                     universe_path=universe_path, as_of=as_of, tick_interval=tick_interval,
                                     data_refresh_minutes=data_refresh, heartbeat_seconds=heartbeat_seconds),
                       as_json=as_json, exit_when_abandoned=True)

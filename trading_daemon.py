"""The 24/7 Stage 2 daemon.

    python trading_daemon.py --data-refresh 30 --tick-interval 1.0
    touch runtime/KILL_SWITCH    # halt: no order after the file appears
    rm runtime/KILL_SWITCH       # resume

SIGTERM (or Ctrl-C) stops it after the current tick.  Logs:
logs/live_trading.log, logs/live.jsonl, logs/errors.jsonl.
"""
import click

from cli.command import OperatorCommand, db_option, json_option
from cli.health_report import parse_as_of
from trading.stage2 import Stage2Options, parse_tickers, run_stage2


@click.command(cls=OperatorCommand)
@click.option("--mode", type=click.Choice(["paper", "live"]), default="paper", show_default=True)
@click.option("--data-refresh", "data_refresh", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Minutes between incremental ingest + re-governance runs.")
@click.option("--tick-interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between ticks (kill switch checked every tick).")
@click.option("--heartbeat", "heartbeat_seconds", type=click.FloatRange(min=0.1), default=None,
              help="Seconds between heartbeats (default 5).")
@click.option("--tickers", default=None, help="Comma-separated subset of the universe.")
@click.option("--confirm-live", is_flag=True, help="Required for --mode=live (or LIVE_TRADING_CONFIRMED=yes).")
@click.option("--universe", "universe_path", type=click.Path(dir_okay=False), default=None)
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD",
              help="Judge the store's freshness as of this date (default: today).")
@db_option
@json_option
def main(mode, data_refresh, tick_interval, heartbeat_seconds, tickers, confirm_live, universe_path, as_of,
         db_path, as_json):
    """The 24/7 Stage 2 loop: a decision cycle every tick, the kill switch
    checked every tick (no order after runtime/KILL_SWITCH appears; removing it
    resumes), a heartbeat every 5 s to the console and logs/live.jsonl, and an
    incremental ingest + re-governance every --data-refresh minutes. SIGTERM
    stops it gracefully. Safe mode (x0.1 exposure) after more than 5
    consecutive loop errors or a critical data gap.

    Exit codes: 0 stopped, 3 refused at start (missing or stale history, or
    the kill switch), 64/65/66 input errors.
    """
    return run_stage2(Stage2Options(mode=mode, tickers=parse_tickers(tickers), confirm_live=confirm_live,
                                    db_path=db_path, universe_path=universe_path, as_json=as_json,
                                    as_of=parse_as_of(as_of), tick_interval=tick_interval, data_refresh_minutes=data_refresh,
                                    heartbeat_seconds=heartbeat_seconds))


if __name__ == "__main__":
    main()

"""Stage 2: the trading agent (paper or live).

    python main.py --mode=paper               # the loop (as trading_daemon.py, default intervals)
    python main.py --run-once --mode=paper    # one cycle: orders + runtime/tickets/<session>.md/.json
    python main.py --tickers=AAPL,MSFT --mode=paper
    python main.py --mode=live --confirm-live # needs ALPACA_API_KEY/SECRET and Stage 1 verified
    python main.py --status                   # positions, exposure, VaR, CVaR, safe mode

Exit codes: 0 ok, 1 cycle failed, 2 live gate refused, 3 halted (missing
history or kill switch), 64-66 bad input.
"""
import click

from cli.command import OperatorCommand, db_option, json_option
from cli.health_report import parse_as_of
from trading.stage2 import Stage2Options, parse_tickers, run_stage2, show_status


@click.command(cls=OperatorCommand)
@click.option("--mode", type=click.Choice(["paper", "live"]), default="paper", show_default=True)
@click.option("--run-once", is_flag=True, help="One decision cycle, then write the daily ticket and exit.")
@click.option("--tickers", default=None, help="Comma-separated subset of the universe.")
@click.option("--status", "status_only", is_flag=True, help="Portfolio & risk status, then exit.")
@click.option("--confirm-live", is_flag=True, help="Required for --mode=live (or LIVE_TRADING_CONFIRMED=yes).")
@click.option("--universe", "universe_path", type=click.Path(dir_okay=False), default=None,
              help="Universe file (default: configs/universe.json or $UNIVERSE_FILE).")
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD",
              help="Judge the store's freshness as of this date (default: today).")
@db_option
@json_option
def main(mode, run_once, tickers, status_only, confirm_live, universe_path, as_of, db_path, as_json):
    """Stage 2: trade the governed universe (ACTIVE symbols; DEGRADED may only
    reduce; QUARANTINED gets no order) from the database only.

    Refuses to start while any universe symbol lacks its required rows or its
    data is stale at --as-of (prints the [DATA_GOVERNANCE] block naming the
    fix, appends it to runtime/governance_halt.log) or while
    runtime/KILL_SWITCH exists. --run-once makes one cycle and writes
    runtime/tickets/<session>.md/.json. Live mode needs credentials,
    --confirm-live (or LIVE_TRADING_CONFIRMED=yes) and a verified Stage 1.

    Exit codes: 0 ok, 1 failure, 2 live-mode gate refused, 3 halted (missing
    history or kill switch), 64 bad flag, 65 malformed universe/settings, 66
    missing database or universe.
    """
    opts = Stage2Options(mode=mode, run_once=run_once, tickers=parse_tickers(tickers), confirm_live=confirm_live,
                         db_path=db_path, universe_path=universe_path, as_json=as_json,
                         as_of=parse_as_of(as_of))
    if status_only:
        return show_status(opts)
    return run_stage2(opts)


if __name__ == "__main__":
    main()

"""Stage 2: the trading agent (paper or live).

    python main.py --mode=paper               # the loop (as trading_daemon.py, default intervals)
    python main.py --run-once --mode=paper    # one cycle: orders + runtime/tickets/<session>.md/.json
    python main.py --tickers=AAPL,MSFT --mode=paper
    python main.py --mode=live --confirm-live # needs ALPACA_API_KEY/SECRET and Stage 1 verified
    python main.py --status                   # positions, exposure, VaR, CVaR, safe mode

Exit codes: 0 ok, 1 cycle failed, 2 live gate refused, 3 halted (missing or
stale history, or kill switch), 64-66 bad input.

The command (options, rendering, exit codes) is ``cli.stage2.trade``; the
run is ``trading.stage2``.
"""
from cli.stage2 import trade as main

if __name__ == "__main__":
    main()

"""The 24/7 Stage 2 daemon.

    python trading_daemon.py --data-refresh 30 --tick-interval 1.0
    touch runtime/KILL_SWITCH    # halt: no order after the file appears
    rm runtime/KILL_SWITCH       # resume

SIGTERM (or Ctrl-C) stops it after the current tick.  Logs:
logs/live_trading.log, logs/live.jsonl, logs/errors.jsonl.

The command (options, rendering, exit codes) is ``cli.stage2.daemon``; the
loop is ``trading.stage2`` and ``trading.daemon``.
"""
from cli.stage2 import daemon as main

if __name__ == "__main__":
    main()

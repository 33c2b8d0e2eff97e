"""Repair a symbol's stored history over a date range (or undo a repair).

The command (options, validation, rendering, exit codes) is ``cli.repair``;
the repair is ``data.collectors.repair``.
"""
from cli.repair import main

if __name__ == "__main__":
    main()

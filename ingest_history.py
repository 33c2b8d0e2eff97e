"""Stage 1: batch ingestion of daily OHLCV history into the governed store.

The command (options, validation, rendering, exit codes) is ``cli.ingest``;
the run is ``data.collectors.ingestion``.
"""
from cli.ingest import main

if __name__ == "__main__":
    main()

"""Generation speed of the synthetic provider: N symbols x one 1260-session
XNYS deep-backfill window (frames and raw payloads), single thread.

    .venv/bin/python bench/synthetic_speed.py [symbols] [as_of]
"""
from __future__ import annotations

import datetime as dt
import sys
import time

from core.calendar import backfill_window
from data.providers.base import FetchRequest
from data.providers.synthetic import SyntheticDataProvider


def main(count: int = 6000, as_of: dt.date = dt.date(2026, 6, 30)) -> None:
    window = backfill_window("XNYS", as_of, 1260)
    requests = [FetchRequest(f"S{i:05d}", "stocks", window.start, window.end, "XNYS") for i in range(count)]
    provider = SyntheticDataProvider(defects={})
    t0 = time.perf_counter()
    rows = payload = 0
    for outcome in provider.fetch(requests):
        rows += len(outcome.result.frame)
        payload += len(outcome.result.raw_payload)
    elapsed = time.perf_counter() - t0
    print(f"{count} symbols x {window}: {rows} rows, {payload / 1e6:.1f} MB raw JSON "
          f"in {elapsed:.1f} s ({elapsed / count * 1e3:.2f} ms/symbol)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6000,
         dt.date.fromisoformat(sys.argv[2]) if len(sys.argv) > 2 else dt.date(2026, 6, 30))

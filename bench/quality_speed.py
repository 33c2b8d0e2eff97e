"""Speed of data.quality.assess_quality on 1260-session frames.

Budget: <= 1.0 ms per frame (the deep-backfill benchmark scores 6,000
symbols inside the ingest run).  Per case: the median over ``calls`` calls,
after a warm-up, of wall time (perf_counter) and CPU time (process_time:
other processes loading the machine inflate wall time, not this).

    .venv/bin/python bench/quality_speed.py [calls] [--profile CASE]
"""
from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

# The frames come from the test catalogue (tests/ is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.quality import assess_quality
from tests.quality_cases import CASES

# clean: a plain store-shaped frame; synthetic_clean: an ingest frame with
# split_ratio/dividend columns; the corporate-action cases go through
# actions_per_bar; the defect cases through every finding branch.
BENCH_CASES = (
    "clean",
    "synthetic_clean",
    "split_unadjusted_stored_action",
    "synthetic_dividend_payer_stored_actions",
    "synthetic_split_and_special_dividend",
    "synthetic_value_defects",
    "synthetic_rows_defects",
    "many_defects_together",
)
WARM_UP = 20


def time_case(name: str, calls: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) per call of case ``name``."""
    frame, kwargs = CASES[name]()
    for _ in range(WARM_UP):
        assess_quality(frame, **kwargs)
    wall, cpu = [], []
    for _ in range(calls):
        w0, c0 = time.perf_counter(), time.process_time()
        assess_quality(frame, **kwargs)
        c1, w1 = time.process_time(), time.perf_counter()
        wall.append(w1 - w0)
        cpu.append(c1 - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def profile(name: str, calls: int) -> None:
    frame, kwargs = CASES[name]()
    assess_quality(frame, **kwargs)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        assess_quality(frame, **kwargs)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


def main(argv: list[str]) -> None:
    calls = int(argv[0]) if argv and argv[0].isdigit() else 300
    if "--profile" in argv:
        profile(argv[argv.index("--profile") + 1], calls)
        return
    print(f"assess_quality, median of {calls} calls after {WARM_UP} warm-up calls (ms per frame)")
    print(f"{'case':42s} {'rows':>5s} {'wall':>7s} {'cpu':>7s}")
    walls, cpus = [], []
    for name in BENCH_CASES:
        wall, cpu = time_case(name, calls)
        walls.append(wall)
        cpus.append(cpu)
        print(f"{name:42s} {len(CASES[name]()[0]):5d} {wall:7.3f} {cpu:7.3f}")
    print(f"{'worst case':42s} {'':5s} {max(walls):7.3f} {max(cpus):7.3f}   (budget 1.000)")


if __name__ == "__main__":
    main(sys.argv[1:])

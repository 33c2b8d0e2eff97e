"""The offline end-to-end job behind `make run`: the runbook's commands in
order, on the synthetic provider, so a machine with no vendor access shows
the whole path: Stage 1 deep backfill, verification, one paper cycle.

Each step is the operator's own command run as a subprocess; the job stops
at the first step whose exit code is not 0 and exits with it.
Environment: RUNTIME_DIR / LOGS_DIR as for every command (default ./runtime).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent

STEPS = [
    ("Stage 1: deep backfill (synthetic, offline)",
     ["ingest_history.py", "--mode=deep_backfill", "--provider", "synthetic"]),
    ("Stage 1: verify stored history", ["ingest_history.py", "--mode=verify"]),
    ("Verification: strict backfill compliance", ["verify_backfill.py", "--strict"]),
    ("Verification: database status", ["verify_db_status.py"]),
    ("Stage 2: one paper trading cycle", ["main.py", "--mode=paper", "--run-once"]),
]


def main() -> int:
    for title, argv in STEPS:
        script = REPO / argv[0]
        print(f"\n== {title}\n$ python {' '.join(argv)}", flush=True)
        code = subprocess.call([sys.executable, str(script), *argv[1:]], cwd=REPO, env=os.environ.copy())
        if code != 0:
            print(f"\n== stopped: `python {' '.join(argv)}` exited {code}", file=sys.stderr)
            return code
    runtime = Path(os.environ.get("RUNTIME_DIR", REPO / "runtime"))
    print(f"\n== done. database: {runtime / 'institutional_trading.db'}; tickets: {runtime / 'tickets'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

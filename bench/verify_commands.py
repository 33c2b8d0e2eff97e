"""Verify-command benchmark: a store of N symbols x 1,260 sessions (6,000 by
default: 7.56 M rows), governed once (``govern_symbols``, as ingestion does
after a run), then ``verify_backfill.py --strict --json`` and
``verify_db_status.py --json`` timed as the operator runs them (subprocess,
cold interpreter).  Target (DESIGN section 7): each under 5 s at 6,000.

    python bench/verify_commands.py                 # 6,000 symbols
    python bench/verify_commands.py --symbols 300   # a quick look
    python bench/verify_commands.py --reuse         # keep the store built last time

Writes its store and universe under bench/work/verify/ (git-ignored) and
prints one JSON document with the timings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.calendar import backfill_window, expected_sessions  # noqa: E402
from data.governance.governance_agent import govern_symbols  # noqa: E402
from core.universe import load_universe  # noqa: E402
from database.manager import Database, SymbolWrite  # noqa: E402
from core.settings import load_settings  # noqa: E402

AS_OF = dt.date(2026, 11, 20)
INGESTED_AT = "2026-11-22T00:00:00.000000Z"


def symbol_names(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for i in range(n):
        k, name = i, ""
        for _ in range(4):
            name = letters[k % 26] + name
            k //= 26
        out.append("V" + name)
    return out


def build_store(path: Path, symbols: list[str], sessions: pd.DatetimeIndex, batch: int = 100) -> float:
    """Write every symbol's bars through db.bars.write_symbols; seconds taken."""
    rng = np.random.default_rng(11)
    n = len(sessions)
    t0 = time.perf_counter()
    with Database(path) as db:
        db.runs.begin("bench-1", "deep_backfill", str(AS_OF), {}, INGESTED_AT, len(symbols))
        for lo in range(0, len(symbols), batch):
            writes = []
            for symbol in symbols[lo:lo + batch]:
                close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
                frame = pd.DataFrame({"date": sessions, "open": close, "high": close * 1.01, "low": close * 0.99,
                                      "close": close, "adj_close": close,
                                      "volume": pd.array(rng.integers(1_000, 1_000_000, n), dtype="Int64")})
                writes.append(SymbolWrite(symbol, "file", frame, {
                    "outcome": "SUCCESS", "providers_tried": ["file"], "provider_used": "file",
                    "rows_received": n, "duplicate_rows": 0}))
            db.bars.write_symbols("bench-1", INGESTED_AT, writes)
        db.runs.finish("bench-1", status="SUCCESS", symbols_succeeded=len(symbols), symbols_failed=0,
                       rows_written=len(symbols) * n, providers_used={"file": len(symbols)}, verification="PASSED")
    return time.perf_counter() - t0


def timed(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return {"command": " ".join(Path(c).name if i < 2 else c for i, c in enumerate(cmd)),
            "exit_code": proc.returncode, "seconds": round(seconds, 3),
            "passed": doc.get("passed") if doc else None, "stderr": proc.stderr.strip()[-300:] or None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=6000)
    parser.add_argument("--reuse", action="store_true", help="reuse the store built by the last run")
    args = parser.parse_args()
    work = REPO / "bench" / "work" / "verify"
    work.mkdir(parents=True, exist_ok=True)
    db_path, universe_path = work / f"verify_{args.symbols}.db", work / f"universe_{args.symbols}.json"
    symbols = symbol_names(args.symbols)
    universe_path.write_text(json.dumps({"symbols": symbols}))
    settings = load_settings()
    window = backfill_window("XNYS", AS_OF, settings.history.required_sessions)
    sessions = expected_sessions("XNYS", window.start, window.end)
    result: dict = {"symbols": args.symbols, "rows": args.symbols * len(sessions), "as_of": str(AS_OF)}

    if not (args.reuse and db_path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        result["build_seconds"] = round(build_store(db_path, symbols, sessions), 3)
        with Database(db_path) as db:
            t0 = time.perf_counter()
            report = govern_symbols(db, universe_entries=load_universe(universe_path).entries, run_id="bench-1",
                                    as_of=AS_OF, settings=settings)
            seconds = time.perf_counter() - t0
        result["govern_seconds"] = round(seconds, 3)
        result["govern_ms_per_symbol"] = round(1000 * seconds / args.symbols, 3)
        result["governed"] = report.counts
    result["db_bytes"] = db_path.stat().st_size
    python = sys.executable
    common = ["--db", str(db_path), "--universe", str(universe_path), "--json"]
    result["verify_backfill"] = timed([python, "verify_backfill.py", "--strict", "--as-of", str(AS_OF), *common])
    result["verify_db_status"] = timed([python, "verify_db_status.py", "--as-of", str(AS_OF), *common])
    result["interpreter_start"] = timed([python, "-c", "import cli.health_report"])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

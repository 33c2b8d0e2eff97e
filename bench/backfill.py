"""Deep-backfill benchmark: N symbols x 1,260 rows of per-symbol CSV files
through the file provider into an empty database, against the floor
measured in the same run (the sqlite3 command-line ``.import`` of the same
rows into the same table), then the re-run where every row is an upsert of
identical data.  Reports wall time, peak RSS and the content hashes.

    python bench/backfill.py                 # 6,000 symbols (7.56 M rows)
    python bench/backfill.py --symbols 200   # a quick look

The default test suite runs this module at a small scale (tests/e2e).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.calendar import backfill_window, expected_sessions  # noqa: E402
from database.manager import Database  # noqa: E402

AS_OF = dt.date(2026, 11, 19)   # a Thursday: the incremental adds Friday 2026-11-20
NOW = "2026-11-22"


def symbol_names(n: int) -> list[str]:
    """Plausible, distinct tickers: AAAA, AAAB, ..."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    i = 0
    while len(out) < n:
        k, name = i, ""
        for _ in range(4):
            name = letters[k % 26] + name
            k //= 26
        out.append("B" + name)
        i += 1
    return out


def generate_csvs(directory: Path, symbols: list[str], dates: np.ndarray, seed: int = 7) -> None:
    """Yahoo-style per-symbol CSVs (Date,Open,High,Low,Close,Adj Close,Volume)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(dates)
    date_col = pa.array(dates.astype("datetime64[D]").astype(str))
    for symbol in symbols:
        close = np.round(50 * np.exp(np.cumsum(rng.normal(0, 0.015, n))), 4)
        open_ = np.round(close * (1 + rng.normal(0, 0.003, n)), 4)
        high = np.round(np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n))), 4)
        low = np.round(np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n))), 4)
        volume = rng.integers(100_000, 5_000_000, n)
        table = pa.table({"Date": date_col, "Open": open_, "High": high, "Low": low, "Close": close,
                          "Adj Close": close, "Volume": volume})
        pacsv.write_csv(table, directory / f"{symbol}.csv",
                        pacsv.WriteOptions(quoting_style="none"))


def write_universe(path: Path, symbols: list[str]) -> None:
    path.write_text(json.dumps({"version": 1, "symbols": [{"symbol": s} for s in symbols]}))


def floor_import(work: Path, csv_dir: Path, symbols: list[str]) -> float:
    """The floor: the same rows, as one CSV, through ``sqlite3 .import`` into
    the same table (same schema and pragmas).  Building the combined CSV is
    not timed."""
    combined = work / "combined.csv"
    schema = None
    writer = None
    for symbol in symbols:
        table = pacsv.read_csv(csv_dir / f"{symbol}.csv",
                               convert_options=pacsv.ConvertOptions(column_types={"Date": pa.string()}))
        n = table.num_rows
        out = pa.table({"symbol": pa.array([symbol] * n), **{c: table.column(c) for c in table.column_names},
                        "provider": pa.array(["file"] * n), "run_id": pa.array(["floor-run"] * n),
                        "ingested_at": pa.array(["2026-11-22T00:00:00Z"] * n)})
        if writer is None:
            schema = out.schema
            writer = pacsv.CSVWriter(combined, schema, write_options=pacsv.WriteOptions(
                include_header=False, quoting_style="none"))
        writer.write_table(out.cast(schema))
    writer.close()
    floor_db = work / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{floor_db}{suffix}").unlink(missing_ok=True)
    Database(floor_db).close()          # same schema (migrations) and pragmas
    script = (f"PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n"
              f".import --csv {combined} price_history\n")
    t0 = time.perf_counter()
    subprocess.run(["sqlite3", str(floor_db)], input=script, text=True, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    combined.unlink()
    return elapsed


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def timed_command(work: Path, args: list[str]) -> dict:
    """One operator command, cold interpreter, as the runbook runs it."""
    env = dict(os.environ, RUNTIME_DIR=str(work / "runtime"), LOGS_DIR=str(work / "logs"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    return {"seconds": round(time.perf_counter() - t0, 2), "exit": proc.returncode}


def append_session(csv_dir: Path, symbols: list[str], session: dt.date, seed: int = 11) -> None:
    """One new Yahoo-style row per file: the next session's bar."""
    rng = np.random.default_rng(seed)
    for symbol in symbols:
        close = round(float(50 * np.exp(rng.normal(0, 0.2))), 4)
        with open(csv_dir / f"{symbol}.csv", "a") as fh:
            fh.write(f"{session},{close},{round(close * 1.01, 4)},{round(close * 0.99, 4)},{close},{close},"
                     f"{int(rng.integers(100_000, 5_000_000))}\n")


def run_ingest(work: Path, csv_dir: Path, universe: Path, db: Path, mode: str = "deep_backfill",
               as_of: dt.date = AS_OF) -> dict:
    """Run ingest_history.py as the operator would; wall time and peak RSS."""
    cmd = [sys.executable, str(REPO / "ingest_history.py"), f"--mode={mode}", "--provider", "file",
           "--data-dir", str(csv_dir), "--universe", str(universe), "--db", str(db),
           "--as-of", as_of.isoformat(), "--json"]
    env = dict(os.environ, RUNTIME_DIR=str(work / "runtime"), LOGS_DIR=str(work / "logs"))
    out_path, err_path = work / "ingest.out", work / "ingest.err"
    t0 = time.perf_counter()
    peak_tree = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        # The ingest runs a worker process: sample the whole tree's RSS (the
        # sum), since wait4's ru_maxrss is only the largest single process.
        while proc.poll() is None:
            peak_tree = max(peak_tree, tree_rss_kib(proc.pid))
            time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    code = proc.returncode
    if code != 0:
        raise SystemExit(f"ingest failed ({code}): {err_path.read_text()[-2000:]}")
    out = out_path.read_text()
    report = json.loads(out)
    return {"seconds": elapsed, "peak_rss_mib": peak_tree / 1024, "rows_written": report["rows_written"],
            "status": report["status"]}


def run_bench(symbols: int, work: Path, keep: bool = False) -> dict:
    """Generate, floor, first run, re-run; return the figures."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    window = backfill_window("XNYS", AS_OF, 1260)
    dates = expected_sessions("XNYS", window.start, window.end).to_numpy()
    names = symbol_names(symbols)
    csv_dir = work / "csv"
    t0 = time.perf_counter()
    generate_csvs(csv_dir, names, dates)
    gen_s = time.perf_counter() - t0
    universe = work / "universe.json"
    write_universe(universe, names)

    floor_s = floor_import(work, csv_dir, names)
    db = work / "bench.db"
    first = run_ingest(work, csv_dir, universe, db)
    with Database(db) as store:
        hash_first = store.bars.content_hash(include_provenance=True)
        rows = store.table_count("price_history")
        types = store.conn.execute("SELECT typeof(volume), typeof(close), COUNT(*) FROM price_history "
                                   "GROUP BY 1, 2").fetchall()
    second = run_ingest(work, csv_dir, universe, db)
    with Database(db) as store:
        hash_second = store.bars.content_hash(include_provenance=True)
        runs = store.table_count("ingestion_audit_runs")
    verify_backfill = timed_command(work, [str(REPO / "verify_backfill.py"), "--strict", "--json", "--db", str(db),
                                           "--universe", str(universe), "--as-of", AS_OF.isoformat()])
    verify_status = timed_command(work, [str(REPO / "verify_db_status.py"), "--json", "--db", str(db),
                                         "--universe", str(universe), "--as-of", AS_OF.isoformat()])
    next_session = dt.date(2026, 11, 20)
    append_session(csv_dir, names, next_session)
    incremental = run_ingest(work, csv_dir, universe, db, mode="incremental", as_of=next_session)
    result = {
        "symbols": symbols, "rows": rows, "generate_s": round(gen_s, 2),
        "floor_import_s": round(floor_s, 2),
        "first_run_s": round(first["seconds"], 2), "first_vs_floor": round(first["seconds"] / floor_s, 2),
        "rerun_s": round(second["seconds"], 2), "rerun_vs_first": round(second["seconds"] / first["seconds"], 2),
        "peak_rss_mib_first_process_tree": round(first["peak_rss_mib"], 1),
        "peak_rss_mib_rerun_process_tree": round(second["peak_rss_mib"], 1),
        "hash_identical": hash_first == hash_second, "runs_recorded": runs,
        "rows_written_rerun": second["rows_written"], "storage_types": types,
        "verify_backfill_strict_s": verify_backfill["seconds"], "verify_backfill_exit": verify_backfill["exit"],
        "verify_db_status_s": verify_status["seconds"], "verify_db_status_exit": verify_status["exit"],
        "incremental_one_session_s": round(incremental["seconds"], 2),
        "incremental_rows_written": incremental["rows_written"],
    }
    if not keep:
        shutil.rmtree(csv_dir)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=6000)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "backfill")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV files")
    args = parser.parse_args()
    if not shutil.which("sqlite3"):
        raise SystemExit("sqlite3 command-line shell not found (apt-get install sqlite3): it is the floor")
    result = run_bench(args.symbols, args.work, args.keep)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

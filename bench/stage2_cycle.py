"""Stage 2 cycle-time benchmark (issue 9): the default universe
(configs/universe.json, 25 symbols) after a synthetic deep backfill, in a
runtime of its own under a temporary directory (RUNTIME_DIR / LOGS_DIR;
nothing is written into the repository).

What is measured, each figure against a peer measured in the same run:

1. ``python main.py --run-once --mode=paper`` as the operator runs it (a
   subprocess: interpreter start, imports, gates, the 25 ARIMA fits, the
   orders, the ticket) on a fresh copy of the backfilled runtime - the
   first run (orders sent) and a second run on the same runtime (the
   idempotent re-run: nothing more sent).  Peer: ``python -c "import
   cli.stage2"``, the interpreter start and imports alone.
2. In-process, ``TradingAgent.build_snapshot`` (bars, the 25 ARIMA fits,
   features, alpha) as the product runs it - BLAS pinned to one thread by
   ``threadpool_limits(limits=1)`` - against the same build with the
   pinning lifted (the same code, ``threadpool_limits(limits=None)``: BLAS
   keeps its own threads), alternated run by run; first on the machine as
   it is, then while a second process keeps both cores busy (a numpy
   matmul loop with two OpenBLAS threads), which is the oversubscription
   the pinning is there to avoid.  Wall and CPU seconds of this process.
3. One decision cycle on an existing snapshot (``TradingAgent.run_cycle``:
   governance states, book, decide, execute on the paper broker): the
   first cycle of a session on a fresh book (every order sent) and the
   steady-state cycle (nothing left to send), plus one whole daemon tick
   (``TradingDaemon.tick``: kill switch, sinks check, the cycle, the
   ticket) - what every tick of the daemon costs between refreshes.

    python bench/stage2_cycle.py              # --repeat 3: 3-5 minutes on 2 cores
    python bench/stage2_cycle.py --repeat 1   # a quick look (about 2 minutes)
    python bench/stage2_cycle.py --json       # the figures as one JSON document

Prints the machine (cores, Python, numpy, the BLAS libraries threadpoolctl
sees, OPENBLAS_CORETYPE as found), a table (median, min, max over the
repetitions) and the load average before and after each part: the machine is shared,
so a figure is only compared with its peer from the same run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The load: a numpy matmul loop on both cores (OpenBLAS's own two threads).
LOAD_SCRIPT = """
import numpy as np
a = np.random.default_rng(0).random((800, 800))
while True:
    a @ a
"""


# ------------------------------------------------------------------ helpers
def runtime_env(root: Path) -> dict[str, str]:
    """The environment of an operator command in the runtime under ``root``
    (default universe and settings, whatever this shell points at)."""
    env = dict(os.environ, RUNTIME_DIR=str(root / "runtime"), LOGS_DIR=str(root / "logs"))
    for name in ("SETTINGS_FILE", "UNIVERSE_FILE"):
        env.pop(name, None)
    return env


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": [round(v, 4) for v in values]}


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, Any]:
    import numpy as np
    import threadpoolctl

    import data.quality.checks  # noqa: F401 - loads scipy's BLAS as the product does, so both are listed
    from statsmodels.tsa.arima.model import ARIMA  # noqa: F401

    return {
        "nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(), "python": platform.python_version(), "numpy": np.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "blas": [{"library": "/".join(Path(d["filepath"]).parts[-2:]),
                  **{k: d.get(k) for k in ("internal_api", "version", "architecture", "threading_layer",
                                           "num_threads")}} for d in threadpoolctl.threadpool_info()],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "loadavg_start": list(os.getloadavg()),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def copy_runtime(base: Path, dest: Path) -> Path:
    """A fresh copy of the backfilled runtime (database, governance; not the
    raw archive, which Stage 2 never reads)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base / "runtime", dest / "runtime", ignore=shutil.ignore_patterns("raw"))
    (dest / "logs").mkdir(parents=True, exist_ok=True)
    return dest


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


# ------------------------------------------------------------------ set-up
def backfill(base: Path) -> dict[str, Any]:
    """Stage 1 as run_offline.py runs it: a synthetic deep backfill of the
    default universe into the runtime under ``base``."""
    cmd = [sys.executable, str(REPO / "ingest_history.py"), "--mode=deep_backfill", "--provider", "synthetic",
           "--json"]
    seconds, proc = timed_run(cmd, runtime_env(base))
    if proc.returncode != 0:
        raise SystemExit(f"deep backfill failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    return {"seconds": round(seconds, 2), "status": report.get("status"), "rows_written": report.get("rows_written")}


# ------------------------------------------------------------- 1. run-once
ORDERS = re.compile(r"(\d+) order\(s\) sent, (\d+) filled")


def run_once_subprocess(base: Path, work: Path, repeat: int) -> dict[str, Any]:
    """``python main.py --run-once --mode=paper`` twice on each of ``repeat``
    fresh copies of the runtime, alternated with the import-only peer."""
    first, second, imports = [], [], []
    orders_first, orders_second = set(), set()
    cmd = [sys.executable, str(REPO / "main.py"), "--run-once", "--mode=paper"]
    peer = [sys.executable, "-c", "import cli.stage2"]
    for i in range(repeat):
        root = copy_runtime(base, work / f"run-once-{i}")
        env = runtime_env(root)
        s, proc = timed_run(peer, env)
        if proc.returncode != 0:
            raise SystemExit(f"import peer failed: {proc.stderr[-2000:]}")
        imports.append(s)
        for times, orders in ((first, orders_first), (second, orders_second)):
            s, proc = timed_run(cmd, env)
            if proc.returncode != 0:
                raise SystemExit(f"main.py --run-once exited {proc.returncode}: {proc.stdout[-1500:]}"
                                 f"{proc.stderr[-1500:]}")
            found = ORDERS.search(proc.stdout)
            orders.add(int(found.group(1)) if found else -1)
            times.append(s)
        shutil.rmtree(root)
    return {"first": summary(first), "second": summary(second), "imports": summary(imports),
            "orders_first": sorted(orders_first), "orders_second": sorted(orders_second)}


# ------------------------------------------------------------- 2. snapshot
class Stage2InProcess:
    """An agent built as ``trading.stage2.run_stage2`` builds it (paper
    broker, operator log, staleness rule) on the runtime under ``root``."""

    def __init__(self, root: Path):
        env = runtime_env(root)
        for name in ("RUNTIME_DIR", "LOGS_DIR"):
            os.environ[name] = env[name]
        for name in ("SETTINGS_FILE", "UNIVERSE_FILE"):
            os.environ.pop(name, None)
        from core.inputs import load_inputs
        from core.logs import OperatorLog
        from core.runtime import RuntimePaths
        from database import open_store
        from trading.agent import TradingAgent
        from trading.brokers import PaperBroker
        from trading.config import load_trading_config
        from trading.gate import staleness_check
        from trading.stage2 import select_entries

        universe, settings = load_inputs(None, os.environ)
        entries = select_entries(universe, ())
        config = load_trading_config(settings, "paper", os.environ)
        self.paths = RuntimePaths.resolve(None)
        self.db = open_store(self.paths.db)
        self.log = OperatorLog(self.paths.logs, run_id=f"bench-{root.name}", module="trading")
        self.agent = TradingAgent(self.db, config, PaperBroker(self.db, config), entries, self.paths, log=self.log,
                                  staleness=staleness_check(settings, entries, None))

    def close(self) -> None:
        self.log.close()
        self.db.close()


def _unpinned(**_: Any):
    """``threadpool_limits`` as build_snapshot calls it, with the limit lifted."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=None)


def timed_build(stage2: Stage2InProcess, pinned: bool) -> tuple[float, float, Any]:
    patch = contextlib.nullcontext() if pinned else mock.patch("trading.agent.threadpool_limits", _unpinned)
    with patch:
        c0, t0 = time.process_time(), time.perf_counter()
        snapshot = stage2.agent.build_snapshot(stage2.db)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, snapshot


def blas_threads_during_build(stage2: Stage2InProcess, pinned: bool) -> list[int]:
    """The BLAS thread counts threadpoolctl reports from inside the fits
    (the progress callback of the first symbol)."""
    import threadpoolctl
    seen: list[int] = []

    def progress(label: str, done: int, total: int) -> None:
        if done == 1:
            seen.extend(d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas")
        raise _Enough

    patch = contextlib.nullcontext() if pinned else mock.patch("trading.agent.threadpool_limits", _unpinned)
    with patch, contextlib.suppress(_Enough):
        stage2.agent.build_snapshot(stage2.db, progress)
    return seen


class _Enough(Exception):
    pass


def same_forecasts(a, b) -> bool:
    if set(a.forecasts) != set(b.forecasts):
        return False
    return all(a.forecasts[s].model == b.forecasts[s].model
               and abs(a.forecasts[s].expected_return - b.forecasts[s].expected_return) < 1e-9
               for s in a.forecasts)


def snapshot_builds(stage2: Stage2InProcess, repeat: int) -> dict[str, Any]:
    """Pinned vs unpinned builds, alternated (ABAB / BABA) so a change in
    the machine's load falls on both."""
    out: dict[str, list[float]] = {"pinned": [], "unpinned": [], "pinned_cpu": [], "unpinned_cpu": []}
    reference, identical = None, True
    for i in range(repeat):
        for pinned in ((True, False) if i % 2 == 0 else (False, True)):
            wall, cpu, snapshot = timed_build(stage2, pinned)
            key = "pinned" if pinned else "unpinned"
            out[key].append(wall)
            out[f"{key}_cpu"].append(cpu)
            reference = reference or snapshot
            identical = identical and same_forecasts(reference, snapshot)
    result: dict[str, Any] = {k: summary(v) for k, v in out.items()}
    result["forecasts_identical"] = identical
    result["models"] = sorted({f.model for f in reference.forecasts.values()})
    result["fits"] = len(reference.forecasts)
    return result


@contextlib.contextmanager
def cpu_load(processes: int = 1):
    """A numpy matmul loop on both cores (OpenBLAS's default two threads),
    stopped (this process's own child, by pid) when the block ends."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    procs = [subprocess.Popen([sys.executable, "-c", LOAD_SCRIPT], env=env) for _ in range(processes)]
    try:
        time.sleep(1.5)                     # let the load reach both cores
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


# --------------------------------------------------------------- 3. cycles
def decision_cycles(base: Path, work: Path, snapshot, repeat: int, cycles: int) -> dict[str, Any]:
    """``run_cycle`` on an existing snapshot: the session's first cycle on
    a fresh book (``repeat`` fresh copies), then ``cycles`` steady-state
    cycles and daemon ticks on the last copy."""
    from trading.daemon import TradingDaemon

    first, orders_first = [], set()
    steady, orders_steady, ticks = [], set(), []
    for i in range(repeat):
        stage2 = Stage2InProcess(copy_runtime(base, work / f"cycle-{i}"))
        try:
            stage2.agent.snapshot = snapshot
            t0 = time.perf_counter()
            report = stage2.agent.run_cycle()
            first.append(time.perf_counter() - t0)
            orders_first.add(len(report.results))
            if i < repeat - 1:
                continue
            for _ in range(cycles):
                t0 = time.perf_counter()
                report = stage2.agent.run_cycle()
                steady.append(time.perf_counter() - t0)
                orders_steady.add(len(report.results))
            daemon = TradingDaemon(stage2.agent, stage2.paths, stage2.log, data_refresh_minutes=10 ** 9,
                                   heartbeat_seconds=5.0, refresh=None)
            for _ in range(cycles):
                t0 = time.perf_counter()
                daemon.tick()
                ticks.append(time.perf_counter() - t0)
            if daemon.agent.safe_mode.active or daemon.sink_problems or daemon.halted:
                raise SystemExit("the daemon ticks did not trade (safe mode, sinks or kill switch)")
        finally:
            stage2.close()
    return {"first": summary(first), "orders_first": sorted(orders_first), "steady": summary(steady),
            "orders_steady": sorted(orders_steady), "tick": summary(ticks)}


# ------------------------------------------------------------------- main
def run_bench(repeat: int, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"command": "python bench/stage2_cycle.py" + (f" --repeat {repeat}" if repeat != 3 else ""),
                              "repeat": repeat, "machine": machine()}
    base = work / "base"
    result["backfill"] = backfill(base)

    result["loadavg_run_once"] = [loadavg()]
    result["run_once"] = run_once_subprocess(base, work, repeat)
    result["loadavg_run_once"].append(loadavg())

    stage2 = Stage2InProcess(copy_runtime(base, work / "snapshot"))
    try:
        _, _, snapshot = timed_build(stage2, True)          # warm-up: statsmodels imported, caches filled
        result["blas_threads_in_fits"] = {"pinned": blas_threads_during_build(stage2, True),
                                          "unpinned": blas_threads_during_build(stage2, False)}
        result["loadavg_snapshot_idle"] = [loadavg()]
        result["snapshot_idle"] = snapshot_builds(stage2, repeat)
        result["loadavg_snapshot_idle"].append(loadavg())
        with cpu_load():
            result["loadavg_snapshot_loaded"] = [loadavg()]
            result["snapshot_loaded"] = snapshot_builds(stage2, repeat)
            result["loadavg_snapshot_loaded"].append(loadavg())
    finally:
        stage2.close()

    result["loadavg_cycles"] = [loadavg()]
    result["cycles"] = decision_cycles(base, work, snapshot, repeat, cycles=10 * repeat)
    result["loadavg_cycles"].append(loadavg())
    return result


def table(r: dict[str, Any]) -> str:
    def row(label: str, s: dict[str, float], unit: str = "s", note: str = "") -> str:
        scale, fmt = (1000.0, "{:.1f} ms") if unit == "ms" else (1.0, "{:.2f} s")
        cells = [fmt.format(s[k] * scale) for k in ("median", "min", "max")]
        return f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {s['n']} | {note} |"

    ro, idle, loaded, cy = r["run_once"], r["snapshot_idle"], r["snapshot_loaded"], r["cycles"]

    def load(key: str) -> str:
        return "load {} -> {}".format(*r[key])

    def ratio(d: dict[str, Any]) -> str:
        return f"{d['unpinned']['median'] / d['pinned']['median']:.2f}x pinned"

    lines = [
        "| figure | median | min | max | n | note |",
        "|---|---|---|---|---|---|",
        row("`python -c \"import cli.stage2\"` (peer: interpreter + imports)", ro["imports"],
            note=load("loadavg_run_once")),
        row("`main.py --run-once --mode=paper`, first run", ro["first"],
            note=f"{'/'.join(map(str, ro['orders_first']))} orders sent"),
        row("`main.py --run-once --mode=paper`, second run (idempotent)", ro["second"],
            note=f"{'/'.join(map(str, ro['orders_second']))} orders sent"),
        row(f"build_snapshot, {idle['fits']} fits, BLAS pinned (product), machine as found", idle["pinned"],
            note=f"CPU {idle['pinned_cpu']['median']:.2f} s; {load('loadavg_snapshot_idle')}"),
        row("build_snapshot, BLAS unpinned (peer), machine as found", idle["unpinned"],
            note=f"CPU {idle['unpinned_cpu']['median']:.2f} s; {ratio(idle)}"),
        row("build_snapshot, pinned, + matmul load on both cores", loaded["pinned"],
            note=f"CPU {loaded['pinned_cpu']['median']:.2f} s; {load('loadavg_snapshot_loaded')}"),
        row("build_snapshot, unpinned, + matmul load on both cores", loaded["unpinned"],
            note=f"CPU {loaded['unpinned_cpu']['median']:.2f} s; {ratio(loaded)}"),
        row("run_cycle on a snapshot, session's first (fresh book)", cy["first"], "ms",
            note=f"{'/'.join(map(str, cy['orders_first']))} orders sent; {load('loadavg_cycles')}"),
        row("run_cycle on a snapshot, steady state", cy["steady"], "ms",
            note=f"{'/'.join(map(str, cy['orders_steady']))} orders sent"),
        row("daemon tick (sinks + run_cycle + ticket)", cy["tick"], "ms"),
    ]
    return "\n".join(lines)


def describe_machine(m: dict[str, Any]) -> str:
    blas = "; ".join(f"{b['internal_api']} {b['version']} ({b['library']}, {b['architecture']}, "
                     f"{b['threading_layer']}, {b['num_threads']} threads)" for b in m["blas"])
    return (f"nproc {m['nproc']} ({m['cpu']}), Python {m['python']}, numpy {m['numpy']}, "
            f"threadpoolctl {m['threadpoolctl']}: {blas}; OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE'] or '(unset)'}; "
            f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="repetitions of each figure (the cycles: 10 x N); default 3 (each unpinned build "
                             "on the loaded machine takes about a minute)")
    parser.add_argument("--work", type=Path, default=None,
                        help="working directory outside the repository, kept afterwards (default: a new "
                             "temporary directory, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    work = args.work or Path(tempfile.mkdtemp(prefix="stage2-cycle-"))
    if work.resolve().is_relative_to(REPO):
        raise SystemExit(f"{work}: the working directory must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        result = run_bench(args.repeat, work)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(describe_machine(result["machine"]))
    print(f"BLAS threads inside the fits: pinned {result['blas_threads_in_fits']['pinned']}, "
          f"unpinned {result['blas_threads_in_fits']['unpinned']}; forecasts identical pinned/unpinned: "
          f"{result['snapshot_idle']['forecasts_identical'] and result['snapshot_loaded']['forecasts_identical']} "
          f"({', '.join(result['snapshot_idle']['models'])})")
    print(f"synthetic deep backfill: {result['backfill']['seconds']} s, {result['backfill']['rows_written']} rows, "
          f"{result['backfill']['status']}; whole benchmark {result['total_seconds']} s\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

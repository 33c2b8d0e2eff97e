"""Market data for Stage 2 tests: seeded geometric random walks written to a
tmp store through the real ``db.bars.write_symbols``, with governance
states set through ``db.governance.set_states``.

Deliberately independent of ``data/providers/synthetic.py`` (built in
parallel): these frames only need to look like stored daily bars.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from database.manager import Database, SymbolWrite

# Business days from here give 2023-xx sessions; fixed so tickets are stable.
START = "2023-01-02"
# The last bar of the default 300-row seed: Stage 2 judges such a store as
# of its own date (--as-of), as an operator replaying a historical store would.
SEEDED_AS_OF = "2024-02-23"


def random_walk_bars(rows: int, *, seed: int, start: str = START, price: float = 100.0,
                     drift: float = 0.0004, vol: float = 0.015) -> pd.DataFrame:
    """Daily bars (bars contract) of a seeded log-normal walk on weekdays."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=rows)
    rets = rng.normal(drift, vol, rows)
    close = price * np.exp(np.cumsum(rets))
    open_ = close * np.exp(rng.normal(0, vol / 4, rows))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 3, rows)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 3, rows)))
    volume = rng.integers(100_000, 2_000_000, rows)
    return pd.DataFrame({"date": dates.to_numpy(dtype="datetime64[ns]"), "open": open_, "high": high,
                         "low": low, "close": close, "adj_close": close,
                         "volume": pd.array(volume, dtype="Int64")})


def write_bars(db: Database, frames: Mapping[str, pd.DataFrame], *, provider: str = "file",
               run_id: str = "seed-run") -> None:
    writes = [SymbolWrite(symbol=s, provider=provider, frame=f,
                          audit={"asset_class": "stocks", "providers_tried": [provider], "provider_used": provider,
                                 "outcome": "SUCCESS", "rows_received": len(f), "duplicate_rows": 0})
              for s, f in frames.items()]
    if run_id not in {r["run_id"] for r in db.runs.recent(limit=1000)}:
        db.runs.begin(run_id, "deep_backfill", None, {}, "2024-01-01T00:00:00Z", len(writes))
    db.bars.write_symbols(run_id, "2024-01-01T00:00:00Z", writes)


def set_states(db: Database, states: Mapping[str, str], *, quality: float = 0.95,
               ts: str = "2024-01-01T00:00:00Z") -> None:
    summary = db.bars.history_summary(list(states))
    db.governance.set_states([{"symbol": s, "asset_class": "stocks", "state": st, "reason": f"test: {st}",
                               "rows": summary[s]["rows"], "quality_score": quality if st != "DEGRADED" else 0.5,
                               "first_date": summary[s]["first_date"], "last_date": summary[s]["last_date"],
                               "provider": "file"} for s, st in states.items()], ts=ts)


def seed_store(db_path: Path, symbols: Sequence[str], *, rows: int = 300, provider: str = "file",
               states: Mapping[str, str] | None = None, drifts: Mapping[str, float] | None = None,
               vol: float = 0.015) -> None:
    """A store with ``rows`` bars per symbol and the given states (default ACTIVE).
    Each symbol's walk is seeded by its name, so it does not depend on call order."""
    drifts = drifts or {}
    with Database(db_path) as db:
        frames = {s: random_walk_bars(rows, seed=sum(map(ord, s)), price=50.0 + sum(map(ord, s)) % 100,
                                      drift=drifts.get(s, 0.0008), vol=vol)
                  for s in symbols}
        write_bars(db, frames, provider=provider)
        db.runs.finish("seed-run", status="SUCCESS", symbols_succeeded=len(frames), symbols_failed=0,
                       rows_written=rows * len(frames), providers_used={provider: len(frames)},
                       verification="PASSED")
        set_states(db, states if states is not None else {s: "ACTIVE" for s in symbols})


def write_universe(path: Path, symbols: Sequence[str]) -> Path:
    path.write_text(json.dumps({"version": 1, "symbols": [{"symbol": s} for s in symbols]}))
    return path


def write_settings(path: Path, *, required_sessions: int = 250, **trading: object) -> Path:
    """A settings file with a small history requirement and [trading] knobs."""
    lines = ["[history]", f"required_sessions = {required_sessions}", "degraded_min_rows = 200", "", "[trading]"]
    defaults = {"forecast_window": 120, "var_window": 120}
    for key, value in {**defaults, **trading}.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{key} = [{', '.join(str(v) for v in value)}]")
        else:
            lines.append(f"{key} = {value!r}")
    path.write_text("\n".join(lines) + "\n")
    return path

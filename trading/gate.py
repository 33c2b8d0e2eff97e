"""What must hold before Stage 2 may trade, and the halts when it does not.

* History gate: every enabled universe symbol has at least
  ``required_sessions`` stored rows and a governance row.  Otherwise the
  runbook's ``[DATA_GOVERNANCE]`` block is printed, appended to
  ``runtime/governance_halt.log`` and the command exits 3.
* Kill switch: ``runtime/KILL_SWITCH`` present -> no order, halt recorded.
* Live gate: credentials, an explicit confirmation, Stage 1 verified.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from database.manager import Database
from trading.config import LIVE_CONFIRM_ENV, TradingConfig

HALT_BLOCK_TEMPLATE = (
    "[DATA_GOVERNANCE]\n"
    "Missing historical data detected\n"
    "Symbols affected: {count}\n"
    "Required rows per symbol: {required}\n"
    "Action required: Run ingest_history.py\n"
    "System halted intentionally"
)


@dataclass(frozen=True)
class HistoryGap:
    """Symbols that lack their history (and why, per symbol)."""

    required: int
    missing: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.missing

    def block(self) -> str:
        return halt_block(len(self.missing), self.required)


def halt_block(count: int, required: int = 1260) -> str:
    """The runbook's governance halt block, verbatim."""
    return HALT_BLOCK_TEMPLATE.format(count=count, required=required)


def check_history(db_path: Path, symbols: Iterable[str], required: int) -> HistoryGap:
    """Which of ``symbols`` lack ``required`` rows or a governance row.
    A missing database means every symbol lacks its history (and the file
    is not created: Stage 2 never makes an empty store)."""
    symbols = list(symbols)
    if not Path(db_path).exists():
        return HistoryGap(required, {s: "no database" for s in symbols})
    with Database(db_path, readonly=True) as db:
        summary = db.bars.history_summary(symbols)
        governed = db.governance.states(symbols)
    missing = {}
    for s in symbols:
        rows = summary[s]["rows"]
        if rows < required:
            missing[s] = f"{rows} rows < {required}"
        elif s not in governed:
            missing[s] = "no governance row"
    return HistoryGap(required, missing)


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_halt_log(path: Path, text: str, *, reason: str) -> None:
    """Append one halt record: a stamped header line then the text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"--- {_stamp()} {reason}\n{text.rstrip()}\n")
        fh.flush()
        os.fsync(fh.fileno())


def kill_switch_engaged(path: Path) -> bool:
    return path.exists()


def kill_switch_message(path: Path) -> str:
    return f"KILL_SWITCH present at {path}: trading halted; remove the file to resume"


def stage1_verified(db: Database) -> tuple[bool, str]:
    """Stage 1 is verified when the most recent ingestion run that was
    verified at all passed its verification."""
    for run in db.runs.recent(limit=200):
        verdict = run.get("verification")
        if verdict:
            if str(verdict).upper() == "PASSED":
                return True, f"run {run['run_id']} verification PASSED"
            return False, f"latest verified run {run['run_id']} verification {verdict}"
    return False, "no verified ingestion run (run ingest_history.py --mode=verify)"


def live_refusals(config: TradingConfig, *, confirm_flag: bool, env: Mapping[str, str] | None = None) -> list[str]:
    """Why live trading may not start (empty when it may), checked without
    touching the network or the database."""
    env = os.environ if env is None else env
    reasons = []
    if config.live_credentials is None:
        reasons.append("ALPACA_API_KEY and ALPACA_SECRET_KEY must be set")
    confirmed = confirm_flag or env.get(LIVE_CONFIRM_ENV, "").strip().lower() == "yes"
    if not confirmed:
        reasons.append(f"live trading needs --confirm-live or {LIVE_CONFIRM_ENV}=yes")
    return reasons

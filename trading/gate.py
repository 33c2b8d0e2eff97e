"""What must hold before Stage 2 may trade, and the halts when it does not.

* History gate: every enabled universe symbol has its required rows, a
  governance row, and a fresh last bar at the as-of date (rule 6 of
  ``data/governance/rules.py``).  Otherwise the runbook's ``[DATA_GOVERNANCE]``
  block (or its stale-data twin naming ``ingest_history.py --mode=incremental``)
  is printed, appended to ``runtime/governance_halt.log`` and the command exits 3.
* Kill switch: ``runtime/KILL_SWITCH`` present -> no order, halt recorded.
* Live gate: credentials, an explicit confirmation, Stage 1 verified.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from core.clock import audit_stamp, utc_now
from core.settings import Settings
from core.universe import UniverseEntry
from data.governance.rules import GovernanceRules, ages_at
from database import Store, open_store, store_exists
from reports.stage1 import judge_store
from trading.config import LIVE_CONFIRM_ENV, TradingConfig

log = logging.getLogger(__name__)

HALT_BLOCK_TEMPLATE = (
    "[DATA_GOVERNANCE]\n"
    "Missing historical data detected\n"
    "Symbols affected: {count}\n"
    "Required rows per symbol: {required}\n"
    "Action required: Run ingest_history.py\n"
    "System halted intentionally"
)
STALE_BLOCK_TEMPLATE = (
    "[DATA_GOVERNANCE]\n"
    "Stale historical data detected\n"
    "Symbols affected: {count}\n"
    "Last complete session: {expected} (as of {as_of})\n"
    "Action required: Run ingest_history.py --mode=incremental\n"
    "System halted intentionally"
)


@dataclass(frozen=True)
class HistoryGap:
    """Why Stage 2 may not start, symbol by symbol: missing history (the
    runbook's halt) or stale history (rule 6 in data/governance/rules.py)."""

    required: int
    missing: dict[str, str]
    stale: dict[str, int | None] = field(default_factory=dict)
    as_of: dt.date | None = None
    expected_last: dict[str, str] = field(default_factory=dict)
    may_start: bool = False          # rule 6: Stage1Verdict.stage2_may_start

    @property
    def ok(self) -> bool:
        return self.may_start

    @property
    def reason(self) -> str:
        return "missing_history" if self.missing else "stale_history"

    def block(self) -> str:
        if self.missing:
            return halt_block(len(self.missing), self.required)
        expected = ", ".join(f"{d} ({c})" for c, d in sorted(self.expected_last.items()))
        return STALE_BLOCK_TEMPLATE.format(count=len(self.stale), expected=expected, as_of=self.as_of)


def halt_block(count: int, required: int) -> str:
    """The runbook's governance halt block, verbatim."""
    return HALT_BLOCK_TEMPLATE.format(count=count, required=required)


def check_history(db_path: str | os.PathLike, entries: Sequence[UniverseEntry], settings: Settings, as_of: dt.date,
                  now: dt.datetime | None = None) -> HistoryGap:
    """Which of the enabled ``entries`` stop Stage 2 at ``as_of``: lacking
    the required rows or a governance row, or stale (the rules' one
    definition, :func:`reports.stage1.judge_store`).  A missing database
    means every symbol lacks its history (and the file is not created:
    Stage 2 never makes an empty store)."""
    entries = [e for e in entries if e.enabled]
    required = GovernanceRules.from_settings(settings).required_rows
    if not store_exists(db_path):
        return HistoryGap(required, {e.symbol: "no database" for e in entries}, as_of=as_of)
    with open_store(db_path, readonly=True) as db:
        verdict = judge_store(db, entries, settings, as_of, now)
    missing = dict(verdict.missing_history) or ({} if entries else {"(universe)": "no enabled symbol"})
    return HistoryGap(required, missing, stale=dict(verdict.stale), as_of=as_of,
                      expected_last=verdict.expected_last, may_start=verdict.stage2_may_start)


def staleness_check(settings: Settings, entries: Sequence[UniverseEntry],
                    as_of: dt.date | None) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """Rule 4 for a running Stage 2: ``check(last_dates)`` -> the symbols
    whose last bar is too old to trade on at ``as_of`` (None: the wall
    clock's date, so a daemon left running sees its data age), each with
    why and the command that fixes it.  Same measure as the start gate
    (``rules.ages_at``: sessions of the symbol's own calendar, excused
    sessions left out); answers are cached per (date, hour, last dates)."""
    rules = GovernanceRules.from_settings(settings)
    calendars = {e.symbol: settings.history.calendar_of(e) for e in entries}
    cache: dict[tuple, dict[str, str]] = {}

    def check(last_dates: Mapping[str, str]) -> dict[str, str]:
        now = utc_now()
        day = as_of or now.date()
        key = (day, now.hour, tuple(sorted(last_dates.items())))
        if key not in cache:
            cache.clear()
            known = [(s, calendars[s], d) for s, d in last_dates.items() if s in calendars]
            expected, ages = ages_at(rules, known, day, None if as_of else now)
            cache[key] = {
                s: (f"last bar {last_dates[s]} is {age} session(s) behind {expected[calendars[s]]} "
                    f"({calendars[s]}): run python ingest_history.py --mode=incremental")
                for s, age in ages.items() if age is not None and not rules.is_fresh(age)}
        return cache[key]
    return check


def append_halt_log(path: Path, text: str, *, reason: str) -> bool:
    """Append one halt record: a stamped header line then the text.

    A halt log that cannot be written (a full or read-only disk - the very
    moment an operator reaches for the kill switch) never undoes or delays
    the halt: the failure is logged (the console, and the Stage 2 log files
    that still work) and False is returned."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"--- {audit_stamp()} {reason}\n{text.rstrip()}\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        log.error("%s: the halt record (%s) could not be written: %s; the halt stands", path, reason, exc)
        return False
    return True


RESUME_REASON = "resume"


def append_resume_log(path: Path, text: str) -> bool:
    """Append a resume record: the halt before it is over.  The runbook's
    "Governance log shows no halts" reads the log's last record
    (:func:`open_halt`)."""
    return append_halt_log(path, text, reason=RESUME_REASON)


def open_halt(path: Path) -> str | None:
    """The header of the halt log's last record when it is a halt no
    resume followed (``--- <ts> <reason>``), else None."""
    if not path.exists():
        return None
    last = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("--- "):
                last = line.rstrip("\n")
    if last is None or last.endswith(f" {RESUME_REASON}"):
        return None
    return last


def kill_switch_engaged(path: Path) -> bool:
    return path.exists()


def kill_switch_message(path: Path) -> str:
    return f"KILL_SWITCH present at {path}: trading halted; remove the file to resume"


def stage1_passed(db: Store, entries: Sequence[UniverseEntry], settings: Settings,
                  as_of: dt.date) -> tuple[bool, str]:
    """Live mode's gate: Stage 1 passed at ``as_of`` (rule 5 of
    data/governance/rules.py: every enabled symbol ACTIVE, with its rows,
    fresh), asked of the store as it is now, not of a run's recorded verdict."""
    verdict = judge_store(db, entries, settings, as_of)
    if verdict.passed:
        return True, f"{verdict.symbols} symbol(s) ACTIVE, complete and fresh as of {as_of}"
    sample = ", ".join(f"{f['symbol']} {f['state']} {f['reason']}" for f in verdict.failing[:5])
    return False, (f"{len(verdict.failing)} of {verdict.symbols} symbol(s) fail it ({sample}); "
                   f"run verify_backfill.py --symbols")


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

"""Planning a run: each symbol's calendar, window and request, or the
outcome decided without fetching (up to date, dead-lettered).

Planning only reads the store.  What it finds to change (dead letters whose
universe entry was edited) is handed to the run, which changes it once every
check that can refuse the run has passed.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Sequence

from core import calendar as cal
from core.settings import Settings
from core.universe import UniverseEntry
from data.collectors.ingestion.options import IngestionError, IngestOptions
from data.providers.base import FetchRequest
from database import Store
from data.governance.rules import GovernanceRules

# Outcomes in ingestion_audit.outcome (NO_VALID_PROVIDER is the router's).
SUCCESS = "SUCCESS"
FAILED = "FAILED"
UP_TO_DATE = "UP_TO_DATE"
SKIPPED_DEAD_LETTER = "SKIPPED_DEAD_LETTER"


@dataclass
class SymbolPlan:
    """One symbol's part of a run: its request, or the outcome decided
    without fetching (``request`` None)."""

    entry: UniverseEntry
    calendar: str
    request: FetchRequest | None
    expected_rows: int
    outcome: str | None = None       # pre-decided outcome (UP_TO_DATE, SKIPPED_DEAD_LETTER)
    note: str | None = None


@dataclass
class RunPlan:
    """Every symbol's plan, in universe order, and the dead letters the run
    revives because the operator edited their universe entry."""

    symbols: list[SymbolPlan]
    entry_changed: list[str] = field(default_factory=list)


def entry_fingerprint(entry: UniverseEntry) -> str:
    """The universe entry as stored with a dead letter (an edit revives it)."""
    return json.dumps(entry.__dict__, sort_keys=True)


def plan_symbols(db: Store, entries: Sequence[UniverseEntry], settings: Settings,
                 options: IngestOptions, as_of: dt.date) -> RunPlan:
    """Decide each symbol's window.  Incremental runs start at the session
    after the last stored one and never re-read stored history.  Symbols the
    operator revives (``options.revive``) and dead letters whose universe
    entry changed are planned as live.  Raises IngestionError (a start after
    the end) or ``core.calendar.CalendarError``; writes nothing."""
    required = GovernanceRules.from_settings(settings).required_rows
    last_dates = db.bars.last_dates(e.symbol for e in entries) if options.mode == "incremental" else {}
    dead = {s: st for s, st in db.fetch_state.by_symbol().items() if st.get("dead_letter") and s not in options.revive}
    changed = [e.symbol for e in entries if e.symbol in dead and dead[e.symbol].get("dead_letter_entry")
               and dead[e.symbol]["dead_letter_entry"] != entry_fingerprint(e)]
    for symbol in changed:
        dead.pop(symbol)
    plans = []
    for entry in entries:
        calendar = settings.history.calendar_of(entry)
        if entry.symbol in dead and options.mode == "incremental":
            plans.append(SymbolPlan(entry, calendar, None, 0, SKIPPED_DEAD_LETTER,
                                    "dead-lettered after repeated failures"))
            continue
        note = None
        if options.mode == "range" or (options.start or options.end):
            start = options.start or cal.backfill_window(calendar, as_of, required, options.now).start
            end = options.end or cal.last_complete_session(calendar, as_of, options.now)
            if start > end:
                raise IngestionError(f"--start {start} is after --end {end}")
            try:
                window = cal.session_range(calendar, start, end)
            except cal.EmptyRangeError as exc:
                raise IngestionError(f"--start/--end: {exc} (the calendar of {entry.symbol}): nothing to fetch; "
                                     f"choose dates that include a session") from exc
        elif options.mode == "incremental" and last_dates.get(entry.symbol):
            last = dt.date.fromisoformat(last_dates[entry.symbol])
            end = cal.last_complete_session(calendar, as_of, options.now)
            start = cal.next_session(calendar, last)
            if start > end:
                plans.append(SymbolPlan(entry, calendar, None, 0, UP_TO_DATE, f"last stored session {last}"))
                continue
            window = cal.range_window(calendar, start, end)
        else:
            window = cal.backfill_window(calendar, as_of, required, options.now)
            if options.mode == "incremental":
                note = "no stored history: full window"
        request = FetchRequest(entry.symbol, entry.asset_class, window.start, window.end, calendar)
        plans.append(SymbolPlan(entry, calendar, request, window.sessions, note=note))
    return RunPlan(plans, changed)

""""Has Stage 1 passed?" asked of a store: the standing of every enabled
universe symbol read from the store, judged by the governance rules
(:func:`data.governance.rules.judge_stage1`, the one definition).

Used by ``verify_backfill.py``, ``verify_db_status.py``, the ingestion's
verification and Stage 2's start gate, so they cannot disagree.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Sequence

from core.calendar import CalendarError
from core.settings import Settings
from core.universe import UniverseEntry
from data.governance.rules import GovernanceRules, Stage1Verdict, SymbolStanding, judge_stage1
from database import Store


def standings(db: Store, entries: Sequence[UniverseEntry], settings: Settings,
              history: Mapping[str, Mapping[str, Any]] | None = None) -> list[SymbolStanding]:
    """Each entry's governance row and stored history, as the rules take them
    (``history``: a ``history_summary`` the caller already read, covering
    every entry; the full GROUP BY costs about a second on 7.56 M rows)."""
    symbols = [e.symbol for e in entries]
    states = db.governance.states()
    if history is None:
        history = db.bars.history_summary(symbols)
    out = []
    for entry in entries:
        gov = states.get(entry.symbol) or {}
        stored = history[entry.symbol]
        out.append(SymbolStanding(
            symbol=entry.symbol, calendar=settings.history.calendar_of(entry),
            state=gov.get("state"), reason=gov.get("reason"), governed_rows=int(gov.get("rows") or 0),
            stored_rows=int(stored["rows"]), last_date=stored["last_date"], quality_score=gov.get("quality_score")))
    return out


def judge_store(db: Store, entries: Sequence[UniverseEntry], settings: Settings, as_of: dt.date,
                now: dt.datetime | None = None,
                history: Mapping[str, Mapping[str, Any]] | None = None) -> Stage1Verdict:
    """Stage 1's verdict on ``db`` for the enabled ``entries`` at ``as_of``.
    An as-of date the calendars cannot place is a usage error naming --as-of
    (``CalendarError``, exit 64)."""
    rules = GovernanceRules.from_settings(settings)
    try:
        return judge_stage1(rules, standings(db, [e for e in entries if e.enabled], settings, history), as_of, now)
    except CalendarError as exc:
        # A date flag the calendars cannot place is a usage error (exit 64), not
        # malformed input (docs/decisions.md D-E2).
        raise CalendarError(f"--as-of: {exc}") from exc

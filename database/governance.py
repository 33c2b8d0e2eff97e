"""Governance: ``symbol_governance``, ``data_quality`` and ``governance_events``.

Owns each symbol's current state (and the reason), the quality row behind
it (one per symbol per run), and the append-only event log: every state
change writes its event in the same transaction, and other decisions (dead
letters, revivals, safe mode, verification) append theirs.  The rules that
decide a state live in ``data.governance``; this module only keeps them.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from core.clock import record_stamp
from database.values import insert_sql, sql_value, to_json, where

if TYPE_CHECKING:
    from database.manager import SqliteSession

_GOV_COLUMNS = ("symbol", "asset_class", "state", "reason", "rows", "quality_score",
                "first_date", "last_date", "provider", "run_id", "updated_at")
_QUALITY_COLUMNS = ("run_id", "symbol", "rows", "expected_rows", "missing_dates_pct", "duplicate_pct",
                    "zero_negative_flag", "extreme_spike_flag", "quality_score", "findings",
                    "payload_duplicates", "computed_at")


class GovernanceRepository:
    """Governance states, quality rows and events (``db.governance``; ``database.interfaces.GovernanceStore``)."""

    def __init__(self, sql: SqliteSession):
        self._sql = sql

    # ------------------------------------------------------------------ states
    def set_states(self, states: Sequence[Mapping[str, Any]], *, run_id: str | None = None,
                   ts: str | None = None) -> list[dict[str, Any]]:
        """Upsert current states (symbol_governance) and append a
        STATE_CHANGE governance event for every symbol whose state or reason
        changed, in one transaction.  Returns the changes written."""
        ts = ts or record_stamp()
        changes = []
        cols = _GOV_COLUMNS
        with self._sql.transaction():
            for st in states:
                row = {c: sql_value(st.get(c)) for c in cols}
                row["updated_at"] = row["updated_at"] or ts
                row["run_id"] = row["run_id"] or run_id
                before = self._sql.one("SELECT state, reason FROM symbol_governance WHERE symbol = ?",
                                       (row["symbol"],))
                self._sql.run(insert_sql("symbol_governance", cols, key=1), tuple(row[c] for c in cols))
                if before is None or before[0] != row["state"] or before[1] != row["reason"]:
                    change = {"symbol": row["symbol"], "before_state": before[0] if before else None,
                              "after_state": row["state"], "reason": row["reason"]}
                    self._insert_event("STATE_CHANGE", row["run_id"], row["symbol"], change["before_state"],
                                       row["state"], row["reason"],
                                       {"rows": row["rows"], "quality_score": row["quality_score"]}, ts)
                    changes.append(change)
        return changes

    def states(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Current governance row per symbol (all symbols, or those named)."""
        rows = {r["symbol"]: r for r in self._sql.dicts("SELECT * FROM symbol_governance")}
        if symbols is None:
            return rows
        return {s: rows[s] for s in symbols if s in rows}

    # ----------------------------------------------------------------- quality
    def write_quality(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ``data_quality`` rows (one per symbol per run) in one
        transaction; ``findings`` may be a list (stored as JSON)."""
        if not rows:
            return 0
        now = record_stamp()
        values = []
        for r in rows:
            row = dict(r)
            if not isinstance(row.get("findings"), (str, type(None))):
                row["findings"] = to_json(row["findings"])
            row["computed_at"] = row.get("computed_at") or now
            row["payload_duplicates"] = row.get("payload_duplicates") or 0
            values.append(tuple(sql_value(row.get(c)) for c in _QUALITY_COLUMNS))
        with self._sql.transaction():
            self._sql.run_many(insert_sql("data_quality", _QUALITY_COLUMNS, key=2), values)
        return len(values)

    def latest_quality(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The data_quality row behind each symbol's current governance state
        (the run that last governed it), findings decoded.  One join, no scan
        of price_history: this is what the verify commands read."""
        rows = self._sql.dicts("SELECT q.* FROM symbol_governance g JOIN data_quality q "
                               "ON q.run_id = g.run_id AND q.symbol = g.symbol")
        out = {r["symbol"]: _decode_findings(r) for r in rows}
        if symbols is None:
            return out
        return {s: out[s] for s in symbols if s in out}

    # ------------------------------------------------------------------ events
    def record_event(self, event: str, *, run_id: str | None = None, symbol: str | None = None,
                     before_state: str | None = None, after_state: str | None = None,
                     reason: str | None = None, detail: Mapping[str, Any] | None = None,
                     ts: str | None = None) -> None:
        """Append one governance event (``detail`` stored as JSON)."""
        with self._sql.transaction():
            self._insert_event(event, run_id, symbol, before_state, after_state, reason, detail, ts)

    def events(self, limit: int = 50, symbol: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        """Events, newest first (all, or one symbol's, or one kind)."""
        clause, params = where(symbol=symbol, event=event)
        return self._sql.dicts(f"SELECT * FROM governance_events{clause} ORDER BY id DESC LIMIT ?", [*params, limit])

    def _insert_event(self, event, run_id, symbol, before_state, after_state, reason, detail, ts) -> None:
        self._sql.run(
            "INSERT INTO governance_events(ts, run_id, symbol, event, before_state, after_state, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ts or record_stamp(), run_id, symbol, event, before_state, after_state, reason,
             to_json(detail) if detail is not None else None))


def _decode_findings(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("findings"), str):
        row["findings"] = json.loads(row["findings"])
    return row

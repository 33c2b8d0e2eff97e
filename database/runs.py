"""Runs: ``ingestion_audit_runs``, ``ingestion_audit`` and ``provider_health``.

Owns what one ingest (or verify, or repair) run records about itself: the
run row from start to finish, one audit row per symbol (written with the
symbol's bars, see ``database.bars``) and each provider's health numbers.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from core.clock import record_stamp
from database.values import insert_sql, sql_value, to_json

if TYPE_CHECKING:
    from database.manager import SqliteSession

_AUDIT_COLUMNS = ("run_id", "symbol", "asset_class", "providers_tried", "provider_used", "outcome",
                  "error_code", "error_message", "window_start", "window_end", "expected_rows",
                  "rows_received", "duplicate_rows", "rows_written", "adjustment", "raw_archive", "latency_ms")
_HEALTH_COLUMNS = ("run_id", "provider", "requests", "successes", "failures", "p50_ms", "p95_ms",
                   "circuit_open", "entitled", "detail")


class RunRepository:
    """Runs, their per-symbol audit rows and provider health (``db.runs``; ``database.interfaces.RunStore``)."""

    def __init__(self, sql: SqliteSession):
        self._sql = sql

    def begin(self, run_id: str, mode: str, as_of: str | None, params: Mapping[str, Any],
              started_at: str, symbols_requested: int) -> None:
        """Record a run as RUNNING."""
        with self._sql.transaction():
            self._sql.run(
                "INSERT INTO ingestion_audit_runs(run_id, mode, started_at, as_of, status, symbols_requested, params) "
                "VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)",
                (run_id, mode, started_at, as_of, symbols_requested, json.dumps(params, sort_keys=True, default=str)))

    def finish(self, run_id: str, *, status: str, symbols_succeeded: int, symbols_failed: int,
               rows_written: int, providers_used: Mapping[str, int], verification: str | None = None) -> None:
        """Close a run with its outcome (``verification`` kept when None)."""
        with self._sql.transaction():
            self._sql.run(
                "UPDATE ingestion_audit_runs SET finished_at = ?, status = ?, symbols_succeeded = ?, "
                "symbols_failed = ?, rows_written = ?, providers_used = ?, verification = COALESCE(?, verification) "
                "WHERE run_id = ?",
                (record_stamp(), status, symbols_succeeded, symbols_failed, rows_written,
                 json.dumps(dict(providers_used), sort_keys=True), verification, run_id))

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        return self._sql.dicts("SELECT * FROM ingestion_audit_runs ORDER BY rowid DESC LIMIT ?", (limit,))

    def audit_rows(self, run_id: str) -> list[dict[str, Any]]:
        """One run's audit rows, by symbol."""
        return self._sql.dicts("SELECT * FROM ingestion_audit WHERE run_id = ? ORDER BY symbol", (run_id,))

    def add_audit_row(self, audit: Mapping[str, Any]) -> None:
        """Upsert one symbol's audit row (inside the caller's transaction:
        ``BarRepository.write_symbols`` writes it with the symbol's bars)."""
        row = dict(audit)
        if not isinstance(row.get("providers_tried"), str):
            row["providers_tried"] = json.dumps(row.get("providers_tried") or [], default=str)
        for count in ("rows_received", "duplicate_rows", "rows_written"):
            row[count] = row.get(count) or 0
        self._sql.run(insert_sql("ingestion_audit", _AUDIT_COLUMNS, key=2),
                      tuple(sql_value(row.get(c)) for c in _AUDIT_COLUMNS))

    def write_provider_health(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert each provider's health numbers for one run."""
        with self._sql.transaction():
            for r in rows:
                row = dict(r, run_id=run_id)
                row["failures"] = json.dumps(row.get("failures") or {}, sort_keys=True)
                row["detail"] = to_json(row.get("detail") or {})
                for flag in ("circuit_open", "entitled"):
                    if row.get(flag) is not None:
                        row[flag] = int(bool(row[flag]))
                self._sql.run(insert_sql("provider_health", _HEALTH_COLUMNS, key=2),
                              tuple(sql_value(row.get(c)) for c in _HEALTH_COLUMNS))

    def provider_health(self, run_id: str) -> list[dict[str, Any]]:
        """One run's provider health rows (failures and detail decoded)."""
        rows = self._sql.dicts("SELECT * FROM provider_health WHERE run_id = ? ORDER BY provider", (run_id,))
        for r in rows:
            r["failures"] = json.loads(r["failures"] or "{}")
            r["detail"] = json.loads(r["detail"] or "{}")
        return rows

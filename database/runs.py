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
                  "rows_received", "duplicate_rows", "rows_written", "adjustment", "raw_archive", "latency_ms",
                  "rows_corrected")
_HEALTH_COLUMNS = ("run_id", "provider", "requests", "successes", "failures", "p50_ms", "p95_ms",
                   "circuit_open", "entitled", "detail")


class RunRepository:
    """Runs, their per-symbol audit rows and provider health (``db.runs``; ``database.interfaces.RunStore``)."""

    def __init__(self, sql: SqliteSession):
        self._sql = sql

    def begin(self, run_id: str, mode: str, as_of: str | None, params: Mapping[str, Any],
              started_at: str, symbols_requested: int, owner: Mapping[str, Any] | None = None) -> None:
        """Record a run as RUNNING, with its owner (pid, host, started) when given."""
        owner = owner or {}
        with self._sql.transaction():
            self._sql.run(
                "INSERT INTO ingestion_audit_runs(run_id, mode, started_at, as_of, status, symbols_requested, params, "
                "owner_pid, owner_host, owner_started) VALUES (?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?)",
                (run_id, mode, started_at, as_of, symbols_requested, json.dumps(params, sort_keys=True, default=str),
                 owner.get("pid"), owner.get("host"), owner.get("started")))

    def finish(self, run_id: str, *, status: str, symbols_succeeded: int, symbols_failed: int,
               rows_written: int, providers_used: Mapping[str, int], verification: str | None = None,
               error: str | None = None) -> None:
        """Close a run with its outcome (``verification`` kept when None;
        ``error`` what ended a FAILED or ABORTED run).  Only a run still
        RUNNING: one closed already (ABORTED by the daemon that abandoned its
        refresh, by a signal) keeps that verdict."""
        with self._sql.transaction():
            self._sql.run(
                "UPDATE ingestion_audit_runs SET finished_at = ?, status = ?, symbols_succeeded = ?, "
                "symbols_failed = ?, rows_written = ?, providers_used = ?, verification = COALESCE(?, verification), "
                "error = ? WHERE run_id = ? AND status = 'RUNNING'",
                (record_stamp(), status, symbols_succeeded, symbols_failed, rows_written,
                 json.dumps(dict(providers_used), sort_keys=True), verification, error, run_id))

    def running(self) -> list[dict[str, Any]]:
        """The runs still recorded RUNNING, oldest first."""
        return self._sql.dicts("SELECT * FROM ingestion_audit_runs WHERE status = 'RUNNING' ORDER BY rowid")

    def close_unfinished(self, run_id: str, *, status: str, error: str) -> bool:
        """Close a run that will not reach its own ``finish`` (interrupted,
        failed, or left RUNNING by a dead owner): ``status``, ``error``, the
        finishing time and the counts of the audit rows it committed.  Only
        while it is still RUNNING (its owner may have closed it meanwhile);
        returns whether it was closed."""
        with self._sql.transaction():
            return self._sql.run(
                "UPDATE ingestion_audit_runs SET finished_at = ?, status = ?, error = ?, "
                "symbols_succeeded = (SELECT COUNT(*) FROM ingestion_audit a WHERE a.run_id = ingestion_audit_runs.run_id "
                "AND a.outcome IN ('SUCCESS', 'UP_TO_DATE')), "
                "symbols_failed = (SELECT COUNT(*) FROM ingestion_audit a WHERE a.run_id = ingestion_audit_runs.run_id "
                "AND a.outcome NOT IN ('SUCCESS', 'UP_TO_DATE')), "
                "rows_written = (SELECT COALESCE(SUM(rows_written), 0) FROM ingestion_audit a "
                "WHERE a.run_id = ingestion_audit_runs.run_id) "
                "WHERE run_id = ? AND status = 'RUNNING'",
                (record_stamp(), status, error, run_id)) > 0

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
        for count in ("rows_received", "duplicate_rows", "rows_written", "rows_corrected"):
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

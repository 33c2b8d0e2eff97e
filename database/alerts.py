"""Alerts: ``alerts``, every alert the product raised, delivered or not, and
``alert_state``, the problems still open (one row per alert key).

Owns the append-only record of alerts and the policy's memory across runs
(``core.alerts.AlertPolicy``: dedupe, the nightly cap, recovery notices).
Bodies arrive already redacted (``core.alerts`` redacts before it records);
targets name the service only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from core.clock import record_stamp
from database.values import insert_sql, sql_value, to_json

if TYPE_CHECKING:
    from database.manager import SqliteSession

_ALERT_COLUMNS = ("ts", "run_id", "severity", "title", "body", "outcome", "targets", "artifact", "alert_key", "note")
_PROBLEM_COLUMNS = ("alert_key", "severity", "fingerprint", "title", "source", "first_seen", "last_seen",
                    "occurrences", "sent_severity", "sent_fingerprint", "last_sent")


class AlertRepository:
    """The alerts raised and the problems open (``db.alerts``;
    ``database.interfaces.AlertStore``)."""

    def __init__(self, sql: SqliteSession):
        self._sql = sql

    def record(self, alert: Mapping[str, Any]) -> int:
        """Append one alert (already redacted by the caller); returns its id."""
        row = dict(alert)
        row["ts"] = row.get("ts") or record_stamp()
        if not isinstance(row.get("targets"), (str, type(None))):
            row["targets"] = to_json(row["targets"])
        with self._sql.transaction():
            return self._sql.insert(insert_sql("alerts", _ALERT_COLUMNS),
                                    tuple(sql_value(row.get(c)) for c in _ALERT_COLUMNS))

    def open_problem(self, key: str) -> dict[str, Any] | None:
        """The open problem named ``key`` (its ``alert_state`` row), or None."""
        rows = self._sql.dicts(f"SELECT {', '.join(_PROBLEM_COLUMNS)} FROM alert_state WHERE alert_key = ?", (key,))
        return rows[0] if rows else None

    def save_problem(self, problem: Mapping[str, Any]) -> None:
        """Insert or replace the open problem ``problem["alert_key"]``."""
        with self._sql.transaction():
            self._sql.run(insert_sql("alert_state", _PROBLEM_COLUMNS, key=1),
                          tuple(sql_value(problem.get(c)) for c in _PROBLEM_COLUMNS))

    def clear_problem(self, key: str) -> bool:
        """Forget the open problem ``key``; True when there was one."""
        with self._sql.transaction():
            return self._sql.run("DELETE FROM alert_state WHERE alert_key = ?", (key,)) > 0

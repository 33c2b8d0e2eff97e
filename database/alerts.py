"""Alerts: ``alerts``, every alert the product raised, delivered or not.

Owns the append-only record of alerts.  Bodies arrive already redacted
(``core.alerts`` redacts before it records); targets name the service only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from core.clock import record_stamp
from database.values import insert_sql, sql_value, to_json

if TYPE_CHECKING:
    from database.manager import SqliteSession

_ALERT_COLUMNS = ("ts", "run_id", "severity", "title", "body", "outcome", "targets", "artifact")


class AlertRepository:
    """The alerts raised (``db.alerts``; ``database.interfaces.AlertStore``)."""

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

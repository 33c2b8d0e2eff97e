"""How Python values are kept in the store, shared by the aggregates.

Dates are ISO text ``YYYY-MM-DD``, timestamps ISO-8601 UTC text, JSON
columns text, numbers plain Python ``int``/``float`` (never numpy scalars,
which sqlite3 would store as BLOBs).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Sequence

import numpy as np
import pandas as pd


def sql_value(value: Any) -> Any:
    """A value ready to bind: numpy scalars as Python numbers, dates as text."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return str(value)[:10] if not isinstance(value, dt.datetime) else value.isoformat()
    return value


def to_json(value: Any) -> str:
    """A JSON column's text (keys sorted, so equal values store equal text)."""
    return json.dumps(value, sort_keys=True, default=str)


def where(**equals: Any) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND b = ?`` for the filters given (None: no filter).
    Column names come from our own keyword arguments, never from input."""
    used = [(column, value) for column, value in equals.items() if value is not None and value != ""]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in used), [value for _, value in used]


def insert_sql(table: str, columns: Sequence[str], *, key: int = 0) -> str:
    """``INSERT INTO table(cols) VALUES (?, ...)``; with ``key`` > 0, an
    upsert on the first ``key`` columns that replaces the others."""
    sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    if key:
        sql += (f" ON CONFLICT({', '.join(columns[:key])}) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in columns[key:]))
    return sql

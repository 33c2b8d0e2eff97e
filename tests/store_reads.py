"""Reads (and one seeding write) that only tests need, straight from the
SQLite file: the product has no use for them, so the store does not carry
them (``database/`` keeps what the product calls)."""
from __future__ import annotations

import json
from typing import Any

from database.manager import Database


def _dicts(db: Database, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
    cur = db.conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def orders(db: Database, session: str | None = None, mode: str | None = None) -> list[dict[str, Any]]:
    """Order rows in id order (all, or one session's, or one mode's)."""
    used = [(c, v) for c, v in (("session", session), ("mode", mode)) if v]
    where = " WHERE " + " AND ".join(f"{c} = ?" for c, _ in used) if used else ""
    return _dicts(db, f"SELECT * FROM orders{where} ORDER BY id", [v for _, v in used])


def alerts(db: Database, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recorded alerts, newest first (all runs, or one)."""
    if run_id is None:
        return _dicts(db, "SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))
    return _dicts(db, "SELECT * FROM alerts WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, limit))


def quality_rows(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Every data_quality row of one run, findings decoded."""
    rows = _dicts(db, "SELECT * FROM data_quality WHERE run_id = ? ORDER BY symbol", (run_id,))
    for row in rows:
        if isinstance(row.get("findings"), str):
            row["findings"] = json.loads(row["findings"])
    return rows


def set_run_verification(db: Database, run_id: str, verification: str) -> None:
    """Mark a seeded run PASSED or FAILED, as a verify step would."""
    db.conn.execute("UPDATE ingestion_audit_runs SET verification = ? WHERE run_id = ?", (verification, run_id))


def corrections(db: Database, symbol: str | None = None) -> list[dict[str, Any]]:
    """Stored bars a later write corrected, with their old values
    (``price_history_corrections``, migration 0009), oldest first."""
    where, params = (" WHERE symbol = ?", (symbol,)) if symbol else ("", ())
    return _dicts(db, f"SELECT * FROM price_history_corrections{where} ORDER BY corrected_at, symbol, date", params)

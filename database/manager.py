"""The only module that writes SQL.

Connections (WAL, busy_timeout, foreign keys, synchronous=NORMAL), the
versioned schema (``PRAGMA user_version`` + ``migrations/NNNN_*.sql``) and
every read and write the rest of the system needs.  Writes are idempotent
upserts in one transaction per batch: a crash at any instant leaves the
database consistent and a re-run converges to the same content.  An upsert
that brings identical values changes nothing, not even the row's provenance
(provider, run_id, ingested_at), so re-running a backfill leaves the
database byte-for-byte equal in content.

This module knows no provider: it stores frames that follow the bars
contract (``data.providers.base``) and plain records.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from core.clock import record_stamp

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

BAR_STORE_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "adj_close", "volume",
                     "provider", "run_id", "ingested_at")
_MARKET_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
# Columns bound per row (symbol/provider/run_id/ingested_at are bound once).
_ROW_COLUMNS = ("date", "open", "high", "low", "close", "adj_close", "volume")
# SQLite's default SQLITE_MAX_VARIABLE_NUMBER is 32766 (3.32+).
_MAX_ROWS_PER_INSERT = (32766 - 4) // len(_ROW_COLUMNS)

SYNTHETIC_PROVIDER = "synthetic"


class StoreError(Exception):
    """A store-level refusal (schema too new, data origins mixed, ...)."""


class MixedOriginError(StoreError):
    """Synthetic bars must never share a database with vendor bars."""


def available_migrations() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _MIGRATION_RE.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return found


SCHEMA_VERSION = max(n for n, _ in available_migrations())


@dataclass
class SymbolWrite:
    """Everything one symbol's successful fetch writes, in one transaction."""

    symbol: str
    provider: str
    frame: pd.DataFrame           # bars contract, duplicates already collapsed
    audit: dict[str, Any]         # ingestion_audit columns (run_id/symbol filled in)


class Database:
    """A connection to the store with the operations the system needs."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise StoreError(f"{self.path}: database not found (run ingest_history.py first)")
            uri = f"file:{self.path}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        # 64 MiB page cache: a multi-GB price_history keeps its B-tree interior hot.
        self.conn.execute("PRAGMA cache_size = -65536")
        if not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.migrate()
        else:
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than this code ({SCHEMA_VERSION})")

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply every migration newer than ``user_version``; return the version."""
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {current} is newer than this code ({SCHEMA_VERSION})")
        for number, path in available_migrations():
            if number <= current:
                continue
            script = path.read_text()
            # executescript commits first; run the migration and the version
            # bump as one transaction so a crash never half-applies it.
            self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        return self.schema_version()

    def integrity_check(self, quick: bool = False) -> str:
        pragma = "quick_check" if quick else "integrity_check"
        rows = self.conn.execute(f"PRAGMA {pragma}").fetchall()
        return "; ".join(r[0] for r in rows)

    # ------------------------------------------------------------ store meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM store_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO store_meta(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def data_origin(self) -> str | None:
        """'synthetic', 'vendor', or None for a store with no bars yet."""
        return self.get_meta("data_origin")

    def check_origin(self, provider: str) -> None:
        """Refuse to mix synthetic and vendor bars in one database."""
        wanted = "synthetic" if provider == SYNTHETIC_PROVIDER else "vendor"
        have = self.data_origin()
        if have is not None and have != wanted:
            raise MixedOriginError(
                f"{self.path} holds {have} data; refusing to write {wanted} bars from '{provider}'. "
                f"Use a separate database (--db or RUNTIME_DIR) for {wanted} data.")

    # ------------------------------------------------------------------- runs
    def begin_run(self, run_id: str, mode: str, as_of: str | None, params: Mapping[str, Any],
                  started_at: str, symbols_requested: int) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO ingestion_audit_runs(run_id, mode, started_at, as_of, status, symbols_requested, params) "
                "VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)",
                (run_id, mode, started_at, as_of, symbols_requested, json.dumps(params, sort_keys=True, default=str)))

    def finish_run(self, run_id: str, *, status: str, symbols_succeeded: int, symbols_failed: int,
                   rows_written: int, providers_used: Mapping[str, int], verification: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE ingestion_audit_runs SET finished_at = ?, status = ?, symbols_succeeded = ?, "
                "symbols_failed = ?, rows_written = ?, providers_used = ?, verification = COALESCE(?, verification) "
                "WHERE run_id = ?",
                (record_stamp(), status, symbols_succeeded, symbols_failed, rows_written,
                 json.dumps(dict(providers_used), sort_keys=True), verification, run_id))

    def set_run_verification(self, run_id: str, verification: str) -> None:
        with self.transaction():
            self.conn.execute("UPDATE ingestion_audit_runs SET verification = ? WHERE run_id = ?",
                              (verification, run_id))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM ingestion_audit_runs ORDER BY rowid DESC LIMIT ?", (limit,))

    def audit_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM ingestion_audit WHERE run_id = ? ORDER BY symbol", (run_id,))

    # ------------------------------------------------------------------- bars
    def write_symbols(self, run_id: str, ingested_at: str, writes: Sequence[SymbolWrite],
                      audit_only: Sequence[Mapping[str, Any]] = ()) -> int:
        """One transaction: upsert each symbol's bars and corporate actions,
        its audit row and fetch state; plus the audit rows of symbols that
        wrote nothing (failed, up to date), counting failures in fetch_state.
        Returns the number of bar rows inserted or changed."""
        if not writes and not audit_only:
            return 0
        changed = 0
        with self.transaction():
            for w in writes:
                changed += self._write_symbol(run_id, ingested_at, w)
            for f in audit_only:
                self._insert_audit(dict(f, run_id=run_id))
                if f.get("count_failure", True):
                    self.conn.execute(
                        "INSERT INTO fetch_state(symbol, consecutive_failures, last_error_code, updated_at) "
                        "VALUES (?, 1, ?, ?) ON CONFLICT(symbol) DO UPDATE SET "
                        "consecutive_failures = consecutive_failures + 1, "
                        "last_error_code = excluded.last_error_code, updated_at = excluded.updated_at",
                        (f["symbol"], f.get("error_code"), ingested_at))
        return changed

    def _write_symbol(self, run_id: str, ingested_at: str, w: SymbolWrite) -> int:
        """Bars, corporate actions, audit row and fetch state of one symbol
        (inside the caller's transaction)."""
        self.check_origin(w.provider)
        if self.data_origin() is None:
            self._set_meta("data_origin", "synthetic" if w.provider == SYNTHETIC_PROVIDER else "vendor")
        n = self._upsert_bars(w.symbol, w.provider, run_id, ingested_at, w.frame)
        self._upsert_actions(w.symbol, w.provider, run_id, w.frame)
        self._insert_audit(dict(w.audit, run_id=run_id, symbol=w.symbol, rows_written=n))
        last = self.conn.execute("SELECT MAX(date) FROM price_history WHERE symbol = ?", (w.symbol,)).fetchone()[0]
        self.conn.execute(
            "INSERT INTO fetch_state(symbol, last_date, last_success_run, last_provider, "
            "consecutive_failures, last_error_code, dead_letter, dead_letter_since, updated_at) "
            "VALUES (?, ?, ?, ?, 0, NULL, 0, NULL, ?) "
            "ON CONFLICT(symbol) DO UPDATE SET last_date = excluded.last_date, "
            "last_success_run = excluded.last_success_run, last_provider = excluded.last_provider, "
            "consecutive_failures = 0, last_error_code = NULL, dead_letter = 0, "
            "dead_letter_since = NULL, updated_at = excluded.updated_at",
            (w.symbol, last, run_id, w.provider, ingested_at))
        return n

    # ----------------------------------------------------------------- repairs
    _REPLACED_COLUMNS = ("repair_run_id", "symbol", "date", "change", "open", "high", "low", "close",
                         "adj_close", "volume", "provider", "run_id", "ingested_at", "replaced_at")

    def write_repair(self, run_id: str, ingested_at: str, write: SymbolWrite,
                     replaced: Sequence[Mapping[str, Any]]) -> int:
        """One transaction: keep the rows a repair replaces (and the dates it
        inserts) in ``price_history_replaced``, then write the repaired bars."""
        cols = self._REPLACED_COLUMNS
        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO price_history_replaced({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [tuple(_sql_value(dict(r, repair_run_id=run_id, symbol=write.symbol,
                                       replaced_at=ingested_at).get(c)) for c in cols) for r in replaced])
            return self._write_symbol(run_id, ingested_at, write)

    def replaced_rows(self, repair_run_id: str) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM price_history_replaced WHERE repair_run_id = ? ORDER BY symbol, date",
                           (repair_run_id,))

    def undo_repair(self, repair_run_id: str, ts: str) -> int:
        """Put back the rows a repair replaced and delete the dates it
        inserted; returns the rows restored or deleted."""
        rows = [r for r in self.replaced_rows(repair_run_id) if r["undone_at"] is None]
        with self.transaction():
            for r in rows:
                if r["change"] == "inserted":
                    self.conn.execute("DELETE FROM price_history WHERE symbol = ? AND date = ?",
                                      (r["symbol"], r["date"]))
                else:
                    self.conn.execute(
                        "UPDATE price_history SET open = ?, high = ?, low = ?, close = ?, adj_close = ?, "
                        "volume = ?, provider = ?, run_id = ?, ingested_at = ? WHERE symbol = ? AND date = ?",
                        (r["open"], r["high"], r["low"], r["close"], r["adj_close"], r["volume"], r["provider"],
                         r["run_id"], r["ingested_at"], r["symbol"], r["date"]))
            self.conn.execute("UPDATE price_history_replaced SET undone_at = ? WHERE repair_run_id = ? "
                              "AND undone_at IS NULL", (ts, repair_run_id))
        return len(rows)

    _AUDIT_COLUMNS = ("run_id", "symbol", "asset_class", "providers_tried", "provider_used", "outcome",
                      "error_code", "error_message", "window_start", "window_end", "expected_rows",
                      "rows_received", "duplicate_rows", "rows_written", "adjustment", "raw_archive", "latency_ms")

    def _insert_audit(self, audit: Mapping[str, Any]) -> None:
        row = dict(audit)
        if not isinstance(row.get("providers_tried"), str):
            row["providers_tried"] = json.dumps(row.get("providers_tried") or [], default=str)
        for count in ("rows_received", "duplicate_rows", "rows_written"):
            row[count] = row.get(count) or 0
        cols = self._AUDIT_COLUMNS
        self.conn.execute(
            f"INSERT INTO ingestion_audit({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT(run_id, symbol) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in cols[2:]),
            tuple(_sql_value(row.get(c)) for c in cols))

    def _upsert_bars(self, symbol: str, provider: str, run_id: str, ingested_at: str, frame: pd.DataFrame) -> int:
        n = len(frame)
        if n == 0:
            return 0
        # Per-row values only; symbol, provider, run_id and ingested_at are
        # bound once per statement (?1..?4), which cuts binding work by a third.
        columns = [_date_texts(frame["date"].to_numpy(dtype="datetime64[D]"))]
        for col in ("open", "high", "low", "close", "adj_close"):
            values = frame[col].to_numpy(dtype="float64")
            col_list = values.tolist()
            if np.isnan(values).any():
                col_list = [None if v != v else v for v in col_list]
            columns.append(col_list)
        columns.append(_int_list(frame["volume"]))
        flat = list(itertools.chain.from_iterable(zip(*columns)))
        head = [symbol, provider, run_id, ingested_at]
        width = len(_ROW_COLUMNS)
        changed = 0
        for lo in range(0, n, _MAX_ROWS_PER_INSERT):
            rows = min(_MAX_ROWS_PER_INSERT, n - lo)
            cur = self.conn.execute(_upsert_sql(rows), head + flat[lo * width:(lo + rows) * width])
            changed += cur.rowcount
        return changed

    def _upsert_actions(self, symbol: str, provider: str, run_id: str, frame: pd.DataFrame) -> None:
        rows = []
        dates = None
        for col, action, neutral in (("dividend", "dividend", 0.0), ("split_ratio", "split", 1.0)):
            if col not in frame.columns:
                continue
            values = frame[col].to_numpy(dtype="float64")
            mask = ~np.isnan(values) & (values != neutral) & (values != 0.0)
            if not mask.any():
                continue
            if dates is None:
                dates = frame["date"].to_numpy(dtype="datetime64[D]").astype(str)
            rows.extend((symbol, d, action, float(v), provider, run_id) for d, v in zip(dates[mask], values[mask]))
        if rows:
            self.conn.executemany(
                "INSERT INTO corporate_actions(symbol, date, action, value, provider, run_id) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(symbol, date, action) DO UPDATE SET value = excluded.value, "
                "provider = excluded.provider, run_id = excluded.run_id "
                "WHERE corporate_actions.value IS NOT excluded.value", rows)

    def last_bar_dates(self, symbols: Iterable[str]) -> dict[str, str | None]:
        """Last stored session per symbol (an index seek each, not a scan)."""
        out = {}
        for s in symbols:
            out[s] = self.conn.execute("SELECT MAX(date) FROM price_history WHERE symbol = ?", (s,)).fetchone()[0]
        return out

    def bar_count(self, symbol: str, start: str, end: str) -> int:
        """Stored bars of ``symbol`` in [start, end] (an index range count)."""
        return self.conn.execute("SELECT COUNT(*) FROM price_history WHERE symbol = ? AND date BETWEEN ? AND ?",
                                 (symbol, start, end)).fetchone()[0]

    def history_summary(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """rows / first / last date per symbol (all stored symbols, or those
        named, with zeros for a symbol holding nothing).  One ``GROUP BY``
        that only counts (MIN/MAX over text dates in the same scan double its
        cost), then two primary-key seeks per symbol for the first and last
        date; a few named symbols of a large store are counted by seeks."""
        named = list(symbols) if symbols is not None else None
        if named is not None and len(named) <= 500:
            counts = dict(self.conn.execute(
                f"SELECT symbol, COUNT(*) FROM price_history WHERE symbol IN ({', '.join('?' * len(named))}) "
                "GROUP BY symbol", named).fetchall()) if named else {}
        else:
            counts = dict(self.conn.execute("SELECT symbol, COUNT(*) FROM price_history GROUP BY symbol").fetchall())
        out = {}
        for s in (named if named is not None else sorted(counts)):
            rows = counts.get(s, 0)
            if rows:
                out[s] = {"rows": rows,
                          "first_date": self.conn.execute("SELECT MIN(date) FROM price_history WHERE symbol = ?",
                                                          (s,)).fetchone()[0],
                          "last_date": self.conn.execute("SELECT MAX(date) FROM price_history WHERE symbol = ?",
                                                         (s,)).fetchone()[0]}
            else:
                out[s] = {"rows": 0, "first_date": None, "last_date": None}
        return out

    def read_bars(self, symbol: str, start: str | None = None, end: str | None = None, *,
                  include_provenance: bool = False) -> pd.DataFrame:
        """Stored bars of one symbol as a bars-contract frame (+ provider, and
        run_id / ingested_at with ``include_provenance``)."""
        extra = ["provider", "run_id", "ingested_at"] if include_provenance else ["provider"]
        sql = (f"SELECT date, open, high, low, close, adj_close, volume, {', '.join(extra)} FROM price_history "
               "WHERE symbol = ?")
        params: list[Any] = [symbol]
        if start:
            sql += " AND date >= ?"
            params.append(str(start))
        if end:
            sql += " AND date <= ?"
            params.append(str(end))
        sql += " ORDER BY date"
        rows = self.conn.execute(sql, params).fetchall()
        # Column-wise through numpy: pandas' row-tuple constructor costs three
        # times the SQLite read, and governance reads 1,260 rows per symbol.
        columns = list(zip(*rows)) if rows else [()] * (7 + len(extra))
        data: dict[str, Any] = {"date": _parse_dates(columns[0])}
        for i, col in enumerate(("open", "high", "low", "close", "adj_close"), start=1):
            data[col] = np.array(columns[i], dtype="float64")   # NULL -> nan
        volume = columns[6]
        if None in volume:
            data["volume"] = pd.array(volume, dtype="Int64")
        else:
            data["volume"] = pd.array(np.array(volume, dtype="int64"), dtype="Int64")
        for i, col in enumerate(extra, start=7):
            data[col] = np.array(columns[i], dtype=object)
        return pd.DataFrame(data)

    def corporate_actions(self, symbol: str) -> pd.DataFrame:
        rows = self.conn.execute("SELECT date, action, value, provider FROM corporate_actions WHERE symbol = ? "
                                 "ORDER BY date, action", (symbol,)).fetchall()
        frame = pd.DataFrame(rows, columns=["date", "action", "value", "provider"])
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        return frame

    def content_hash(self, *, include_provenance: bool = False) -> str:
        """SHA-256 over price_history in key order.  By default only the
        market columns (what a strategy reads); ``include_provenance`` adds
        provider, run_id and ingested_at."""
        cols = ["symbol", "date", *_MARKET_COLUMNS, "provider"]
        if include_provenance:
            cols += ["run_id", "ingested_at"]
        h = hashlib.sha256()
        cur = self.conn.execute(f"SELECT {', '.join(cols)} FROM price_history ORDER BY symbol, date")
        while True:
            rows = cur.fetchmany(50000)
            if not rows:
                break
            h.update(repr(rows).encode())
        return h.hexdigest()

    # ---------------------------------------------------- fetch state / events
    def fetch_states(self) -> dict[str, dict[str, Any]]:
        return {r["symbol"]: r for r in self._dicts("SELECT * FROM fetch_state")}

    def record_event(self, event: str, *, run_id: str | None = None, symbol: str | None = None,
                     before_state: str | None = None, after_state: str | None = None,
                     reason: str | None = None, detail: Mapping[str, Any] | None = None,
                     ts: str | None = None) -> None:
        with self.transaction():
            self._insert_event(event, run_id, symbol, before_state, after_state, reason, detail, ts)

    def _insert_event(self, event, run_id, symbol, before_state, after_state, reason, detail, ts) -> None:
        self.conn.execute(
            "INSERT INTO governance_events(ts, run_id, symbol, event, before_state, after_state, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ts or record_stamp(), run_id, symbol, event, before_state, after_state, reason,
             json.dumps(detail, sort_keys=True, default=str) if detail is not None else None))

    def events(self, limit: int = 50, symbol: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(symbol=symbol, event=event)
        return self._dicts(f"SELECT * FROM governance_events{where} ORDER BY id DESC LIMIT ?", [*params, limit])

    # -------------------------------------------------- dead letters / health
    def mark_dead_letters(self, threshold: int, ts: str, fingerprints: Mapping[str, str]) -> list[str]:
        """Dead-letter every symbol with ``threshold`` or more consecutive
        failures that is not one already; returns the newly dead-lettered."""
        with self.transaction():
            rows = self.conn.execute(
                "UPDATE fetch_state SET dead_letter = 1, dead_letter_since = ? "
                "WHERE dead_letter = 0 AND consecutive_failures >= ? RETURNING symbol", (ts, threshold)).fetchall()
            newly = sorted(r[0] for r in rows)
            self.conn.executemany("UPDATE fetch_state SET dead_letter_entry = ? WHERE symbol = ?",
                                  [(fingerprints.get(s), s) for s in newly])
        return newly

    def revive_dead_letters(self, symbols: Iterable[str], ts: str) -> list[str]:
        """Clear the dead-letter state (and the failure count) of ``symbols``;
        returns those that were dead-lettered."""
        revived = []
        with self.transaction():
            for symbol in symbols:
                row = self.conn.execute(
                    "UPDATE fetch_state SET dead_letter = 0, dead_letter_since = NULL, dead_letter_entry = NULL, "
                    "consecutive_failures = 0, updated_at = ? WHERE symbol = ? AND dead_letter = 1 RETURNING symbol",
                    (ts, symbol)).fetchone()
                if row:
                    revived.append(symbol)
        return revived

    def dead_letters(self) -> list[dict[str, Any]]:
        return self._dicts("SELECT symbol, consecutive_failures, last_error_code, last_date, dead_letter_since "
                           "FROM fetch_state WHERE dead_letter = 1 ORDER BY symbol")

    _HEALTH_COLUMNS = ("run_id", "provider", "requests", "successes", "failures", "p50_ms", "p95_ms",
                       "circuit_open", "entitled", "detail")

    def write_provider_health(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        cols = self._HEALTH_COLUMNS
        with self.transaction():
            for r in rows:
                row = dict(r, run_id=run_id)
                row["failures"] = json.dumps(row.get("failures") or {}, sort_keys=True)
                row["detail"] = json.dumps(row.get("detail") or {}, sort_keys=True, default=str)
                for flag in ("circuit_open", "entitled"):
                    if row.get(flag) is not None:
                        row[flag] = int(bool(row[flag]))
                self.conn.execute(
                    f"INSERT INTO provider_health({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                    "ON CONFLICT(run_id, provider) DO UPDATE SET "
                    + ", ".join(f"{c} = excluded.{c}" for c in cols[2:]),
                    tuple(_sql_value(row.get(c)) for c in cols))

    def provider_health(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._dicts("SELECT * FROM provider_health WHERE run_id = ? ORDER BY provider", (run_id,))
        for r in rows:
            r["failures"] = json.loads(r["failures"] or "{}")
            r["detail"] = json.loads(r["detail"] or "{}")
        return rows

    # ------------------------------------------------------------ governance
    _GOV_COLUMNS = ("symbol", "asset_class", "state", "reason", "rows", "quality_score",
                    "first_date", "last_date", "provider", "run_id", "updated_at")

    def set_governance(self, states: Sequence[Mapping[str, Any]], *, run_id: str | None = None,
                       ts: str | None = None) -> list[dict[str, Any]]:
        """Upsert current states (symbol_governance) and append a
        STATE_CHANGE governance event for every symbol whose state or reason
        changed, in one transaction.  Returns the changes written."""
        ts = ts or record_stamp()
        changes = []
        with self.transaction():
            for st in states:
                row = {c: _sql_value(st.get(c)) for c in self._GOV_COLUMNS}
                row["updated_at"] = row["updated_at"] or ts
                row["run_id"] = row["run_id"] or run_id
                before = self.conn.execute("SELECT state, reason FROM symbol_governance WHERE symbol = ?",
                                           (row["symbol"],)).fetchone()
                cols = self._GOV_COLUMNS
                self.conn.execute(
                    f"INSERT INTO symbol_governance({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                    "ON CONFLICT(symbol) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols[1:]),
                    tuple(row[c] for c in cols))
                if before is None or before[0] != row["state"] or before[1] != row["reason"]:
                    change = {"symbol": row["symbol"], "before_state": before[0] if before else None,
                              "after_state": row["state"], "reason": row["reason"]}
                    self._insert_event("STATE_CHANGE", row["run_id"], row["symbol"], change["before_state"],
                                       row["state"], row["reason"],
                                       {"rows": row["rows"], "quality_score": row["quality_score"]}, ts)
                    changes.append(change)
        return changes

    def governance_states(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Current governance row per symbol (all symbols, or those named)."""
        rows = {r["symbol"]: r for r in self._dicts("SELECT * FROM symbol_governance")}
        if symbols is None:
            return rows
        return {s: rows[s] for s in symbols if s in rows}

    def table_count(self, table: str) -> int:
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError(table)
        return self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    # ---- quality & governance (issue 3)
    _QUALITY_COLUMNS = ("run_id", "symbol", "rows", "expected_rows", "missing_dates_pct", "duplicate_pct",
                        "zero_negative_flag", "extreme_spike_flag", "quality_score", "findings",
                        "payload_duplicates", "computed_at")

    def write_quality(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ``data_quality`` rows (one per symbol per run) in one
        transaction; ``findings`` may be a list (stored as JSON)."""
        if not rows:
            return 0
        cols = self._QUALITY_COLUMNS
        now = record_stamp()
        values = []
        for r in rows:
            row = dict(r)
            if not isinstance(row.get("findings"), (str, type(None))):
                row["findings"] = json.dumps(row["findings"], sort_keys=True, default=str)
            row["computed_at"] = row.get("computed_at") or now
            row["payload_duplicates"] = row.get("payload_duplicates") or 0
            values.append(tuple(_sql_value(row.get(c)) for c in cols))
        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO data_quality({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                "ON CONFLICT(run_id, symbol) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols[2:]),
                values)
        return len(values)

    def quality_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Every data_quality row of one run (findings decoded)."""
        return [_decode_findings(r) for r in
                self._dicts("SELECT * FROM data_quality WHERE run_id = ? ORDER BY symbol", (run_id,))]

    def latest_quality(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The data_quality row behind each symbol's current governance state
        (the run that last governed it), findings decoded.  One join, no scan
        of price_history: this is what the verify commands read."""
        rows = self._dicts("SELECT q.* FROM symbol_governance g JOIN data_quality q "
                           "ON q.run_id = g.run_id AND q.symbol = g.symbol")
        out = {r["symbol"]: _decode_findings(r) for r in rows}
        if symbols is None:
            return out
        return {s: out[s] for s in symbols if s in out}

    def corporate_actions_by_symbol(self, symbols: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Stored corporate actions grouped by symbol (one query for all);
        symbols without actions are absent."""
        rows = self.conn.execute("SELECT symbol, date, action, value FROM corporate_actions "
                                 "ORDER BY symbol, date, action").fetchall()
        wanted = set(symbols) if symbols is not None else None
        grouped: dict[str, list[tuple]] = {}
        for symbol, date, action, value in rows:
            if wanted is None or symbol in wanted:
                grouped.setdefault(symbol, []).append((date, action, value))
        out = {}
        for symbol, items in grouped.items():
            frame = pd.DataFrame(items, columns=["date", "action", "value"])
            frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
            out[symbol] = frame
        return out

    def governance_counts(self) -> dict[str, int]:
        """Symbols per governance state."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT state, COUNT(*) FROM symbol_governance GROUP BY state")}

    _ALERT_COLUMNS = ("ts", "run_id", "severity", "title", "body", "outcome", "targets", "artifact")

    def record_alert(self, alert: Mapping[str, Any]) -> int:
        """Append one alert (already redacted by the caller); returns its id."""
        row = dict(alert)
        row["ts"] = row.get("ts") or record_stamp()
        if not isinstance(row.get("targets"), (str, type(None))):
            row["targets"] = json.dumps(row["targets"], sort_keys=True, default=str)
        cols = self._ALERT_COLUMNS
        with self.transaction():
            cur = self.conn.execute(f"INSERT INTO alerts({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                    tuple(_sql_value(row.get(c)) for c in cols))
        return int(cur.lastrowid)

    def alerts(self, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded alerts, newest first (all runs, or one)."""
        if run_id is None:
            return self._dicts("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))
        return self._dicts("SELECT * FROM alerts WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, limit))

    # ---- paper broker (issue 5)
    # Stage 2's reads of recent bars and the paper broker's book.  Business
    # rules (fill price, average price, cash arithmetic) live in
    # trading/brokers.py; these methods only read and write rows.

    def read_recent_bars(self, symbol: str, rows: int) -> pd.DataFrame:
        """The last ``rows`` stored bars of one symbol, oldest first (an index
        seek from the end of the symbol's range, not a scan)."""
        cur = self.conn.execute(
            "SELECT date, open, high, low, close, adj_close, volume, provider FROM price_history "
            "WHERE symbol = ? ORDER BY date DESC LIMIT ?", (symbol, int(rows)))
        data = cur.fetchall()[::-1]
        frame = pd.DataFrame(data, columns=["date", "open", "high", "low", "close", "adj_close", "volume", "provider"])
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        for col in ("open", "high", "low", "close", "adj_close"):
            frame[col] = frame[col].astype("float64")
        frame["volume"] = frame["volume"].astype("Int64")
        return frame

    def bar_after(self, symbol: str, date: str) -> dict[str, Any] | None:
        """The first stored bar strictly after ``date``, or None."""
        rows = self._dicts("SELECT date, open, close FROM price_history WHERE symbol = ? AND date > ? "
                           "ORDER BY date LIMIT 1", (symbol, str(date)))
        return rows[0] if rows else None

    def bar_on_or_before(self, symbol: str, date: str) -> dict[str, Any] | None:
        """The last stored bar on or before ``date``, or None."""
        rows = self._dicts("SELECT date, open, close FROM price_history WHERE symbol = ? AND date <= ? "
                           "ORDER BY date DESC LIMIT 1", (symbol, str(date)))
        return rows[0] if rows else None

    def paper_account(self, initial_cash: float, ts: str | None = None) -> dict[str, Any]:
        """The paper account row, created with ``initial_cash`` on first use."""
        ts = ts or record_stamp()
        with self.transaction():
            self.conn.execute("INSERT INTO paper_account(id, initial_cash, cash, created_at, updated_at) "
                              "VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                              (float(initial_cash), float(initial_cash), ts, ts))
        return self._dicts("SELECT * FROM paper_account WHERE id = 1")[0]

    def paper_account_row(self) -> dict[str, Any] | None:
        """The paper account row without creating it (for read-only status)."""
        rows = self._dicts("SELECT * FROM paper_account WHERE id = 1")
        return rows[0] if rows else None

    def paper_positions(self) -> dict[str, dict[str, Any]]:
        return {r["symbol"]: r for r in self._dicts("SELECT * FROM positions ORDER BY symbol")}

    def paper_record_order(self, order: Mapping[str, Any], fill: Mapping[str, Any] | None = None,
                           position: Mapping[str, Any] | None = None, cash_delta: float | None = None) -> int:
        """One transaction: the order row, and when it filled, its fill, the
        position change and the cash change.  Quantity and cash are applied
        as deltas in SQL (``position['quantity_delta']``, ``cash_delta``) so
        two writers never lose each other's update; ``avg_price`` is set as
        given.  A position that reaches zero is deleted.  Returns the order id."""
        order_cols = ("created_at", "session", "symbol", "side", "quantity", "order_type", "status", "reason",
                      "mode", "target_weight", "client_order_id", "broker_order_id")
        fill_cols = ("filled_at", "session", "symbol", "side", "quantity", "price", "commission",
                     "price_source", "slippage_bps")
        with self.transaction():
            cur = self.conn.execute(
                f"INSERT INTO orders({', '.join(order_cols)}) VALUES ({', '.join('?' * len(order_cols))})",
                tuple(_sql_value(order.get(c, "MARKET" if c == "order_type" else None)) for c in order_cols))
            order_id = cur.lastrowid
            if fill is not None:
                self.conn.execute(
                    f"INSERT INTO fills(order_id, {', '.join(fill_cols)}) "
                    f"VALUES (?, {', '.join('?' * len(fill_cols))})",
                    (order_id, *(_sql_value(fill.get(c)) for c in fill_cols)))
            if position is not None:
                self.conn.execute(
                    "INSERT INTO positions(symbol, quantity, avg_price, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(symbol) DO UPDATE SET quantity = positions.quantity + excluded.quantity, "
                    "avg_price = excluded.avg_price, updated_at = excluded.updated_at",
                    (position["symbol"], float(position["quantity_delta"]), float(position["avg_price"]),
                     position["updated_at"]))
                # Float sums of fractional quantities can leave dust; below 1e-9 is flat.
                self.conn.execute("DELETE FROM positions WHERE symbol = ? AND ABS(quantity) < 1e-9",
                                  (position["symbol"],))
            if cash_delta is not None:
                self.conn.execute("UPDATE paper_account SET cash = cash + ?, updated_at = ? WHERE id = 1",
                                  (float(cash_delta), order["created_at"]))
        return order_id

    def paper_orders(self, session: str | None = None, mode: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(session=session, mode=mode)
        return self._dicts(f"SELECT * FROM orders{where} ORDER BY id", params)

    def paper_fills(self, before_session: str | None = None) -> list[dict[str, Any]]:
        """Fills in id order; with ``before_session`` only those of earlier sessions."""
        if before_session:
            return self._dicts("SELECT * FROM fills WHERE session < ? ORDER BY id", (before_session,))
        return self._dicts("SELECT * FROM fills ORDER BY id")

    def trading_state(self, key: str) -> Any:
        """A JSON value kept across restarts (safe mode), or None."""
        row = self.conn.execute("SELECT value FROM trading_state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_trading_state(self, key: str, value: Any, ts: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO trading_state(key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(value, sort_keys=True, default=str), ts or record_stamp()))


def _where(**equals: Any) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND b = ?`` for the filters given (None: no filter).
    Column names come from our own keyword arguments, never from input."""
    used = [(column, value) for column, value in equals.items() if value is not None and value != ""]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in used), [value for _, value in used]


def _sql_value(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return str(value)[:10] if not isinstance(value, dt.datetime) else value.isoformat()
    return value


_DATE_TEXT: dict[int, str] = {}
_TEXT_DAY: dict[str, int] = {}


def _parse_dates(texts: Sequence[str]) -> np.ndarray:
    """datetime64[ns] from stored 'YYYY-MM-DD' texts, memoised per day."""
    cache = _TEXT_DAY
    missing = [t for t in set(texts) if t not in cache]
    if missing:
        for text, day in zip(missing, np.array(missing, dtype="datetime64[D]").view("int64").tolist()):
            cache[text] = day
    return np.array([cache[t] for t in texts], dtype="int64").view("datetime64[D]").astype("datetime64[ns]")


def _date_texts(days: np.ndarray) -> list[str]:
    """'YYYY-MM-DD' for datetime64[D] values, memoised per day: every symbol
    of a calendar shares its dates, and numpy's str conversion costs a
    quarter of a millisecond per 1,260 dates."""
    ints = days.view("int64").tolist()
    cache = _DATE_TEXT
    missing = [d for d in ints if d not in cache]
    if missing:
        for d, text in zip(missing, np.array(missing, dtype="int64").view("datetime64[D]").astype(str).tolist()):
            cache[d] = text
    return [cache[d] for d in ints]


def _int_list(series: pd.Series) -> list:
    """Python ints (never numpy int64, which sqlite3 would store as a BLOB)."""
    if series.isna().any():
        return [None if pd.isna(v) else int(v) for v in series.tolist()]
    return series.to_numpy(dtype="int64").tolist()



def _decode_findings(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("findings"), str):
        row["findings"] = json.loads(row["findings"])
    return row


_UPSERT_CACHE: dict[int, str] = {}


def _upsert_sql(rows: int) -> str:
    """Multi-row upsert; ?1..?4 are symbol, provider, run_id, ingested_at
    (bound once), then 7 numbered parameters per row."""
    sql = _UPSERT_CACHE.get(rows)
    if sql is None:
        width = len(_ROW_COLUMNS)
        values = ",".join(
            "(?1," + ",".join(f"?{5 + r * width + k}" for k in range(width)) + ",?2,?3,?4)" for r in range(rows))
        changed = " OR ".join(f"price_history.{c} IS NOT excluded.{c}" for c in (*_MARKET_COLUMNS, "provider"))
        sql = (f"INSERT INTO price_history({', '.join(BAR_STORE_COLUMNS)}) VALUES {values}"
               " ON CONFLICT(symbol, date) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in BAR_STORE_COLUMNS[2:])
               + f" WHERE {changed}")
        _UPSERT_CACHE[rows] = sql
    return sql

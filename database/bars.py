"""Bars: ``price_history``, ``corporate_actions``, ``price_history_replaced``
and ``price_history_corrections``.

Owns every write and read of stored bars: the ingest write (each symbol's
bars, corporate actions, audit row and fetch state in one transaction), the
repair write and its undo, and the reads of governance (windows, history
summary), Stage 2 (recent bars, fill prices) and the bench (content hash).

The bulk write is the ingest's hot path: a multi-row upsert with symbol,
provider, run_id and ingested_at bound once per statement (``?1..?4``), whose
``WHERE`` clause makes an identical row write nothing (decisions D3).
"""
from __future__ import annotations

import hashlib
import itertools
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from database.interfaces import SymbolWrite
from database.values import insert_sql, sql_value

if TYPE_CHECKING:
    from database.fetch_state import FetchStateRepository
    from database.manager import SqliteSession
    from database.runs import RunRepository

BAR_STORE_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "adj_close", "volume",
                     "provider", "run_id", "ingested_at")
_MARKET_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
# Columns bound per row (symbol/provider/run_id/ingested_at are bound once).
_ROW_COLUMNS = ("date", "open", "high", "low", "close", "adj_close", "volume")
# SQLite's default SQLITE_MAX_VARIABLE_NUMBER is 32766 (3.32+).
_MAX_ROWS_PER_INSERT = (32766 - 4) // len(_ROW_COLUMNS)
_REPLACED_COLUMNS = ("repair_run_id", "symbol", "date", "change", "open", "high", "low", "close",
                     "adj_close", "volume", "provider", "run_id", "ingested_at", "replaced_at")


class BarRepository:
    """Stored bars and corporate actions (``db.bars``; ``database.interfaces.BarStore``)."""

    def __init__(self, sql: SqliteSession, *, runs: RunRepository, fetch_state: FetchStateRepository,
                 claim_origin: Callable[[str], None]):
        self._sql = sql
        self._runs = runs
        self._fetch_state = fetch_state
        self._claim_origin = claim_origin

    # ------------------------------------------------------------------ writes
    def write_symbols(self, run_id: str, ingested_at: str, writes: Sequence[SymbolWrite],
                      audit_only: Sequence[Mapping[str, Any]] = ()) -> int:
        """One transaction: upsert each symbol's bars and corporate actions,
        its audit row and fetch state; plus the audit rows of symbols that
        wrote nothing (failed, up to date), counting failures in fetch_state.
        Returns the number of bar rows inserted or changed."""
        if not writes and not audit_only:
            return 0
        changed = 0
        with self._sql.transaction():
            for w in writes:
                changed += self._write_symbol(run_id, ingested_at, w)
            for f in audit_only:
                self._runs.add_audit_row(dict(f, run_id=run_id))
                if f.get("count_failure", True):
                    self._fetch_state.count_failure(f["symbol"], f.get("error_code"), ingested_at)
        return changed

    def write_repair(self, run_id: str, ingested_at: str, write: SymbolWrite,
                     replaced: Sequence[Mapping[str, Any]]) -> int:
        """One transaction: keep the rows a repair replaces (and the dates it
        inserts) in ``price_history_replaced``, then write the repaired bars."""
        cols = _REPLACED_COLUMNS
        with self._sql.transaction():
            self._sql.run_many(
                insert_sql("price_history_replaced", cols),
                [tuple(sql_value(dict(r, repair_run_id=run_id, symbol=write.symbol,
                                      replaced_at=ingested_at).get(c)) for c in cols) for r in replaced])
            return self._write_symbol(run_id, ingested_at, write)

    def replaced_rows(self, repair_run_id: str) -> list[dict[str, Any]]:
        """The rows one repair replaced or inserted, with their old values."""
        return self._sql.dicts("SELECT * FROM price_history_replaced WHERE repair_run_id = ? "
                               "ORDER BY symbol, date", (repair_run_id,))

    def undo_repair(self, repair_run_id: str, ts: str) -> int:
        """Put back the rows a repair replaced and delete the dates it
        inserted; returns the rows restored or deleted."""
        rows = [r for r in self.replaced_rows(repair_run_id) if r["undone_at"] is None]
        with self._sql.transaction():
            for r in rows:
                if r["change"] == "inserted":
                    self._sql.run("DELETE FROM price_history WHERE symbol = ? AND date = ?",
                                  (r["symbol"], r["date"]))
                else:
                    self._sql.run(
                        "UPDATE price_history SET open = ?, high = ?, low = ?, close = ?, adj_close = ?, "
                        "volume = ?, provider = ?, run_id = ?, ingested_at = ? WHERE symbol = ? AND date = ?",
                        (r["open"], r["high"], r["low"], r["close"], r["adj_close"], r["volume"], r["provider"],
                         r["run_id"], r["ingested_at"], r["symbol"], r["date"]))
            self._sql.run("UPDATE price_history_replaced SET undone_at = ? WHERE repair_run_id = ? "
                          "AND undone_at IS NULL", (ts, repair_run_id))
        return len(rows)

    def _write_symbol(self, run_id: str, ingested_at: str, w: SymbolWrite) -> int:
        """Bars, corporate actions, audit row and fetch state of one symbol
        (inside the caller's transaction)."""
        self._claim_origin(w.provider)
        n = self._upsert_bars(w.symbol, w.provider, run_id, ingested_at, w.frame)
        self._upsert_actions(w.symbol, w.provider, run_id, w.frame)
        # Stored bars this write changed: their old values are in
        # price_history_corrections (migration 0009's trigger, D-B4).
        corrected = self._sql.value("SELECT COUNT(*) FROM price_history_corrections WHERE run_id = ? AND symbol = ?",
                                    (run_id, w.symbol)) if n else 0
        self._runs.add_audit_row(dict(w.audit, run_id=run_id, symbol=w.symbol, rows_written=n,
                                      rows_corrected=corrected))
        last = self._sql.value("SELECT MAX(date) FROM price_history WHERE symbol = ?", (w.symbol,))
        self._fetch_state.record_success(w.symbol, last, run_id, w.provider, ingested_at)
        return n

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
            changed += self._sql.run(_upsert_sql(rows), head + flat[lo * width:(lo + rows) * width])
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
            self._sql.run_many(
                "INSERT INTO corporate_actions(symbol, date, action, value, provider, run_id) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(symbol, date, action) DO UPDATE SET value = excluded.value, "
                "provider = excluded.provider, run_id = excluded.run_id "
                "WHERE corporate_actions.value IS NOT excluded.value", rows)

    # ------------------------------------------------------------------- reads
    def last_dates(self, symbols: Iterable[str]) -> dict[str, str | None]:
        """Last stored session per symbol (an index seek each, not a scan)."""
        return {s: self._sql.value("SELECT MAX(date) FROM price_history WHERE symbol = ?", (s,)) for s in symbols}

    def count(self, symbol: str, start: str, end: str) -> int:
        """Stored bars of ``symbol`` in [start, end] (an index range count)."""
        return self._sql.value("SELECT COUNT(*) FROM price_history WHERE symbol = ? AND date BETWEEN ? AND ?",
                               (symbol, start, end))

    def history_summary(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """rows / first / last date per symbol (all stored symbols, or those
        named, with zeros for a symbol holding nothing).  One ``GROUP BY``
        that only counts (MIN/MAX over text dates in the same scan double its
        cost), then two primary-key seeks per symbol for the first and last
        date; a few named symbols of a large store are counted by seeks."""
        named = list(symbols) if symbols is not None else None
        if named is not None and len(named) <= 500:
            counts = dict(self._sql.rows(
                f"SELECT symbol, COUNT(*) FROM price_history WHERE symbol IN ({', '.join('?' * len(named))}) "
                "GROUP BY symbol", named)) if named else {}
        else:
            counts = dict(self._sql.rows("SELECT symbol, COUNT(*) FROM price_history GROUP BY symbol"))
        out = {}
        for s in (named if named is not None else sorted(counts)):
            rows = counts.get(s, 0)
            if rows:
                out[s] = {"rows": rows,
                          "first_date": self._sql.value("SELECT MIN(date) FROM price_history WHERE symbol = ?", (s,)),
                          "last_date": self._sql.value("SELECT MAX(date) FROM price_history WHERE symbol = ?", (s,))}
            else:
                out[s] = {"rows": 0, "first_date": None, "last_date": None}
        return out

    def read(self, symbol: str, start: str | None = None, end: str | None = None, *,
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
        rows = self._sql.rows(sql, params)
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

    def recent(self, symbol: str, rows: int) -> pd.DataFrame:
        """The last ``rows`` stored bars of one symbol, oldest first (an index
        seek from the end of the symbol's range, not a scan)."""
        data = self._sql.rows(
            "SELECT date, open, high, low, close, adj_close, volume, provider FROM price_history "
            "WHERE symbol = ? ORDER BY date DESC LIMIT ?", (symbol, int(rows)))[::-1]
        frame = pd.DataFrame(data, columns=["date", "open", "high", "low", "close", "adj_close", "volume", "provider"])
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        for col in ("open", "high", "low", "close", "adj_close"):
            frame[col] = frame[col].astype("float64")
        frame["volume"] = frame["volume"].astype("Int64")
        return frame

    def first_after(self, symbol: str, date: str) -> dict[str, Any] | None:
        """The first stored bar (date, open, close) strictly after ``date``, or None."""
        rows = self._sql.dicts("SELECT date, open, close FROM price_history WHERE symbol = ? AND date > ? "
                               "ORDER BY date LIMIT 1", (symbol, str(date)))
        return rows[0] if rows else None

    def last_on_or_before(self, symbol: str, date: str) -> dict[str, Any] | None:
        """The last stored bar (date, open, close) on or before ``date``, or None."""
        rows = self._sql.dicts("SELECT date, open, close FROM price_history WHERE symbol = ? AND date <= ? "
                               "ORDER BY date DESC LIMIT 1", (symbol, str(date)))
        return rows[0] if rows else None

    def corporate_actions(self, symbols: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Stored corporate actions (date, action, value) grouped by symbol
        (one query for all); symbols without actions are absent."""
        rows = self._sql.rows("SELECT symbol, date, action, value FROM corporate_actions "
                              "ORDER BY symbol, date, action")
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

    def content_hash(self, *, include_provenance: bool = False) -> str:
        """SHA-256 over price_history in key order.  By default only the
        market columns (what a strategy reads); ``include_provenance`` adds
        provider, run_id and ingested_at."""
        cols = ["symbol", "date", *_MARKET_COLUMNS, "provider"]
        if include_provenance:
            cols += ["run_id", "ingested_at"]
        h = hashlib.sha256()
        for rows in self._sql.batches(f"SELECT {', '.join(cols)} FROM price_history ORDER BY symbol, date", 50000):
            h.update(repr(rows).encode())
        return h.hexdigest()


_UPSERT_CACHE: dict[int, str] = {}
# The border's bound (data.quality.border.MAX_PRICE; database/ imports no
# data layer, tests/unit/test_border.py keeps the two equal).
MAX_STORED_PRICE = 1e9


def valid_bar_sql(t: str) -> str:
    """SQL true when the row ``t`` (a table name or ``excluded``) is a valid
    bar by the border's rule (data.quality.border): every price present,
    positive and at most MAX_STORED_PRICE (an inf is above it, a NaN is
    bound as NULL), low <= open, close <= high, volume present and >= 0.
    Never NULL (a NULL comparison counts as invalid)."""
    prices = " AND ".join(f"{t}.{c} > 0 AND {t}.{c} <= {MAX_STORED_PRICE:.0f}"
                          for c in ("open", "high", "low", "close", "adj_close"))
    return (f"COALESCE({prices} AND {t}.low <= {t}.high AND {t}.open BETWEEN {t}.low AND {t}.high "
            f"AND {t}.close BETWEEN {t}.low AND {t}.high AND {t}.volume >= 0, 0)")


def _upsert_sql(rows: int) -> str:
    """Multi-row upsert; ?1..?4 are symbol, provider, run_id, ingested_at
    (bound once), then 7 numbered parameters per row.  An identical row
    writes nothing (D3), and an invalid row never replaces a stored valid
    one (D-B2: the store's own guard behind the border check)."""
    sql = _UPSERT_CACHE.get(rows)
    if sql is None:
        width = len(_ROW_COLUMNS)
        values = ",".join(
            "(?1," + ",".join(f"?{5 + r * width + k}" for k in range(width)) + ",?2,?3,?4)" for r in range(rows))
        changed = " OR ".join(f"price_history.{c} IS NOT excluded.{c}" for c in (*_MARKET_COLUMNS, "provider"))
        sql = (f"INSERT INTO price_history({', '.join(BAR_STORE_COLUMNS)}) VALUES {values}"
               " ON CONFLICT(symbol, date) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in BAR_STORE_COLUMNS[2:])
               + f" WHERE ({changed}) AND ({valid_bar_sql('excluded')} OR NOT {valid_bar_sql('price_history')})")
        _UPSERT_CACHE[rows] = sql
    return sql


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
